"""Per-epoch progress for `netsharp train`: a bar redrawn in place on a terminal, plain lines
every few seconds when the output is a file or a pipe (logs must stay readable)."""

from __future__ import annotations

import shutil
import sys
import time
from typing import TextIO

BAR_WIDTH = 20


def format_duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}:{seconds:02d}"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}"


class EpochBar:
    """Shows one epoch's samples done, samples/s, running loss and accuracy, and the ETA.

    The ETA counts training time only: kernel compilation happens before the first epoch.
    """

    def __init__(self, epoch: int, epochs: int, total: int, stream: TextIO | None = None,
                 interactive: bool | None = None, plain_every: float = 10.0):
        self.stream = stream or sys.stdout
        self.interactive = self.stream.isatty() if interactive is None else interactive
        self.label = f"epoch {epoch}/{epochs}"
        self.total = total
        self.every = 0.1 if self.interactive else plain_every
        self.last_shown = time.perf_counter()
        self.drawn = False

    def update(self, samples: int, loss_sum: float, correct: int | None, seconds: float) -> None:
        now = time.perf_counter()
        if now - self.last_shown < self.every or samples >= self.total:
            return
        self.last_shown = now
        text = self._text(samples, loss_sum, correct, seconds)
        if self.interactive:
            width = shutil.get_terminal_size((100, 20)).columns - 1
            self.stream.write("\r" + text[:width].ljust(width))
            self.drawn = True
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def close(self) -> None:
        """Clears the bar so that the epoch's summary line replaces it."""
        if self.drawn:
            width = shutil.get_terminal_size((100, 20)).columns - 1
            self.stream.write("\r" + " " * width + "\r")
            self.stream.flush()
            self.drawn = False

    def _text(self, samples: int, loss_sum: float, correct: int | None, seconds: float) -> str:
        rate = samples / seconds if seconds > 0 else 0.0
        parts = [self.label]
        if self.interactive:
            filled = int(BAR_WIDTH * samples / self.total)
            parts.append("[" + "#" * filled + "." * (BAR_WIDTH - filled) + "]")
        parts.append(f"{samples:,}/{self.total:,}")
        parts.append(f"{rate:,.0f} samples/s")
        if samples:
            parts.append(f"loss {loss_sum / samples:.4f}")
            if correct is not None:
                parts.append(f"accuracy {correct / samples:.1%}")
        if rate > 0:
            parts.append(f"ETA {format_duration((self.total - samples) / rate)}")
        return "  ".join(parts)

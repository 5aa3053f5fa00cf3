"""The errors netsharp raises; each carries a span and renders as `file:line:col: error: ...`."""

from __future__ import annotations

from .source import Source, Span


class NetsharpError(Exception):
    """Base of every error a user can cause; `str()` is the message the CLI prints."""

    def __init__(self, message: str, span: Span | None = None, notes: tuple[str, ...] = (),
                 source: Source | None = None):
        self.message = message
        self.span = span
        self.notes = tuple(notes)
        self.source = source
        super().__init__(message)

    @property
    def line(self) -> int | None:
        return self.span.line if self.span else None

    @property
    def col(self) -> int | None:
        return self.span.col if self.span else None

    def with_source(self, source: Source) -> NetsharpError:
        """Attach the program text so the error can show the offending line."""
        if self.source is None:
            self.source = source
        return self

    def __str__(self) -> str:
        where = f"{self.span}: " if self.span else ""
        parts = [f"{where}error: {self.message}"]
        if self.span and self.source:
            parts.append(self.source.render(self.span))
        parts.extend(f"  = note: {note}" for note in self.notes)
        return "\n".join(parts)


class ParseError(NetsharpError):
    """The text is not a Net# program (lexical or syntax error)."""


class SemanticError(NetsharpError):
    """The program parses but does not describe a valid network."""


class ResourceError(NetsharpError):
    """The network, or a step of compiling it, would need more than the configured limits."""


class DataError(NetsharpError):
    """Input data is missing, malformed or does not fit the network."""


class NumericalError(NetsharpError):
    """Training diverged: a loss or activation became NaN or infinite."""


def did_you_mean(name: str, candidates) -> tuple[str, ...]:
    """A note suggesting the closest candidate, or nothing when none is close."""
    import difflib

    by_lower = {c.lower(): c for c in candidates}
    match = difflib.get_close_matches(name.lower(), list(by_lower), n=1, cutoff=0.6)
    return (f"did you mean '{by_lower[match[0]]}'?",) if match else ()

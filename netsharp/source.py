"""Source text, spans and caret rendering: every AST and IR node points back here."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Span:
    """A 1-based, end-exclusive region of one source file."""

    path: str
    line: int
    col: int
    end_line: int
    end_col: int

    def to(self, other: Span) -> Span:
        """The span that starts where this one starts and ends where `other` ends."""
        return Span(self.path, self.line, self.col, other.end_line, other.end_col)

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.col}"


@dataclass(frozen=True)
class Source:
    """A program's text and the name it is reported under."""

    text: str
    path: str = "<string>"

    def line_text(self, line: int) -> str:
        # Lines end at "\n" only, as the lexer counts them (splitlines() knows more breaks).
        lines = self.text.split("\n")
        return lines[line - 1].removesuffix("\r") if 0 < line <= len(lines) else ""

    def render(self, span: Span) -> str:
        """The span's first line with a caret underline, in the style of rustc."""
        text = self.line_text(span.line).expandtabs(1)
        width = len(str(span.line))
        end = span.end_col if span.end_line == span.line else len(text) + 1
        carets = "^" * max(1, min(end, len(text) + 1) - span.col)
        gutter = " " * width
        return f"{span.line} | {text}\n{gutter} | {' ' * (span.col - 1)}{carets}"

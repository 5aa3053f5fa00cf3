"""The pipeline: text -> syntax tree -> checked IR. Each line below is one stage."""

from __future__ import annotations

import sys
from contextlib import contextmanager
from pathlib import Path

from . import check as _check
from .errors import NetsharpError, ParseError
from .ir import Network
from .parse import parse
from .source import Source, Span

MAX_SOURCE_BYTES = 10_000_000
RECURSION_LIMIT = 20_000  # long expression chains are evaluated recursively (Python frames only)


@contextmanager
def _deep_recursion():
    previous = sys.getrecursionlimit()
    sys.setrecursionlimit(max(previous, RECURSION_LIMIT))
    try:
        yield
    finally:
        sys.setrecursionlimit(previous)


def compile(source: str, *, path: str | None = None, features: int | None = None,
            classes: int | None = None, task: str | None = None, hidden_size: int = 100,
            binary_outputs: int = 1) -> Network:
    """Compile Net# text into a Network; raises a NetsharpError subclass on any program error."""
    context = _check.Context(features, classes, task, hidden_size, binary_outputs)
    return _guarded(source, path, lambda text: _check.check(parse(text), context))


def compile_file(path: str | Path, **options) -> Network:
    """Compile a Net# file; a missing or unreadable file is a NetsharpError too."""
    return compile(read_source(path), path=str(path), **options)


def syntax_check(source: str, path: str | None = None) -> None:
    """Raise the program's syntax error, if it has one; no data is needed for this."""
    _guarded(source, path, parse)


def _guarded(source: str, path: str | None, stage):
    """`stage(text)` within the size limit and a deep recursion limit; nesting beyond even
    that is a ParseError, not a RecursionError."""
    text = Source(source, path or "<string>")
    _check_size(text)
    try:
        with _deep_recursion():
            return stage(text)
    except RecursionError:
        raise ParseError("the program is nested too deeply", Span(text.path, 1, 1, 1, 2),
                         source=text) from None


def read_source(path: str | Path) -> str:
    """A Net# file's text; a missing or unreadable file is a NetsharpError."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")  # editors on Windows add a BOM
    except FileNotFoundError:
        raise NetsharpError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise NetsharpError(f"{path}: is a directory, not a Net# file") from None
    except UnicodeDecodeError as error:
        raise NetsharpError(f"{path}: not UTF-8 text ({error.reason} at byte {error.start})") \
            from None
    except OSError as error:
        raise NetsharpError(f"{path}: {error.strerror}") from None
    return text


def _check_size(text: Source) -> None:
    if len(text.text) > MAX_SOURCE_BYTES:
        raise ParseError(f"the program is {len(text.text):,} characters long; the limit is "
                         f"{MAX_SOURCE_BYTES:,}", Span(text.path, 1, 1, 1, 2), source=text)


__all__ = ["compile", "compile_file", "read_source", "syntax_check", "Network", "NetsharpError"]

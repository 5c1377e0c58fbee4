"""Errors and exit codes: the library raises, only the CLI exits."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    CHECK_FAILED = 1  # computed, but a check failed (check mismatch, --strict and a NaN/inf)
    USAGE = 2  # bad usage, or an invalid graph or rows file
    INTERNAL = 3  # a bug in cgcalc: one line, and --debug shows the traceback
    HANGUP = 129  # SIGHUP (128 + 1): the terminal went away; cleaned up as after Ctrl-C
    INTERRUPTED = 130  # Ctrl-C (128 + SIGINT), as a shell reports it
    BROKEN_PIPE = 141  # the reader of stdout went away (128 + SIGPIPE), as if killed by it
    TERMINATED = 143  # SIGTERM (128 + 15); cleaned up as after Ctrl-C


class CgcalcError(Exception):
    """An error in user input, located as precisely as we know (1-based line and column)."""

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        col: int | None = None,
        node: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.file = file
        self.line = line
        self.col = col
        self.node = node

    def located(self, file: str | None = None, line: int | None = None, col: int | None = None):
        """Fill in the location where it is still unknown; returns self for `raise e.located(...)`."""
        if self.file is None:
            self.file = file
        if self.line is None and line is not None:
            self.line, self.col = line, col
        return self

    @property
    def where(self) -> str:
        parts = [p for p in (self.file, self.line, self.col) if p is not None]
        return ":".join(str(p) for p in parts)

    def __str__(self) -> str:
        where = self.where
        return clean(f"{where}: {self.message}" if where else self.message)


class GraphError(CgcalcError):
    """The graph file is invalid: syntax, names, ops, shapes, limits."""


class ShapeError(GraphError):
    """Shapes that do not fit together, found before running."""


class RowsError(CgcalcError):
    """A batch rows file is invalid: bad cell, unknown column."""


class UsageError(CgcalcError):
    """Bad command-line usage that the argument parser cannot catch (e.g. --set of an unknown input)."""


def clean(text: str) -> str:
    """Text safe for one terminal line, for every message, table, trace and figure that shows a file's text (a
    name, a description, a path): control characters (C0 with tab and newline, DEL, C1), line and paragraph
    separators, format characters (bidi overrides among them) and unpaired surrogates are written as escapes
    (\\x1b, \\x9b, \\u2028, \\ud800), so no escape sequence reaches the terminal; spaces stay as they are."""
    if text.isprintable():
        return text
    from unicodedata import category  # only for text that needs it

    return "".join(ch if ch.isprintable() or category(ch) == "Zs" else repr(ch)[1:-1] for ch in text)


def suggest(word: str, choices) -> str:
    """' (did you mean 'x'?)' for the closest choice, or ''."""
    import difflib  # only on the error path

    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""

"""Errors a user can act on: each names the file, row and field it is about, and the fix."""

from __future__ import annotations

import functools
import inspect
import reprlib


class CrmRoiError(Exception):
    """A problem in the user's inputs or settings (not a bug): its message is shown as it is."""


class SettingsError(CrmRoiError):
    """An environment setting or the assumptions file is wrong."""


class InputFileError(CrmRoiError):
    """An input file cannot be read as the pipeline needs it."""

    def __init__(
        self, file: str, problem: str, fix: str | None = None, row: int | None = None, line: int | None = None
    ):
        # `row` counts records after the header (as crm.rejects' source_row does); `line` counts lines of
        # the file, the header being line 1, for problems with the file's text rather than with a record.
        where = file if row is None else f"{file}, row {row}"
        if line is not None:
            where += f", line {line}"
        message = f"{where}: {problem}"
        if fix:
            message += f" Fix: {fix}"
        super().__init__(message)
        self.file = file
        self.row = row
        self.line = line


QUOTE_LIMIT = 200

_repr = reprlib.Repr()
_repr.maxlevel = 2
_repr.maxstring = _repr.maxother = QUOTE_LIMIT
_repr.maxlist = _repr.maxtuple = _repr.maxdict = _repr.maxset = 6


def shorten(text: str, limit: int = QUOTE_LIMIT) -> str:
    """`text` cut to `limit` characters, with an ellipsis and its length when it was longer."""
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text):,} characters)"


def quote(value: object, limit: int = QUOTE_LIMIT) -> str:
    """`value` as repr() writes it, cut to about `limit` characters with an ellipsis.

    A user's file can hold a value of any length (a stray quote makes the rest of a file one value), and a
    message quoting it whole buries the problem; reprlib also bounds the work on a huge nested value."""
    if isinstance(value, str):
        if len(value) <= limit:
            return repr(value)
        return f"{value[:limit]!r}… ({len(value):,} characters)"
    text = _repr.repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


def user_errors(fn):
    """Inputs and settings problems fail a Dagster step in plain words, without our stack trace.

    Put under `@asset`: `functools.wraps` keeps the function's signature, by which Dagster injects
    resources; a generator (a multi-asset yielding its results) stays a generator."""
    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def generator(*args, **kwargs):
            from dagster import Failure

            try:
                yield from fn(*args, **kwargs)
            except CrmRoiError as exc:
                raise Failure(description=str(exc), allow_retries=False) from None

        return generator

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from dagster import Failure

        try:
            return fn(*args, **kwargs)
        except CrmRoiError as exc:
            raise Failure(description=str(exc), allow_retries=False) from None

    return wrapper

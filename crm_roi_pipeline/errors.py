"""Errors a user can act on: each names the file, row and field it is about, and the fix."""

from __future__ import annotations

import functools


class CrmRoiError(Exception):
    """A problem in the user's inputs or settings (not a bug): its message is shown as it is."""


class SettingsError(CrmRoiError):
    """An environment setting or the assumptions file is wrong."""


class InputFileError(CrmRoiError):
    """An input file cannot be read as the pipeline needs it."""

    def __init__(self, file: str, problem: str, fix: str | None = None, row: int | None = None):
        where = file if row is None else f"{file}, row {row}"
        message = f"{where}: {problem}"
        if fix:
            message += f" Fix: {fix}"
        super().__init__(message)
        self.file = file
        self.row = row


def user_errors(fn):
    """Inputs and settings problems fail a Dagster step in plain words, without our stack trace."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from dagster import Failure

        try:
            return fn(*args, **kwargs)
        except CrmRoiError as exc:
            raise Failure(description=str(exc), allow_retries=False) from None

    return wrapper

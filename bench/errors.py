"""Errors a user can cause. The CLI prints them as one message and exits non-zero, without a traceback."""

from __future__ import annotations


class BenchError(Exception):
    """A problem the user can fix; `key` names the config key (or environment variable) to set."""

    def __init__(self, message: str, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key

    def __str__(self) -> str:
        msg = super().__str__()
        if self.key and self.key not in msg:
            msg += f" (config key: {self.key})"
        return msg


class DataRootMissing(BenchError):
    """A dataset root is not configured or does not exist."""


class BenchWarning(UserWarning):
    """Something the user should know that does not stop the command; the CLI prints it as one `bench: warning:` line."""

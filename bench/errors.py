"""Errors a user can cause. The CLI prints them as one message and exits non-zero, without a traceback."""

from __future__ import annotations

import os
from pathlib import Path

RANK_ERRORS_ENV = "BENCH_RANK_ERRORS"  # set by `bench run trainer.devices=N` for its ranks (bench.distributed.launch)


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


def report_rank_error(line: str) -> bool:
    """In a rank started by `bench run trainer.devices=N`: leave the error line for the launcher, which prints the
    first one (the root cause; the other ranks were stopped because of it). False elsewhere: print it yourself."""
    folder = os.environ.get(RANK_ERRORS_ENV)
    if not folder or "RANK" not in os.environ:
        return False
    Path(folder, f"rank{os.environ['RANK']}.txt").write_text(line + "\n")
    return True

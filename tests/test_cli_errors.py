"""One line, every time: user errors, unexpected errors, BENCH_DEBUG, and closed pipes (issue 9 item 8)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench import cli

BENCH = shutil.which("bench", path=str(Path(sys.executable).parent)) or "bench"


def bench(*args: str, **env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith("BENCH_") or k in ("BENCH_CACHE", "BENCH_OUTPUT")}
    return subprocess.run([BENCH, *args], capture_output=True, text=True, env={**base, **env}, timeout=300)


@pytest.mark.parametrize("args, needle", [
    (["run", "trainer.epochs=0"], "trainer.epochs: 0 must be >= 1"),
    (["run", "+trainer.epoch=3"], "trainer.epoch: unknown key; did you mean 'epochs'?"),
    (["run", "trainer.epochs=abc"], "trainer.epochs: expected int, got 'abc'"),
    (["run", "trainer.lr=-0.1", "trainer.batch_size=0"], "trainer.batch_size: 0 must be >= 1"),
    (["run", "dataset=ffpp"], "has no dataset choice"),
    (["data", "status", "prepare.workers=-1"], "prepare.workers: -1 must be >= 0"),
    (["prepare", "dataset=ffpp", "prepare.format=gif"], "prepare.format: 'gif' must be one of jpg, png"),
])
def test_config_errors_are_one_line_before_anything_loads(args, needle):
    res = bench(*args)
    assert res.returncode == 2 and res.stderr.strip() == f"bench: error: {res.stderr.strip()[len('bench: error: '):]}"
    assert needle in res.stderr and res.stderr.count("\n") == 1 and "Traceback" not in res.stderr


def test_bench_debug_shows_the_traceback():
    res = bench("run", "trainer.epochs=0", BENCH_DEBUG="1")
    assert res.returncode != 0 and "Traceback" in res.stderr and "trainer.epochs: 0 must be >= 1" in res.stderr


def test_an_unexpected_error_is_one_line_with_the_debug_hint(monkeypatch, capsys):
    def boom(args):
        raise RuntimeError("disk on fire\nsecond line")

    monkeypatch.setattr(cli, "cmd_list", boom)  # build_parser binds the module's cmd_list when main() runs
    monkeypatch.delenv("BENCH_DEBUG", raising=False)
    assert cli.main(["list"]) == 1
    err = capsys.readouterr().err
    assert err == "bench: error: unexpected RuntimeError: disk on fire (set BENCH_DEBUG=1 for the traceback)\n"


@pytest.mark.parametrize("args", [["run", "--cfg"], ["list", "tables"]])
def test_a_closed_pipe_ends_quietly(args):
    """`bench run --cfg | head`: the reader is gone before the first write; no traceback, no 'Exception ignored'."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BENCH_") or k in ("BENCH_CACHE", "BENCH_OUTPUT")}
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        res = subprocess.run([BENCH, *args], stdout=write_end, stderr=subprocess.PIPE, env=env, timeout=300)
    finally:
        os.close(write_end)
    assert res.returncode == 141 and res.stderr == b""

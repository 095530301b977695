"""Helpers of the fault-injection tests: a small demo run, the CLI in a subprocess, a read-only folder, a run's folder."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

# A smaller synthetic benchmark than the demo's: the tests check plumbing, not accuracy.
SMALL = [
    "datasets.synthetic.fake_videos.train=6", "datasets.synthetic.fake_videos.val=3", "datasets.synthetic.fake_videos.test=4",
    "datasets.synthetic.real_videos.train=12", "datasets.synthetic.real_videos.val=6", "datasets.synthetic.real_videos.test=8",
    "trainer.bootstrap=20", "trainer.progress=false",
]
BENCH = shutil.which("bench", path=str(Path(sys.executable).parent)) or "bench"


def bench_env(extra: dict | None = None) -> dict[str, str]:
    """The test session's environment without the caller's dataset roots (only the cache/output folders)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("BENCH_") or k in ("BENCH_CACHE", "BENCH_OUTPUT")}
    return {**base, **(extra or {})}


def bench_subprocess(*args: str, cwd: Path | None = None, env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([BENCH, *args], capture_output=True, text=True, env=bench_env(env), cwd=cwd, timeout=timeout)


def bench_popen(*args: str, cwd: Path | None = None, env: dict | None = None, new_session: bool = False) -> subprocess.Popen:
    """`new_session`: its own process group, so a test can kill the command and everything it started at once."""
    return subprocess.Popen([BENCH, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=bench_env(env),
                            cwd=cwd, start_new_session=new_session)


def assert_one_line_error(code: int, stderr: str, *needles: str) -> str:
    """A user error: non-zero exit, exactly one `bench: error:` line (no traceback) naming every needle."""
    lines = [line for line in stderr.splitlines() if line.strip() and " INFO " not in line]  # MLflow's INFO logs aside
    assert code != 0, stderr
    assert "Traceback" not in stderr, stderr
    assert len(lines) == 1 and lines[0].startswith("bench: error: "), stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def run_folders(output: Path) -> list[Path]:
    """Every run folder under a `paths.output`, oldest first."""
    return sorted((p.parent for p in Path(output).rglob("run.json")), key=lambda p: p.name)


def record(folder: Path) -> dict:
    return json.loads((Path(folder) / "run.json").read_text())


def _is_read_only(path: Path) -> bool:
    try:
        with tempfile.TemporaryFile(dir=path):
            return False
    except OSError:
        return True


@contextlib.contextmanager
def read_only(path: Path) -> Iterator[Path]:
    """Make the folder `path` read-only for this user, really (root ignores permission bits, so as root it becomes a
    read-only bind mount of itself); restored on exit."""
    path.mkdir(parents=True, exist_ok=True)
    mounted = False
    if os.geteuid() != 0:
        path.chmod(0o555)
    else:
        mounted = subprocess.run(["mount", "--bind", str(path), str(path)], capture_output=True).returncode == 0
        if mounted:
            subprocess.run(["mount", "-o", "remount,bind,ro", str(path)], capture_output=True)
    try:
        if not _is_read_only(path):
            pytest.skip("cannot make a folder read-only here (root without mount privileges)")
        yield path
    finally:
        if mounted and subprocess.run(["umount", str(path)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(path)], capture_output=True)  # busy (a process's cwd): detach it
        else:
            path.chmod(0o755)

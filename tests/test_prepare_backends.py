"""`bench prepare` backends: a local Ray gives the process pool's manifest; pool workers die with a killed parent."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest

from bench.dataset import DatasetConfig
from bench.faces.haar import HaarFaceDetector
from bench.manifest import manifest_path
from bench.prepare import PrepareConfig, prepare_dataset
from test_prepare import ClipFolder, astronaut_frames, config, make_tree


def test_ray_backend_gives_the_process_pool_manifest_and_resumes(tmp_path) -> None:
    pytest.importorskip("ray", reason="the Ray backend needs ray (in the test extra)")
    root = make_tree(tmp_path / "data")
    pool = ClipFolder(DatasetConfig(name="clips", root=str(root)), tmp_path / "pool" / "clips")
    ray_ = ClipFolder(DatasetConfig(name="clips", root=str(root)), tmp_path / "ray" / "clips")
    prepare_dataset(pool, config(workers=2), HaarFaceDetector)
    summary = prepare_dataset(ray_, config(backend="ray", workers=2), HaarFaceDetector)
    a, b = pd.read_parquet(manifest_path(pool)), pd.read_parquet(manifest_path(ray_))
    pd.testing.assert_frame_equal(a, b)
    assert summary.reused == 0 and summary.ok == 12
    assert (a.crop.dropna().map(lambda c: (pool.cache_dir / c).read_bytes())
            == b.crop.dropna().map(lambda c: (ray_.cache_dir / c).read_bytes())).all()
    again = prepare_dataset(ray_, config(backend="ray", workers=2), HaarFaceDetector)  # resume: nothing to submit
    assert again.reused == again.videos == 7


def _children(pid: int) -> set[int]:
    out = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            out |= {int(c) for c in (task / "children").read_text().split()}
        except OSError:
            pass
    return out


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads the process tree from /proc")
def test_pool_workers_die_with_a_killed_parent_and_stale_temp_files_are_cleaned(tmp_path) -> None:
    from bench.video import write_video

    root = tmp_path / "data"
    (root / "train/real").mkdir(parents=True)
    for i in range(12):  # enough work that the kill lands mid-run
        write_video(root / f"train/real/v{i:02d}.mp4", astronaut_frames(24), gop=4)
    script = textwrap.dedent(f"""
        from bench.dataset import DatasetConfig
        from bench.faces.haar import HaarFaceDetector
        from bench.prepare import PrepareConfig, prepare_dataset
        from test_prepare import ClipFolder
        adapter = ClipFolder(DatasetConfig(name="clips", root={str(root)!r}), {str(tmp_path / 'cache' / 'clips')!r})
        prepare_dataset(adapter, PrepareConfig(splits=["train"], frames={{"train": 24}}, workers=2, progress=False,
                        selection="best"), HaarFaceDetector)
    """)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")])}
    parent = subprocess.Popen([sys.executable, "-c", script], env=env)
    deadline, workers = time.time() + 60, set()
    while time.time() < deadline and len(workers) < 2:
        workers = {c for c in _children(parent.pid) if "spawn_main" in Path(f"/proc/{c}/cmdline").read_text()}
        time.sleep(0.1)
    assert len(workers) == 2, "the pool did not start"
    time.sleep(1.0)  # let the workers pick up videos
    everything = _children(parent.pid)
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    deadline = time.time() + 15
    while time.time() < deadline and any(_alive(p) for p in everything):
        time.sleep(0.2)
    assert not [p for p in everything if _alive(p)], "orphaned children survived their parent"
    stale = tmp_path / "cache/clips/crops/x/.000001.jpg.somehost.123.tmp"
    stale.parent.mkdir(parents=True, exist_ok=True)
    stale.write_bytes(b"half")
    os.utime(stale, (0, 0))  # another machine's, long ago
    host = os.uname().nodename.replace(".", "_")
    dead_writer = tmp_path / f"cache/clips/manifests/.x.parquet.{host}.{parent.pid}.tmp"
    dead_writer.parent.mkdir(parents=True, exist_ok=True)
    dead_writer.write_bytes(b"half")  # this machine's, from the killed run
    live_writer = tmp_path / f"cache/clips/manifests/.y.parquet.{host}.{os.getpid()}.tmp"
    live_writer.write_bytes(b"busy")  # a live process's: left alone
    adapter = ClipFolder(DatasetConfig(name="clips", root=str(root)), tmp_path / "cache" / "clips")
    summary = prepare_dataset(adapter, PrepareConfig(splits=["train"], frames={"train": 24}, workers=1, progress=False,
                                                     selection="best"), HaarFaceDetector)
    assert list((tmp_path / "cache").rglob("*.tmp")) == [live_writer] and summary.videos == 12
    assert sum(summary.frames.values()) == 12 * 24

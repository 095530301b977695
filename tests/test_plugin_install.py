"""The example plugin in tests/plugin_example, installed with pip like any third-party package, runs through `bench`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PLUGIN = Path(__file__).parent / "plugin_example"
BENCH = shutil.which("bench", path=str(Path(sys.executable).parent)) or "bench"
SMALL = [
    "datasets.synthetic.fake_videos.train=6", "datasets.synthetic.fake_videos.val=3", "datasets.synthetic.fake_videos.test=4",
    "datasets.synthetic.real_videos.train=12", "datasets.synthetic.real_videos.val=6", "datasets.synthetic.real_videos.test=8",
    "trainer.epochs=1", "trainer.bootstrap=50", "trainer.progress=false",
]


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory) -> Path:
    """pip-install the plugin (alone, no dependencies: ForgeryBench is already installed) into its own folder."""
    site = tmp_path_factory.mktemp("plugin-site")
    build = tmp_path_factory.mktemp("plugin-src")
    shutil.copytree(PLUGIN, build / "plugin", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "build"))
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--target", str(site),
                    str(build / "plugin")], check=True, capture_output=True, timeout=300)
    assert any(site.glob("bench_toy_plugin-*.dist-info"))
    return site


def run_bench(site: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(site)}
    env.pop("BENCH_DISABLE_PLUGINS", None)
    return subprocess.run([BENCH, *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=600)


def test_list_shows_the_plugin_detector_and_its_distribution(plugin_site, tmp_path):
    res = run_bench(plugin_site, "list", "detectors", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    line = next(line for line in res.stdout.splitlines() if line.startswith("toy_color"))
    assert "bench-toy-plugin" in line
    assert "colour and high-pass statistics" in line  # registered as a class: its own description is listed
    res = run_bench(plugin_site, "list", "plugins", cwd=tmp_path)
    assert "bench-toy-plugin" in res.stdout and "detector:toy_color" in res.stdout
    assert "config:protocol/toy_blend_only" in res.stdout
    res = run_bench(plugin_site, "list", "protocols", cwd=tmp_path)
    line = next(line for line in res.stdout.splitlines() if line.startswith("toy_blend_only"))
    assert "bench-toy-plugin" in line


def test_bench_run_trains_the_plugin_detector(plugin_site, tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    res = run_bench(plugin_site, "run", "detector=toy_color", *SMALL, f"tracking.uri={uri}", cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "diffusion_heldout" in res.stdout
    from bench.tracking import search_runs

    runs = search_runs(uri, ["demo"])
    assert list(runs["params.detector.name"]) == ["toy_color"] and list(runs["status"]) == ["FINISHED"]
    assert runs.loc[0, "params.trainer.lr"] == "0.01"  # the plugin's own recipe reached the trainer config

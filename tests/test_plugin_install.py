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


@pytest.fixture(scope="module")
def toy_faces_root(tmp_path_factory) -> Path:
    """A toy_faces tree: labels.csv + PNGs; fakes ("swap", "reenact") carry high-frequency noise, reals are smooth."""
    import numpy as np
    from PIL import Image

    root = tmp_path_factory.mktemp("toy-faces")
    rng = np.random.default_rng(0)
    rows = ["split,domain,label,video,frame,path"]
    for split, n in (("train", 8), ("val", 4), ("test", 4)):
        for domain, label in (("real", 0), ("swap", 1), ("reenact", 1)):
            for i in range(n):
                smooth = np.kron(rng.integers(0, 256, (8, 8, 3)), np.ones((4, 4, 1)))  # (32, 32, 3)
                pixels = np.clip(smooth + (rng.normal(0, 40, smooth.shape) if label else 0), 0, 255).astype(np.uint8)
                path = f"{split}/{domain}_{i}.png"
                (root / split).mkdir(exist_ok=True)
                Image.fromarray(pixels).save(root / path)
                rows.append(f"{split},{domain},{label},{domain}/{split}{i},0,{path}")
    (root / "labels.csv").write_text("\n".join(rows) + "\n")
    return root


def run_bench(site: Path, *args: str, cwd: Path, **env_vars: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(site), **env_vars}
    env.pop("BENCH_DISABLE_PLUGINS", None)
    return subprocess.run([BENCH, *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=600)


def test_list_shows_the_plugin_detector_and_its_distribution(plugin_site, tmp_path):
    res = run_bench(plugin_site, "list", "detectors", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    line = next(line for line in res.stdout.splitlines() if line.startswith("toy_color"))
    assert "bench-toy-plugin" in line
    assert "colour and high-pass statistics" in line  # registered as a class: its own description is listed
    res = run_bench(plugin_site, "list", "plugins", cwd=tmp_path)
    listed = " ".join(res.stdout.split())
    for item in ("detector:toy_color", "dataset:toy_faces", "table:toy_table", "config:protocol/toy_blend_only"):
        assert item in listed
    assert "bench-toy-plugin" in listed and res.stderr == ""
    res = run_bench(plugin_site, "list", "protocols", cwd=tmp_path)
    line = next(line for line in res.stdout.splitlines() if line.startswith("toy_blend_only"))
    assert "bench-toy-plugin" in line
    assert "toy_table" in run_bench(plugin_site, "list", "tables", cwd=tmp_path).stdout


def test_bench_run_trains_the_plugin_detector(plugin_site, tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    res = run_bench(plugin_site, "run", "detector=toy_color", *SMALL, f"tracking.uri={uri}", cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "diffusion_heldout" in res.stdout
    from bench.tracking import search_runs

    runs = search_runs(uri, ["demo"])
    assert list(runs["params.detector.name"]) == ["toy_color"] and list(runs["status"]) == ["FINISHED"]
    assert runs.loc[0, "params.trainer.lr"] == "0.01"  # the plugin's own recipe reached the trainer config


def test_plugin_dataset_protocol_and_table_from_env_root_to_leaderboard_row(plugin_site, toy_faces_root, tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    args = ["protocol=toy_faces_cross", "detector=toy_color", "trainer.epochs=1", "trainer.bootstrap=20",
            "trainer.progress=false", f"tracking.uri={uri}"]
    res = run_bench(plugin_site, "run", *args, cwd=tmp_path)  # no root: one line naming the key and the variable
    assert res.returncode == 2 and "datasets.toy_faces.root" in res.stderr and "TOY_FACES_ROOT" in res.stderr
    res = run_bench(plugin_site, "run", *args, cwd=tmp_path, TOY_FACES_ROOT=str(toy_faces_root))
    assert res.returncode == 0, res.stderr[-3000:]
    # --include-dirty: a run from a modified work tree (this one, while developing) is not a result by default
    res = run_bench(plugin_site, "leaderboard", "--table", "toy_table", "--uri", uri, "--include-dirty", cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    row = next(line for line in res.stdout.splitlines() if "toy_color" in line)
    assert "swap" in res.stdout and "reenact" in res.stdout and any(ch.isdigit() for ch in row)

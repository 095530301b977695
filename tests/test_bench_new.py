"""`bench new`: the generated plugins install with pip, show in `bench list`, run the demo and pass their own tests."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench.errors import BenchError
from bench.scaffold import new_plugin
from bench.testing import SMALL_DEMO

BENCH = shutil.which("bench", path=str(Path(sys.executable).parent)) or "bench"
pytestmark = pytest.mark.slow  # pip installs and three CLI runs: about two minutes


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> tuple[Path, dict[str, Path]]:
    """`bench new detector srm_cnn` and `bench new dataset my_faces`, pip-installed (no deps) into one folder."""
    src, site = tmp_path_factory.mktemp("new-src"), tmp_path_factory.mktemp("new-site")
    for kind, name in (("detector", "srm_cnn"), ("dataset", "my_faces")):
        res = subprocess.run([BENCH, "new", kind, name, "--dir", str(src)], capture_output=True, text=True, timeout=120)
        assert res.returncode == 0, res.stderr
    targets = {"srm_cnn": src / "bench-srm-cnn", "my_faces": src / "bench-my-faces"}
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--target", str(site),
                    *map(str, targets.values())], check=True, capture_output=True, timeout=600)
    return site, targets


def env_for(site: Path, tmp_path: Path) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("BENCH_")}
    return {**base, "PYTHONPATH": str(site), "BENCH_CACHE": os.environ["BENCH_CACHE"], "BENCH_OUTPUT": str(tmp_path)}


def test_generated_plugins_are_listed_with_their_distributions(installed, tmp_path):
    site, _ = installed
    res = subprocess.run([BENCH, "list", "plugins"], capture_output=True, text=True, cwd=tmp_path, env=env_for(site, tmp_path))
    assert res.returncode == 0 and res.stderr == ""
    rows = {line.split()[0]: line for line in res.stdout.splitlines() if line.startswith("bench-")}
    assert "detector:srm_cnn" in rows["bench-srm-cnn"] and rows["bench-srm-cnn"].rstrip().endswith("ok")
    assert "dataset:my_faces" in rows["bench-my-faces"] and "config:protocol/my_faces_indomain" in rows["bench-my-faces"]


@pytest.mark.parametrize("name", ["srm_cnn", "my_faces"])
def test_generated_plugin_passes_its_own_test_unchanged(installed, name, tmp_path):
    site, targets = installed
    res = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(targets[name] / "tests")],
                         capture_output=True, text=True, cwd=tmp_path, env=env_for(site, tmp_path), timeout=900)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
    assert "2 passed" in res.stdout


def test_generated_detector_runs_the_demo(installed, tmp_path):
    site, _ = installed
    res = subprocess.run([BENCH, "run", "detector=srm_cnn", *SMALL_DEMO], capture_output=True, text=True, cwd=tmp_path,
                         env=env_for(site, tmp_path), timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "srm_cnn on cpu" in res.stdout and "diffusion_heldout" in res.stdout


@pytest.mark.parametrize("kind, name, message", [
    ("detector", "SRM", "must be lowercase letters"),
    ("model", "x", "unknown kind 'model'"),
])
def test_bad_names_are_refused(kind, name, message, tmp_path):
    with pytest.raises(BenchError, match=message):
        new_plugin(kind, name, tmp_path)


def test_an_existing_folder_is_never_overwritten(tmp_path):
    new_plugin("detector", "twice", tmp_path)
    with pytest.raises(BenchError, match="already exists"):
        new_plugin("detector", "twice", tmp_path)

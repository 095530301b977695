"""Installing ForgeryBench must not shadow widely used packages (HuggingFace's `datasets` above all)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def build_wheel(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    for folder in ("bench", "detectors", "datasets", "leaderboards"):
        shutil.copytree(REPO / folder, src / folder, ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(src)],
                   check=True, capture_output=True)
    return next(out.glob("forgerybench-*.whl"))


def test_wheel_installs_only_the_bench_namespace(tmp_path):
    wheel = build_wheel(tmp_path)
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names}
    assert {t for t in top if not t.endswith(".dist-info")} == {"bench"}
    for sub in ("detectors", "datasets", "leaderboards", "conf"):
        assert f"bench/{sub}/__init__.py" in names
    assert any(n.startswith("bench/conf/protocol/") and n.endswith(".yaml") for n in names)
    assert any(n.startswith("bench/conf/protocol/") and n.endswith("ff_to_all.yaml") for n in names)

    # Install the wheel next to a stand-in for HuggingFace `datasets`: both must import, and stay distinct.
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(wheel)],
                   check=True, capture_output=True)
    hf = site / "datasets"
    assert not hf.exists(), "the wheel created a top-level `datasets` package"
    hf.mkdir()
    (hf / "__init__.py").write_text("HF_MARKER = 'huggingface'\n")
    probe = textwrap.dedent("""
        import datasets, bench.datasets
        assert datasets.HF_MARKER == 'huggingface'
        assert bench.datasets.__name__ == 'bench.datasets' and bench.datasets is not datasets
        print(bench.datasets.__file__)
    """)
    env = {**os.environ, "PYTHONPATH": str(site)}
    out = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().startswith(str(site))  # the installed copy, not the repo checkout

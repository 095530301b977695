"""End to end through the `bench` command line, on a small synthetic benchmark (CPU, seconds per run)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from bench.cli import main
from bench.tracking import search_runs

# A smaller synthetic benchmark than the demo's, one epoch: the tests check plumbing, not accuracy.
SMALL = [
    "datasets.synthetic.fake_videos.train=6", "datasets.synthetic.fake_videos.val=3", "datasets.synthetic.fake_videos.test=4",
    "datasets.synthetic.real_videos.train=12", "datasets.synthetic.real_videos.val=6", "datasets.synthetic.real_videos.test=8",
    "trainer.epochs=1", "trainer.bootstrap=50", "trainer.progress=false",
]
BENCH = shutil.which("bench", path=str(Path(sys.executable).parent)) or "bench"


def bench_subprocess(*args: str, env: dict | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith("BENCH_") or k in ("BENCH_CACHE", "BENCH_OUTPUT")}
    return subprocess.run([BENCH, *args], capture_output=True, text=True, env={**base, **(env or {})}, cwd=cwd, timeout=600)


def test_default_run_logs_one_mlflow_run_and_the_leaderboard_shows_it(tmp_path, monkeypatch, mlflow_uri, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["run", *SMALL, f"tracking.uri={mlflow_uri}"]) == 0
    out = capsys.readouterr().out
    assert "AUC [95% CI]" in out and "diffusion_heldout" in out  # the closing results table

    runs = search_runs(mlflow_uri, ["demo"])
    assert len(runs) == 1 and runs.loc[0, "status"] == "FINISHED"
    run = runs.iloc[0]
    for test_set in ("blend", "gan_upsample", "warp", "double_jpeg", "diffusion_heldout"):
        for metric in ("auc", "video_auc", "auc_ci_low", "auc_ci_high", "ap", "eer", "acc"):
            assert 0.0 <= run[f"metrics.{test_set}/{metric}"] <= 1.0
        assert run[f"metrics.{test_set}/auc_ci_low"] <= run[f"metrics.{test_set}/auc"] <= run[f"metrics.{test_set}/auc_ci_high"]
    assert run["params.detector.name"] == "dummy" and run["params.protocol.version"] == "1"
    assert run["tags.bench.scale"] == "tiny" and run["tags.bench.git_commit"]
    assert len(run["tags.bench.train_manifest_sha256"]) == 64

    import mlflow

    mlflow.set_tracking_uri(mlflow_uri)
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(run["run_id"])}
    assert {"config.yaml", "predictions.parquet", "roc.png"} <= artifacts

    # --include-dirty: the test may run from a modified work tree; its run is then a marked row
    assert main(["leaderboard", "--table", "demo", "--uri", mlflow_uri, "--include-dirty"]) == 0
    table = capsys.readouterr().out
    assert f"{run['metrics.blend/auc']:.3f}" in table and f"{run['metrics.diffusion_heldout/auc']:.3f}" in table


def test_multirun_logs_one_run_per_detector(tmp_path, monkeypatch, mlflow_uri):
    monkeypatch.chdir(tmp_path)
    assert main(["run", "-m", "detector=clip_probe,dummy", *SMALL, f"tracking.uri={mlflow_uri}"]) == 0
    runs = search_runs(mlflow_uri, ["demo"])
    assert sorted(runs["params.detector.name"]) == ["clip_probe", "dummy"]
    assert set(runs["status"]) == {"FINISHED"}


def test_resume_continues_exactly_where_it_stopped(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    # The first run stops after one of two epochs; its lr schedule must not depend on the shorter length (warm-up 2 < steps).
    common = [*SMALL, "tracking.enabled=false", "trainer.warmup_steps=2", "trainer.scheduler=none"]
    assert main(["run", *common, "trainer.epochs=2", "paths.output=straight"]) == 0
    assert main(["run", *common, "trainer.epochs=1", "paths.output=first"]) == 0
    first = next(Path("first").rglob("last.pt"))
    first_best = torch.load(first.parent / "best.pt", weights_only=True)["train_state"]
    assert main(["run", *common, "trainer.epochs=2", f"trainer.resume={first}"]) == 0
    straight = torch.load(next(Path("straight").rglob("last.pt")), weights_only=True)
    resumed = torch.load(first, weights_only=True)  # the resumed run continues in the same folder
    best = torch.load(first.parent / "best.pt", weights_only=True)["train_state"]
    assert best["best_epoch"] in (first_best["best_epoch"], 2)  # best.pt of epoch 1 survives unless epoch 2 beat it
    assert straight["train_state"]["step"] == resumed["train_state"]["step"] > 0
    for name, tensor in straight["model"].items():
        assert torch.equal(tensor, resumed["model"][name]), name


def test_missing_data_root_fails_fast_naming_the_key():
    start = time.time()
    res = bench_subprocess("run", "protocol=ff_to_all", "detector=clip_probe")
    assert res.returncode == 2
    assert "datasets.ffpp.root" in res.stderr and "BENCH_FFPP_ROOT" in res.stderr
    assert "Traceback" not in res.stderr and res.stderr.count("\n") <= 3
    assert time.time() - start < 60


@pytest.mark.parametrize("args, needle", [
    (["run", "detector=nope"], "unknown detector 'nope'"),
    (["run", "trainer.epoch=1"], "trainer.epoch"),
    (["run", "detector=clip_probe,dummy"], "--multirun"),
    (["leaderboard", "--table", "nope"], "nope"),
])
def test_user_errors_are_one_line_without_traceback(args, needle):
    res = bench_subprocess(*args)
    assert res.returncode != 0 and needle in res.stderr and "Traceback" not in res.stderr


def test_cfg_prints_the_resolved_config(capsys):
    assert main(["run", "--cfg", "protocol=ff_to_all", "detector=dummy"]) == 0
    out = capsys.readouterr().out
    assert "name: ff_to_all" in out and "version: 1" in out and "width: 16" in out


def test_list_shows_names_descriptions_and_providers(capsys):
    assert main(["list", "detectors"]) == 0
    out = capsys.readouterr().out
    assert "dummy" in out and "clip_probe" in out and "forgerybench" in out
    assert main(["list", "protocols"]) == 0
    out = capsys.readouterr().out
    for name in ("demo", "ff_to_all", "diff_t2i", "diff_fe"):
        assert name in out

"""kill -9, then resume: one MLflow run with every epoch and the metrics of an uninterrupted run. A resume checks its
checkpoint before writing anything; a killed run that is never resumed stays visibly not a result."""

from __future__ import annotations

import hashlib
import os
import pickle
import signal
import time
from pathlib import Path

import pytest
import torch

from bench.cli import main
from bench.rundir import STALE_AFTER_S, RunRecord
from bench.tracking import search_runs
from cli_tools import SMALL, assert_one_line_error, bench_popen, record, run_folders

EPOCHS = ["trainer.epochs=4", "trainer.log_every=1"]
TEST_METRICS = ("auc", "video_auc", "ap", "eer", "acc", "auc_ci_low", "auc_ci_high")


def _history(uri: str, run_id: str, key: str) -> list[tuple[int, float]]:
    from mlflow.tracking import MlflowClient

    return sorted((m.step, m.value) for m in MlflowClient(tracking_uri=uri).get_metric_history(run_id, key))


@pytest.mark.slow
def test_kill_9_then_resume_continues_the_same_mlflow_run_with_identical_metrics(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    straight_uri, killed_uri = f"sqlite:///{tmp_path / 'straight.db'}", f"sqlite:///{tmp_path / 'killed.db'}"
    assert main(["run", *SMALL, *EPOCHS, f"tracking.uri={straight_uri}", f"paths.output={tmp_path / 'straight'}"]) == 0
    straight = search_runs(straight_uri, ["demo"]).iloc[0]

    proc = bench_popen("run", *SMALL, *EPOCHS, f"tracking.uri={killed_uri}", f"paths.output={tmp_path / 'killed'}", cwd=tmp_path)
    deadline = time.time() + 600
    while not list((tmp_path / "killed").rglob("last.pt")) and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)  # after the first epoch's checkpoint, well before the end
    proc.communicate()
    [folder] = run_folders(tmp_path / "killed")
    killed = record(folder)
    assert killed["status"] == "RUNNING" and killed["mlflow"]["run_id"]
    assert RunRecord.from_dict(killed).is_stale(now=killed["heartbeat"] + STALE_AFTER_S + 1)  # visibly not a result
    assert list(search_runs(killed_uri, ["demo"])["status"]) == ["RUNNING"]
    config = (folder / "config.yaml").read_bytes()

    assert main(["run", *SMALL, *EPOCHS, f"tracking.uri={killed_uri}", f"trainer.resume={folder / 'last.pt'}"]) == 0
    runs = search_runs(killed_uri, ["demo"])
    assert len(runs) == 1 and runs.loc[0, "status"] == "FINISHED"  # the same run, no second one
    resumed = runs.iloc[0]
    assert resumed["run_id"] == killed["mlflow"]["run_id"] == record(folder)["mlflow"]["run_id"]
    for test_set in ("blend", "diffusion_heldout"):
        for metric in TEST_METRICS:
            assert resumed[f"metrics.{test_set}/{metric}"] == straight[f"metrics.{test_set}/{metric}"], (test_set, metric)
    for key in ("epoch/train_loss", "val/auc"):  # every epoch once, equal to the uninterrupted run's
        assert _history(killed_uri, resumed["run_id"], key) == _history(straight_uri, straight["run_id"], key)
    assert (folder / "config.yaml").read_bytes() == config and (folder / "config.resume-1.yaml").is_file()
    assert resumed["metrics.time_s"] > 0


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("finished")
    assert main(["run", *SMALL, "trainer.epochs=1", "tracking.enabled=false", f"paths.output={out}"]) == 0
    [folder] = run_folders(out)
    return folder


def _fingerprint(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


class Payload:
    """Runs code when unpickled: a weights-only load must never execute it."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def _write_bad(folder: Path, kind: str, marker: Path) -> Path:
    path = folder / f"{kind}.pt"
    if kind == "pickled":
        torch.save({"model": Payload(marker)}, path)
    elif kind == "raw_pickle":
        path.write_bytes(pickle.dumps({"model": Payload(marker)}))
    elif kind == "text":
        path.write_text("not a checkpoint\n")
    elif kind == "plain_tensors":
        torch.save({"weight": torch.zeros(3)}, path)
    return path


@pytest.mark.parametrize("kind, needle", [
    ("typo", "does not exist"),
    ("pickled", "is not a plain weights file"),
    ("raw_pickle", "is not a plain weights file"),
    ("text", "is not a readable torch file"),
    ("plain_tensors", "is not a ForgeryBench checkpoint"),
])
def test_a_bad_resume_checkpoint_is_one_line_and_writes_nothing(finished_run, tmp_path, capsys, kind, needle):
    marker = tmp_path / "payload-ran"
    ckpt = finished_run / "typo.pt" if kind == "typo" else _write_bad(finished_run, kind, marker)
    before = _fingerprint(finished_run)
    try:
        code = main(["run", *SMALL, "trainer.epochs=2", "tracking.enabled=false", f"trainer.resume={ckpt}"])
        line = assert_one_line_error(code, capsys.readouterr().err, needle, "trainer.resume")
        assert "weights_only=False" not in line and not marker.exists()
        assert _fingerprint(finished_run) == before  # config.yaml, run.json, checkpoints untouched; no config.resume-1.yaml
    finally:
        if kind != "typo":
            ckpt.unlink()


def test_a_checkpoint_of_another_model_is_refused_before_anything_is_written(finished_run, capsys):
    before = _fingerprint(finished_run)
    code = main(["run", *SMALL, "trainer.epochs=2", "tracking.enabled=false", "detector.width=4",
                 f"trainer.resume={finished_run / 'last.pt'}"])
    assert_one_line_error(code, capsys.readouterr().err, "does not fit", "trainer.resume")
    assert _fingerprint(finished_run) == before


def test_a_missing_resume_path_is_one_line(capsys):
    code = main(["run", *SMALL, "tracking.enabled=false", "trainer.resume=/nonexistent/last.pt"])
    assert_one_line_error(code, capsys.readouterr().err, "/nonexistent/last.pt", "does not exist")

"""Local first, tracking second: a broken MLflow store never loses a run; `bench sync` uploads it later; runs
started together on one fresh store all succeed; a bad store is refused before any data loads."""

from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path

import pandas as pd
import pytest

from bench import runner
from bench.cli import main
from bench.tracking import search_runs, sync
from cli_tools import SMALL, assert_one_line_error, bench_popen, bench_subprocess, read_only, record, run_folders


def _break_store_after_first_epoch(monkeypatch, stack: contextlib.ExitStack, db: Path, how: str) -> None:
    """Fault injection: the store fails between the first epoch and the rest of the run."""
    real = runner.check_finite_weights

    def check_then_break(model, state):
        real(model, state)
        if state.epoch == 0:
            if how == "deleted":
                db.unlink()
            else:
                stack.enter_context(read_only(db.parent))

    monkeypatch.setattr(runner, "check_finite_weights", check_then_break)


@pytest.mark.parametrize("how", ["deleted", "read-only"])
def test_a_store_failing_mid_run_is_one_warning_and_the_run_completes_then_syncs(how, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    store = tmp_path / "store"
    store.mkdir()
    db = store / "mlflow.db"
    uri = f"sqlite:///{db}"
    output = tmp_path / "out"
    with contextlib.ExitStack() as stack:
        _break_store_after_first_epoch(monkeypatch, stack, db, how)
        assert main(["run", *SMALL, "trainer.epochs=2", "trainer.log_every=1", f"tracking.uri={uri}", f"paths.output={output}"]) == 0
    err = capsys.readouterr().err
    assert err.count("bench: warning: MLflow tracking failed") == 1, err  # one warning, not one per call
    assert "bench sync" in err and "Traceback" not in err

    [folder] = run_folders(output)
    rec = record(folder)
    assert rec["status"] == "FINISHED" and rec["mlflow"]["synced"] is False
    for name in ("config.yaml", "metrics.jsonl", "results.json", "results.md", "predictions.parquet", "roc.png", "best.pt"):
        assert (folder / name).is_file(), name
    results = json.loads((folder / "results.json").read_text())
    assert set(results) == {"blend", "gan_upsample", "warp", "double_jpeg", "diffusion_heldout"}
    assert len(pd.read_parquet(folder / "predictions.parquet")) == sum(r["n_frames"] for r in results.values())

    # Sync into another store (in this process MLflow keeps its engine on the broken file): a new run is made there.
    target = f"sqlite:///{tmp_path / 'team.db'}"
    first = sync(folder, uri=target)
    assert first.created and first.metrics > 0 and first.artifacts >= 5
    again = bench_subprocess("sync", str(folder), "--uri", target)  # the command line, idempotent
    assert again.returncode == 0 and f"its own MLflow run {first.run_id}, 0 metric points and 0 files" in again.stdout

    runs = search_runs(target, ["demo"])
    assert len(runs) == 1 and runs.loc[0, "status"] == "FINISHED"
    run = runs.iloc[0]
    assert run["metrics.blend/auc"] == pytest.approx(results["blend"]["auc"])
    assert run["params.trainer.epochs"] == "2" and run["tags.bench.run_dir"] == str(folder)
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=target)
    history = client.get_metric_history(run["run_id"], "epoch/train_loss")
    assert sorted(m.step for m in history) == [1, 2]  # every epoch once, with its step
    local_steps = [json.loads(line)["step"] for line in (folder / "metrics.jsonl").read_text().splitlines()
                   if "train/loss" in json.loads(line)["metrics"]]
    assert sorted(m.step for m in client.get_metric_history(run["run_id"], "train/loss")) == sorted(local_steps)
    assert record(folder)["mlflow"] == {"uri": target, "experiment": "demo", "run_id": first.run_id, "synced": True}


def test_an_unreachable_server_fails_in_seconds_before_any_data_loads(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    loaded = []
    monkeypatch.setattr(runner, "load_data", lambda *a, **k: loaded.append(True))
    start = time.time()
    code = main(["run", *SMALL, "tracking.uri=http://127.0.0.1:9"])
    assert time.time() - start < 30  # not MLflow's ~300 s of retries
    assert_one_line_error(code, capsys.readouterr().err, "tracking.uri=http://127.0.0.1:9", "not reachable")
    assert not loaded


def test_a_sqlite_store_in_a_missing_folder_is_refused_and_nothing_is_created(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    missing = tmp_path / "no" / "such" / "dir"
    code = main(["run", *SMALL, f"tracking.uri=sqlite:///{missing}/mlflow.db"])
    assert_one_line_error(code, capsys.readouterr().err, "tracking.uri", "does not exist")
    assert not (tmp_path / "no").exists()


def test_a_read_only_working_directory_is_one_line_naming_what_to_set(tmp_path, monkeypatch, capsys):
    with read_only(tmp_path / "ro") as ro:
        monkeypatch.chdir(ro)
        code = main(["run", *SMALL, f"paths.output={tmp_path / 'out'}"])  # the default store is ./mlflow.db
        assert_one_line_error(code, capsys.readouterr().err, "tracking.uri", str(ro))
        code = main(["run", *SMALL, "tracking.enabled=false", "paths.output=outputs"])
        assert_one_line_error(code, capsys.readouterr().err, "paths.output", str(ro))
        monkeypatch.chdir(tmp_path)  # leave the folder before it is made writable again


@pytest.mark.slow
def test_runs_started_together_on_one_fresh_store_all_succeed(tmp_path):
    """Three `bench run`s in one fresh working directory race to create ./mlflow.db and the experiment."""
    n = 3
    procs = [bench_popen("run", *SMALL, "trainer.epochs=1", f"trainer.seed={i}", cwd=tmp_path) for i in range(n)]
    outs = [p.communicate(timeout=900) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err[-3000:]
    runs = search_runs(f"sqlite:///{tmp_path / 'mlflow.db'}", ["demo"])
    assert len(runs) == n and set(runs["status"]) == {"FINISHED"}
    assert sorted(runs["params.trainer.seed"]) == [str(i) for i in range(n)]


def test_a_read_only_cache_is_one_line_naming_paths_cache(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with read_only(tmp_path / "cache") as cache:  # the synthetic benchmark must be generated there
        code = main(["run", *SMALL, "tracking.enabled=false", f"paths.cache={cache}", f"paths.output={tmp_path / 'out'}"])
    assert_one_line_error(code, capsys.readouterr().err, "paths.cache", "BENCH_CACHE", str(cache))
    assert not run_folders(tmp_path / "out")


@pytest.mark.slow
def test_runner_errors_through_the_real_command_line_are_one_line(tmp_path):
    """The same refusals from the `bench` executable, where nothing else (library logs, warnings) may add lines."""
    cases = {
        "resume": (["trainer.resume=/nonexistent/last.pt"], "trainer.resume"),
        "store": ([f"tracking.uri=sqlite:///{tmp_path}/missing/mlflow.db"], "tracking.uri"),
        "leak": (["protocol.train.split=test", "tracking.enabled=false"], "protocol"),
        "epochs": (["trainer.epochs=0"], "trainer.epochs"),
    }
    procs = {name: bench_popen("run", *SMALL, *args, cwd=tmp_path) for name, (args, _) in cases.items()}
    for name, proc in procs.items():
        _, err = proc.communicate(timeout=600)
        assert_one_line_error(proc.returncode, err, cases[name][1])

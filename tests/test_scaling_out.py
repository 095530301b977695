"""Sweeps through Hydra launchers (joblib, submitit's local executor, a local Ray) and a shared `mlflow server`: every
job logs to the same store and `bench leaderboard` reads them all."""

from __future__ import annotations

import importlib.util
import io
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pandas as pd
import pytest

from bench.tracking import search_runs
from cli_tools import SMALL, assert_one_line_error, bench_popen, bench_subprocess, run_folders

SWEEP = [*SMALL, "trainer.epochs=1"]
LAUNCHERS = {  # launcher -> (its package, extra overrides)
    "joblib": ("hydra_plugins.hydra_joblib_launcher", ["hydra.launcher.n_jobs=2"]),
    # two tasks per job: each run of the sweep is itself a 2-process data-parallel run (submitit's ranks)
    "submitit_local": ("hydra_plugins.hydra_submitit_launcher", ["hydra.launcher.timeout_min=20",
                                                                "hydra.launcher.tasks_per_node=2", "trainer.device=cpu"]),
    "ray": ("hydra_plugins.hydra_ray_launcher", ["+hydra.launcher.ray.init.num_cpus=2",
                                                 "+hydra.launcher.ray.init.include_dashboard=false"]),
}


def installed(package: str) -> bool:
    try:
        return importlib.util.find_spec(package) is not None
    except ModuleNotFoundError:  # no hydra_plugins namespace at all
        return False


def _leaderboard(uri: str) -> pd.DataFrame:
    res = bench_subprocess("leaderboard", "--table", "demo", "--uri", uri, "--format", "csv",
                           "--include-dirty")  # the tests may run from a modified work tree
    assert res.returncode == 0, res.stderr[-2000:]
    return pd.read_csv(io.StringIO(res.stdout))


def _assert_leaderboard_reads(uri: str, runs: pd.DataFrame) -> None:
    cell = _leaderboard(uri).query("test_set == 'blend' and metric == 'auc'").iloc[0]
    assert cell["n_runs"] == len(runs) and sorted(str(cell["run_ids"]).split(",")) == sorted(r[:8] for r in runs["run_id"])


@pytest.mark.slow
@pytest.mark.parametrize("launcher", list(LAUNCHERS))
def test_a_launcher_sweep_logs_every_job_to_one_store(launcher, tmp_path):
    package, options = LAUNCHERS[launcher]
    if not installed(package):  # hydra-ray-launcher: see README "Scaling out" for why it is apart
        pytest.skip(f"{package} is not installed (pip install --no-deps hydra-ray-launcher)")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    res = bench_subprocess("run", "-m", f"hydra/launcher={launcher}", *options, "trainer.seed=0,1", *SWEEP,
                           f"tracking.uri={uri}", f"paths.output={tmp_path / 'out'}", cwd=tmp_path, env={"OMP_NUM_THREADS": "1"})
    assert res.returncode == 0, (res.stdout[-2000:], res.stderr[-3000:])
    runs = search_runs(uri, ["demo"])
    assert sorted(runs["params.trainer.seed"]) == ["0", "1"] and set(runs["status"]) == {"FINISHED"}
    ranks = "2" if "hydra.launcher.tasks_per_node=2" in options else "1"
    assert set(runs["tags.bench.world_size"]) == {ranks}
    folders = run_folders(tmp_path / "out")
    assert len(folders) == 2 and all(f"run folder {f}" in res.stdout for f in folders)  # the sweep's summary
    # each job composed its config as `bench run <its overrides>` would: the overrides as typed, not Hydra's copy
    assert {tuple(o for o in eval(r) if o.startswith("trainer.seed")) for r in runs["params.meta.overrides"]} == \
        {("trainer.seed=0",), ("trainer.seed=1",)}
    _assert_leaderboard_reads(uri, runs)


def test_a_launcher_that_is_not_installed_is_one_line(tmp_path):
    res = bench_subprocess("run", "-m", "hydra/launcher=nonesuch", "trainer.seed=0,1", *SWEEP, "tracking.enabled=false",
                           f"paths.output={tmp_path}")
    assert_one_line_error(res.returncode, res.stderr, "hydra/launcher", "nonesuch")
    res = bench_subprocess("run", "hydra/launcher=joblib", *SWEEP, "tracking.enabled=false", f"paths.output={tmp_path}")
    assert_one_line_error(res.returncode, res.stderr, "bench run -m")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def mlflow_server(tmp_path) -> str:
    """A real `mlflow server` (sqlite database + artifact store, as the README's recipe) on a free port."""
    port = _free_port()
    log = open(tmp_path / "server.log", "w")  # noqa: SIM115 - closed below
    server = subprocess.Popen([sys.executable, "-m", "mlflow", "server", "--backend-store-uri",
                               f"sqlite:///{tmp_path / 'server.db'}", "--artifacts-destination", str(tmp_path / "artifacts"),
                               "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
                              stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 180
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2):
                    break
            except OSError:
                assert server.poll() is None, (tmp_path / "server.log").read_text()[-2000:]
                time.sleep(0.5)
        yield url
    finally:
        os.killpg(server.pid, signal.SIGTERM)  # the server and its workers
        server.wait(timeout=60)
        log.close()


@pytest.mark.slow
def test_two_concurrent_runs_against_a_shared_mlflow_server(mlflow_server, tmp_path):
    out = tmp_path / "out"
    procs = [bench_popen("run", *SWEEP, f"trainer.seed={seed}", f"tracking.uri={mlflow_server}", f"paths.output={out}",
                         cwd=tmp_path) for seed in (0, 1)]
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=600)
        assert proc.returncode == 0, stderr[-3000:]
        assert f"in {mlflow_server}" in stdout and "warning" not in stderr, stderr[-3000:]
    runs = search_runs(mlflow_server, ["demo"])
    assert sorted(runs["params.trainer.seed"]) == ["0", "1"] and set(runs["status"]) == {"FINISHED"}
    artifacts = {p.name for p in (tmp_path / "artifacts").rglob("*") if p.is_file()}
    assert {"results.json", "predictions.parquet", "config.yaml"} <= artifacts  # the server's artifact store has them
    _assert_leaderboard_reads(mlflow_server, runs)
    assert len(run_folders(out)) == 2


def test_runs_racing_to_create_the_experiment_on_a_server_share_it(tmp_path, monkeypatch):
    """No file lock spans the machines of a shared server: the loser of the race finds the winner's experiment."""
    from mlflow.tracking import MlflowClient

    from bench.tracking import connect

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    winner = MlflowClient(tracking_uri=uri).create_experiment("demo")
    real = MlflowClient.get_experiment_by_name
    calls = []

    def not_yet(self, name):  # the loser looked before the winner created it
        calls.append(name)
        return None if len(calls) == 1 else real(self, name)

    monkeypatch.setattr(MlflowClient, "get_experiment_by_name", not_yet)
    assert connect(uri, "demo")[1] == winner and len(calls) == 2

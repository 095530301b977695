"""MLflow, second: it mirrors the run folder (bench/rundir.py) and never takes a run down. The only module that
imports mlflow (lazily: the import costs over a second).

- `MlflowTracker`: the live mirror. Any failure (database deleted, locked or read-only, server down) is one warning;
  the tracker stops and the run goes on; `bench sync RUN_DIR` uploads the folder later.
- `sync`: uploads a run folder (params, tags, every metric with its step and time, artifacts) idempotently.
- sqlite stores are opened under a file lock, so runs started together on one fresh database all create it safely.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.errors import BenchError
from bench.rundir import RUNNING, RunFolder, Tracker

MAX_BATCH = 100  # MLflow accepts at most 100 params (and 1000 metrics) per batch call
MAX_METRICS = 1000
MAX_PARAM_CHARS = 6000
LOCK_TIMEOUT_S = 120
# Fail in seconds, not after MLflow's default 7 retries with 120 s timeouts (~300 s on a dead server); a user's own
# settings win.
HTTP_ENV = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
            "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"a": {"b": 1}, "c": [1, 2]} -> {"a.b": 1, "c": "[1, 2]"}; None becomes "null"."""
    out: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, name + "."))
        else:
            out[name] = "null" if value is None else (str(value) if isinstance(value, (list, tuple)) else value)
    return out


def _mlflow():
    import mlflow

    return mlflow


def sqlite_path(uri: str) -> Path | None:
    """The database file of a `sqlite:///` URI (relative to the working directory), else None."""
    if not uri.startswith("sqlite:///") or uri.endswith(":memory:"):
        return None
    return Path(uri.removeprefix("sqlite:///"))


def canonical_uri(uri: str) -> str:
    """A sqlite URI with an absolute path: run.json records where the store was, whatever the working directory of a
    later `bench sync` or resume."""
    path = sqlite_path(uri)
    return f"sqlite:///{path.expanduser().absolute()}" if path is not None else uri


@contextlib.contextmanager
def store_lock(uri: str) -> Iterator[None]:
    """Held while a sqlite store is opened (MLflow creates the schema on first use; two processes racing on a fresh
    file fail with `table alembic_version already exists`) and while an experiment is looked up or created."""
    path = sqlite_path(uri)
    if path is None:
        yield
        return
    from filelock import FileLock

    with FileLock(f"{path}.lock", timeout=LOCK_TIMEOUT_S):
        yield


def connect(uri: str, experiment: str):
    """(MlflowClient, experiment id), creating the store and the experiment if needed."""
    for name, value in HTTP_ENV.items():
        os.environ.setdefault(name, value)
    from mlflow.tracking import MlflowClient

    from mlflow.exceptions import MlflowException

    with store_lock(uri):
        client = MlflowClient(tracking_uri=uri)
        exp = client.get_experiment_by_name(experiment)
        if exp is None:
            try:
                return client, client.create_experiment(experiment)
            except MlflowException as err:  # a server: another run created it since (no file lock spans machines)
                if err.error_code != "RESOURCE_ALREADY_EXISTS":
                    raise
                exp = client.get_experiment_by_name(experiment)
        if exp.lifecycle_stage == "deleted":
            client.restore_experiment(exp.experiment_id)
        return client, exp.experiment_id


@contextlib.contextmanager
def quiet_mlflow() -> Iterator[None]:
    """MLflow logs its own traceback (level ERROR) before raising; the caller reports the failure in one line."""
    logger = logging.getLogger("mlflow")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


def root_cause(err: BaseException) -> str:
    """`Type: first line` of the innermost exception (MLflow wraps SQLAlchemy, which wraps sqlite3)."""
    while (err.__cause__ or err.__context__) is not None:
        err = err.__cause__ or err.__context__
    lines = str(err).strip().splitlines()
    return f"{type(err).__name__}: {lines[0][:200] if lines else ''}"


def _transient(err: BaseException) -> bool:
    return "database is locked" in str(err)


def _retry(fn, *args, **kwargs):
    """Call fn, retrying a few times while another process holds the sqlite write lock."""
    for attempt in range(5):
        try:
            return fn(*args, **kwargs)
        except Exception as err:
            if not _transient(err) or attempt == 4:
                raise
            time.sleep(0.2 * 2**attempt)


def _param_str(value: Any) -> str:
    return str(value)[:MAX_PARAM_CHARS]


def _log_params(client, run_id: str, params: Mapping[str, Any], existing: Mapping[str, str]) -> dict[str, str]:
    """Log the params the run lacks. MLflow params never change: values that differ from the logged ones (a resume
    with more epochs) go to the tag `bench.resumed_with`. Returns what the run now holds."""
    from mlflow.entities import Param, RunTag

    new = [Param(k, _param_str(v)) for k, v in params.items() if k not in existing]
    for i in range(0, len(new), MAX_BATCH):
        _retry(client.log_batch, run_id, params=new[i:i + MAX_BATCH])
    changed = {k: _param_str(v) for k, v in params.items() if k in existing and existing[k] != _param_str(v)}
    if changed:
        text = "; ".join(f"{k}={v}" for k, v in sorted(changed.items()))
        _retry(client.log_batch, run_id, tags=[RunTag("bench.resumed_with", text[:MAX_PARAM_CHARS])])
    return {**existing, **{p.key: p.value for p in new}}


def _metric_entities(metrics: Mapping[str, float], step: int | None, when: float) -> list:
    from mlflow.entities import Metric

    ms = int(when * 1000)
    return [Metric(k, float(v), ms, step or 0) for k, v in metrics.items() if v is not None and np.isfinite(v)]


def _log_metric_entities(client, run_id: str, entities: list) -> None:
    for i in range(0, len(entities), MAX_METRICS):
        _retry(client.log_batch, run_id, metrics=entities[i:i + MAX_METRICS])


class MlflowTracker(Tracker):
    """The live mirror of one run folder. After its first failure it warns once and does nothing more."""

    def __init__(self, uri: str, experiment: str, run_name: str, run_dir: Path) -> None:
        self.uri, self.experiment, self.run_name, self.run_dir = uri, experiment, run_name, run_dir
        self.client = None
        self.run_id: str | None = None
        self.failed = False
        self._params: dict[str, str] = {}
        self._lock = threading.Lock()

    def start(self, run_id: str | None = None, start_time: float | None = None) -> MlflowTracker:
        """Continue MLflow run `run_id` (a resume) if the store has it, else start a new one."""
        def begin() -> None:
            self.client, exp_id = connect(self.uri, self.experiment)
            if run_id is not None and self._exists(run_id):
                self.run_id = run_id
                _retry(self.client.update_run, run_id, status=RUNNING)
                self._params = dict(self.client.get_run(run_id).data.params)
            else:
                ms = int((start_time or time.time()) * 1000)
                self.run_id = _retry(self.client.create_run, exp_id, start_time=ms, run_name=self.run_name).info.run_id

        self._safe("start", begin)
        return self

    def _exists(self, run_id: str) -> bool:
        from mlflow.exceptions import MlflowException

        try:
            return self.client.get_run(run_id).info.lifecycle_stage == "active"
        except MlflowException:
            print(f"bench: warning: MLflow run {run_id} is not in {self.uri}; the resumed run starts a new one",
                  file=sys.stderr)
            return False

    def _safe(self, what: str, fn, *args) -> None:
        if self.failed or (self.run_id is None and what != "start"):
            return
        try:
            with self._lock, quiet_mlflow():  # the heartbeat thread tags too
                fn(*args)
        except Exception as err:
            self.failed = True
            print(f"bench: warning: MLflow tracking failed ({what}: {root_cause(err)}); the run goes on and is saved in "
                  f"{self.run_dir}; upload it later with: bench sync {self.run_dir}", file=sys.stderr)

    def log_params(self, params: Mapping[str, Any]) -> None:
        def log() -> None:
            self._params = _log_params(self.client, self.run_id, params, self._params)

        self._safe("log_params", log)

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        from mlflow.entities import RunTag

        entities = [RunTag(k, _param_str(v)) for k, v in tags.items()]
        self._safe("set_tags", lambda: _retry(self.client.log_batch, self.run_id, tags=entities))

    def log_metrics(self, metrics: Mapping[str, float], step: int | None, when: float) -> None:
        self._safe("log_metrics", lambda: _log_metric_entities(self.client, self.run_id, _metric_entities(metrics, step, when)))

    def log_artifacts(self, paths: list[Path]) -> None:
        self._safe("log_artifacts", lambda: [self.client.log_artifact(self.run_id, str(p)) for p in paths])

    def end(self, status: str, when: float) -> None:
        self._safe("end", lambda: _retry(self.client.set_terminated, self.run_id, status=status, end_time=int(when * 1000)))


# ---- bench sync -----------------------------------------------------------------------------------------------


@dataclass
class SyncReport:
    run_id: str
    created: bool  # a new MLflow run (else the folder's own run was completed)
    metrics: int  # metric points uploaded
    artifacts: int  # files uploaded


def sync(run_dir: str | Path, uri: str | None = None) -> SyncReport:
    """Upload a run folder to MLflow: into its own MLflow run when the store has it, else into a new one (recorded in
    run.json). Only what the store lacks is sent, so a second sync uploads nothing."""
    folder = RunFolder.open(run_dir)
    rec = folder.record
    uri = canonical_uri(uri or rec.mlflow.uri or "")
    if not uri:
        raise BenchError(f"{folder.path} was run without tracking; give the store: bench sync {folder.path} --uri URI")
    experiment = rec.mlflow.experiment or rec.tags.get("bench.protocol") or "default"
    try:
        with quiet_mlflow():
            client, exp_id = connect(uri, experiment)
            return _upload(client, exp_id, folder, uri, experiment)
    except BenchError:
        raise
    except Exception as err:
        raise BenchError(f"cannot sync {folder.path} to {uri}: {root_cause(err)}", key="--uri") from None


def _upload(client, exp_id: str, folder: RunFolder, uri: str, experiment: str) -> SyncReport:
    from mlflow.entities import RunTag
    from mlflow.exceptions import MlflowException

    rec = folder.record
    run = None
    if rec.mlflow.run_id and rec.mlflow.uri == uri:
        with contextlib.suppress(MlflowException):
            run = client.get_run(rec.mlflow.run_id)
    created = run is None
    if created:
        name = rec.tags.get("mlflow.runName") or rec.local_id
        run = _retry(client.create_run, exp_id, start_time=int(rec.started * 1000), run_name=name)
    run_id = run.info.run_id
    _log_params(client, run_id, rec.params, dict(run.data.params))
    _retry(client.log_batch, run_id, tags=[RunTag(k, _param_str(v)) for k, v in rec.tags.items()])

    entities = [m for step, when, values in folder.read_metrics() for m in _metric_entities(values, step, when)]
    have: dict[str, set[tuple[int, int, float]]] = {}
    for key in {m.key for m in entities}:
        have[key] = {(m.step, m.timestamp, m.value) for m in client.get_metric_history(run_id, key)}
    missing = [m for m in entities if (m.step, m.timestamp, m.value) not in have[m.key]]
    _log_metric_entities(client, run_id, missing)

    logged = {a.path for a in client.list_artifacts(run_id)}
    files = [p for p in folder.artifacts() if p.name not in logged]
    for path in files:
        client.log_artifact(run_id, str(path))
    if rec.status != RUNNING:
        _retry(client.set_terminated, run_id, status=rec.status, end_time=int((rec.ended or time.time()) * 1000))
    rec.mlflow.uri, rec.mlflow.experiment, rec.mlflow.run_id = uri, experiment, run_id
    rec.mlflow.synced = rec.status != RUNNING
    folder.save()
    return SyncReport(run_id=run_id, created=created, metrics=len(missing), artifacts=len(files))


def run_dir_of(uri: str, run_id: str) -> str:
    """The run folder an MLflow run was logged from (its `bench.run_dir` tag)."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    try:
        run = MlflowClient(tracking_uri=uri).get_run(run_id)
    except MlflowException:
        raise BenchError(f"{run_id!r} is neither a run folder nor an MLflow run in {uri}; pass a run folder, or the "
                         f"store with tracking.uri=...", key="tracking.uri") from None
    folder = run.data.tags.get("bench.run_dir")
    if not folder:
        raise BenchError(f"MLflow run {run_id} has no bench.run_dir tag (logged by an older ForgeryBench); pass its run folder")
    return folder


def search_runs(uri: str, experiments: list[str]) -> pd.DataFrame:
    """All runs of the named experiments (missing experiments are skipped) as MLflow's pandas frame."""
    mlflow = _mlflow()
    mlflow.set_tracking_uri(uri)
    names = [e for e in experiments if mlflow.get_experiment_by_name(e) is not None]
    if not names:
        return pd.DataFrame()
    return mlflow.search_runs(experiment_names=names, output_format="pandas")


def find_runs(uri: str, run_id: str) -> pd.DataFrame:
    """Runs of any experiment whose id is `run_id` or starts with it (the short ids tables print)."""
    mlflow = _mlflow()
    mlflow.set_tracking_uri(uri)
    runs = mlflow.search_runs(search_all_experiments=True, output_format="pandas")
    return runs[runs["run_id"].str.startswith(run_id)] if len(runs) else runs


def download_artifact(uri: str, run_id: str, path: str, dst: Path) -> Path | None:
    """A run's artifact copied under `dst`; None when the run has no such artifact."""
    import os

    mlflow = _mlflow()
    bar = os.environ.get("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR")
    os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"  # one bar per file would flood a leaderboard
    try:
        return Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=path, dst_path=str(dst),
                                                        tracking_uri=uri))
    except Exception:  # MLflow raises several types (missing file, missing run, store errors): all mean "absent"
        return None
    finally:
        if bar is None:
            os.environ.pop("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR")
        else:
            os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = bar

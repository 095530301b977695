"""The run folder: the source of truth of a run (docs/run-record.md), written before and regardless of MLflow.

`RunFolder` owns the files (run.json, metrics.jsonl, config*.yaml, results.*); `RunLog` writes every param, tag and
metric there first and then mirrors it to a tracker, whose failures never reach the run. Neither imports torch or
mlflow: `bench sync` and the leaderboard read folders without them.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

SCHEMA = 1
RUNNING, FINISHED, FAILED = "RUNNING", "FINISHED", "FAILED"
HEARTBEAT_EVERY_S = 60.0  # run.json's heartbeat (and the bench.heartbeat tag) is refreshed this often while the process lives
STALE_AFTER_S = 5 * HEARTBEAT_EVERY_S  # a RUNNING run whose heartbeat is older than this was killed
METRICS, RECORD = "metrics.jsonl", "run.json"


@dataclass
class MlflowRef:
    uri: str | None = None
    experiment: str | None = None
    run_id: str | None = None
    synced: bool = False  # every param, tag, metric and artifact of the folder is in that run


@dataclass
class RunRecord:
    """run.json (docs/run-record.md)."""

    local_id: str
    status: str = RUNNING
    started: float = field(default_factory=time.time)
    ended: float | None = None
    heartbeat: float = field(default_factory=time.time)
    mlflow: MlflowRef = field(default_factory=MlflowRef)
    tags: dict[str, str] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    schema: int = SCHEMA

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RunRecord:
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        return cls(**{**known, "mlflow": MlflowRef(**d.get("mlflow") or {})})

    def is_stale(self, now: float | None = None) -> bool:
        """RUNNING, but the process stopped refreshing its heartbeat: killed, not a result."""
        return self.status == RUNNING and (now or time.time()) - self.heartbeat > STALE_AFTER_S


def write_atomic(path: Path, text: str) -> None:
    """Temp file + rename: a kill never leaves a half-written file."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


class RunFolder:
    """One run's folder. `create` for a new run, `open` to continue (resume) or read (sync, evaluate) one."""

    def __init__(self, path: Path, record: RunRecord) -> None:
        self.path = path
        self.record = record
        self.lock = threading.RLock()  # the heartbeat thread and the main thread both change and rewrite run.json

    @classmethod
    def create(cls, output: str | Path, protocol: str, name: str) -> RunFolder:
        # uuid, not the seeded RNG: two runs started in the same second must not share a folder
        local_id = f"{time.strftime('%Y%m%d-%H%M%S')}-{name}-{uuid.uuid4().hex[:6]}"
        path = Path(output).expanduser() / protocol / local_id
        path.mkdir(parents=True)
        return cls(path, RunRecord(local_id=local_id))

    @classmethod
    def open(cls, path: str | Path) -> RunFolder:
        from bench.errors import BenchError

        path = Path(path).expanduser()
        try:
            record = RunRecord.from_dict(json.loads((path / RECORD).read_text()))
        except (OSError, ValueError, TypeError) as err:
            raise BenchError(f"{path} is not a run folder: cannot read its {RECORD} ({type(err).__name__}: {err})") from None
        return cls(path, record)

    # ---- files ---------------------------------------------------------------------------------------------
    def save(self) -> None:
        with self.lock:
            write_atomic(self.path / RECORD, json.dumps(asdict(self.record), indent=1, default=str))

    def write_config(self, text: str) -> str:
        """config.yaml for a new run; a resume writes config.resume-<n>.yaml beside it, never over it."""
        name, n = "config.yaml", 0
        while (self.path / name).exists():
            n += 1
            name = f"config.resume-{n}.yaml"
        write_atomic(self.path / name, text)
        return name

    def configs(self) -> list[Path]:
        """config.yaml, then every config.resume-<n>.yaml in order (the last one is the latest)."""
        resumed = sorted(self.path.glob("config.resume-*.yaml"), key=lambda p: int(p.stem.rsplit("-", 1)[1]))
        return [p for p in [self.path / "config.yaml", *resumed] if p.exists()]

    def append_metrics(self, metrics: Mapping[str, float], step: int | None, when: float) -> None:
        line = json.dumps({"step": step, "time": when, "metrics": {k: float(v) for k, v in metrics.items()}})
        with open(self.path / METRICS, "a") as f:
            f.write(line + "\n")

    def metrics_offset(self) -> int:
        """Bytes of metrics.jsonl written so far (stored in checkpoints, so a resume can drop what came after)."""
        path = self.path / METRICS
        return path.stat().st_size if path.exists() else 0

    def truncate_metrics(self, offset: int) -> None:
        path = self.path / METRICS
        if path.exists() and path.stat().st_size > offset:
            with open(path, "r+b") as f:
                f.truncate(offset)

    def read_metrics(self) -> Iterator[tuple[int | None, float, dict[str, float]]]:
        """(step, unix time, {name: value}) per logging call, in order."""
        path = self.path / METRICS
        if not path.exists():
            return
        for line in path.read_text().splitlines():
            if line.strip():
                entry = json.loads(line)
                yield entry["step"], entry["time"], entry["metrics"]

    def artifacts(self) -> list[Path]:
        """Files MLflow mirrors as artifacts: configs, results, predictions and ROC curves (unless the run's
        `tracking.log_predictions` is off); the selected checkpoint only with `tracking.log_checkpoint`."""
        flag = {k: str(self.record.params.get(f"tracking.{k}", default)).lower() == "true"
                for k, default in (("log_predictions", True), ("log_checkpoint", False))}
        names = ["results.md", "results.json", "roc.png"]
        names += ["predictions.parquet"] * flag["log_predictions"] + ["best.pt"] * flag["log_checkpoint"]
        return [*self.configs(), *(self.path / n for n in names if (self.path / n).exists())]


class Tracker:
    """What RunLog mirrors to (bench.tracking.MlflowTracker); this no-op is used when tracking is off."""

    run_id: str | None = None
    failed: bool = False

    def log_params(self, params: Mapping[str, Any]) -> None: ...
    def set_tags(self, tags: Mapping[str, Any]) -> None: ...
    def log_metrics(self, metrics: Mapping[str, float], step: int | None, when: float) -> None: ...
    def log_artifacts(self, paths: list[Path]) -> None: ...
    def end(self, status: str, when: float) -> None: ...


class RunLog:
    """Writes to the run folder first, then to the tracker. A heartbeat thread keeps run.json alive."""

    def __init__(self, folder: RunFolder, tracker: Tracker | None = None) -> None:
        self.folder = folder
        self.tracker = tracker or Tracker()
        self._stop = threading.Event()
        self._beat = threading.Thread(target=self._heartbeat_loop, daemon=True)

    @property
    def record(self) -> RunRecord:
        return self.folder.record

    def start(self) -> RunLog:
        self.record.mlflow.run_id = self.tracker.run_id or self.record.mlflow.run_id
        self.record.status, self.record.ended, self.record.error = RUNNING, None, None
        self.heartbeat()
        self._beat.start()
        return self

    def params(self, params: Mapping[str, Any]) -> None:
        with self.folder.lock:
            self.record.params.update(params)
            self.folder.save()
        self.tracker.log_params(params)

    def tags(self, tags: Mapping[str, Any]) -> None:
        with self.folder.lock:
            self.record.tags.update({k: str(v) for k, v in tags.items()})
            self.folder.save()
        self.tracker.set_tags(tags)

    def metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        when = time.time()
        self.folder.append_metrics(metrics, step, when)
        self.tracker.log_metrics(metrics, step, when)

    def heartbeat(self) -> None:
        now = time.time()
        with self.folder.lock:  # run.json's field and the tag say the same
            self.record.heartbeat = now
            self.record.tags["bench.heartbeat"] = f"{now:.0f}"
            self.folder.save()
        self.tracker.set_tags({"bench.heartbeat": f"{now:.0f}"})

    def _heartbeat_loop(self) -> None:
        while not self._stop.wait(HEARTBEAT_EVERY_S):
            try:
                self.heartbeat()
            except OSError:  # the folder went read-only or away: the main thread will say so when it writes
                pass

    def finish(self, status: str, error: str | None = None) -> None:
        """Final record, then artifacts and the end of the MLflow run. `synced` says whether MLflow has it all."""
        self._stop.set()
        if error:
            self.tags({"bench.error": error[:5000]})
        with self.folder.lock:
            self.record.status, self.record.error, self.record.ended = status, error, time.time()
            self.folder.save()
        self.tracker.log_artifacts(self.folder.artifacts())
        self.tracker.end(status, self.record.ended)
        self.record.mlflow.synced = self.tracker.run_id is not None and not self.tracker.failed
        self.folder.save()

"""Checks a run's config before any data is loaded or model built, without importing torch or mlflow (the CLI
calls this before importing the runner, so a missing root or a dead tracking server fails in about a second).

Everything here reads only the config and the file system: dataset roots, output folder, tracking store,
the checkpoint to resume from, and trainer values no run can use.
"""

from __future__ import annotations

import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from bench.checks import check_config
from bench.config import PathsConfig, ProtocolConfig, SplitSpec, TrackingConfig, TrainerConfig
from bench.dataset import DatasetAdapter
from bench.errors import BenchError
from bench.plugins import get_plugins

HTTP_TIMEOUT_S = 5.0


def check_run(cfg: DictConfig, *, evaluate_only: bool = False) -> dict[str, DatasetAdapter]:
    """Raise one BenchError for the first problem found (all missing dataset roots at once); return the adapters.
    `evaluate_only` (bench evaluate): only the test sets' datasets are needed, and nothing is trained or resumed."""
    protocol: ProtocolConfig = OmegaConf.to_object(cfg.protocol)
    trainer: TrainerConfig = OmegaConf.to_object(cfg.trainer)
    paths: PathsConfig = OmegaConf.to_object(cfg.paths)
    check_config(cfg)  # the schemas' value rules (compose_run applies them too; a hand-built config gets them here)
    names = {t.dataset for t in protocol.test.values()}
    if not evaluate_only:
        names |= {protocol.train.dataset, val_spec(protocol).dataset}
    adapters = build_adapters(cfg.datasets, paths, names)
    check_writable(Path(paths.output), "paths.output", "the run folders", env="BENCH_OUTPUT")
    if not evaluate_only:
        check_resume(trainer.resume)
    check_tracking(OmegaConf.to_object(cfg.tracking))
    return adapters


def val_spec(protocol: ProtocolConfig) -> SplitSpec:
    """The checkpoint-selection split: `protocol.val`, or the training spec on split "val"."""
    train = protocol.train
    return protocol.val or SplitSpec(dataset=train.dataset, split="val", domains=train.domains, real=train.real)


def build_adapters(datasets: DictConfig, paths: PathsConfig, names: set[str]) -> dict[str, DatasetAdapter]:
    """Instantiate every dataset the protocol needs; report all missing roots at once, before any work."""
    registry = get_plugins().datasets
    adapters, problems = {}, []
    for name in sorted(names):
        cls = registry.get(name)
        if name not in datasets:
            raise BenchError(f"no config for dataset {name!r}", key=f"datasets.{name}")
        adapter = cls(datasets[name], Path(paths.cache).expanduser() / name)
        try:
            adapter.check()
        except BenchError as err:
            problems.append(str(err))
        adapters[name] = adapter
    if problems:
        raise BenchError("cannot run protocol: " + "; ".join(problems))
    return adapters


def probe_writable(folder: Path) -> str | None:
    """None if a file can be created in `folder` (or, if it does not exist yet, in its nearest existing parent,
    where it would be created); else why not. A real probe: as root, permission bits say nothing."""
    folder = folder.expanduser().absolute()
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        return f"{folder} is not a folder"
    try:
        with tempfile.TemporaryFile(dir=folder):
            return None
    except OSError as err:
        return f"cannot write to {folder} ({err.strerror or err})"


def check_writable(folder: Path, key: str, what: str, env: str | None = None) -> None:
    problem = probe_writable(folder)
    if problem:
        hint = f"set {key}=/a/writable/folder" + (f" or export {env}=..." if env else "")
        raise BenchError(f"{problem}, where {what} go: {hint}", key=key)


def check_resume(path: str | None) -> None:
    """The checkpoint exists inside a run folder we can write to; its contents are checked by the runner (needs torch)."""
    if not path:
        return
    ckpt = Path(path).expanduser()
    if not ckpt.is_file():
        raise BenchError(f"trainer.resume: checkpoint {ckpt} does not exist; pass a run folder's last.pt", key="trainer.resume")
    if not (ckpt.parent / "run.json").is_file():
        raise BenchError(f"trainer.resume: {ckpt.parent} is not a run folder (no run.json beside the checkpoint)",
                         key="trainer.resume")
    check_writable(ckpt.parent, "trainer.resume", "the resumed run's files")


def check_tracking(cfg: TrackingConfig) -> None:
    """The store is usable: a sqlite file in an existing, writable folder; an HTTP server that answers in seconds."""
    if not cfg.enabled:
        return
    uri = cfg.uri
    off = "or set tracking.enabled=false"
    if uri.startswith("sqlite:///"):
        db = Path(uri.removeprefix("sqlite:///"))
        if not db.parent.expanduser().is_dir():
            raise BenchError(f"tracking.uri={uri}: folder {db.parent.absolute()} does not exist (it is never created "
                             f"silently); create it, point tracking.uri elsewhere {off}", key="tracking.uri")
        problem = probe_writable(db.parent) or _probe_file(db) or probe_writable(Path("mlruns"))
        if problem:  # MLflow keeps a sqlite store's artifacts under ./mlruns
            raise BenchError(f"tracking.uri={uri}: {problem}; point tracking.uri at a writable place {off}",
                             key="tracking.uri")
    elif uri.startswith(("http://", "https://")):
        _check_http(uri, off)
    elif "://" not in uri or uri.startswith("file:"):  # a local MLflow file store
        problem = probe_writable(Path(uri.removeprefix("file://").removeprefix("file:")))
        if problem:
            raise BenchError(f"tracking.uri={uri}: {problem} {off}", key="tracking.uri")


def _probe_file(db: Path) -> str | None:
    if not db.exists():
        return None
    try:
        with open(db, "r+b"):
            return None
    except OSError as err:
        return f"cannot write to {db} ({err.strerror or err})"


def _check_http(uri: str, off: str) -> None:
    url = uri.rstrip("/") + "/api/2.0/mlflow/experiments/search?max_results=1"
    try:
        with urllib.request.urlopen(url, timeout=HTTP_TIMEOUT_S) as response:
            response.read(1)
    except urllib.error.HTTPError as err:
        what = "refused the credentials (set MLFLOW_TRACKING_TOKEN or _USERNAME/_PASSWORD)" if err.code in (401, 403) \
            else f"does not answer as an MLflow server (HTTP {err.code})"
        raise BenchError(f"tracking.uri={uri} {what} {off}", key="tracking.uri") from None
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise BenchError(f"tracking.uri={uri} is not reachable ({reason}, timeout {HTTP_TIMEOUT_S:.0f} s); start the "
                         f"server, point tracking.uri elsewhere {off}", key="tracking.uri") from None


"""One benchmark run: train on the protocol's training domains, select the checkpoint on their validation
split (never on a test set), evaluate every test set with it, record everything.

Order matters: config checks (bench/preflight.py) before any data loads; data checks (leakage, missing files) and
the resume checkpoint (weights-only, fits the model) before anything is written; then the run folder, the source of
truth (bench/rundir.py), which MLflow mirrors (bench/tracking.py). The runner knows detectors and datasets only
through their interfaces (`bench.detector`, `bench.dataset`).
"""

from __future__ import annotations

import contextlib
import errno
import platform
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import DataLoader

from bench import checkpoint, distributed, guards, metrics, preflight, provenance
from bench.config import RunConfig, SplitSpec
from bench.data import FrameDataset, assign_domains, evenly_spaced_frames, make_loader
from bench.dataset import DatasetAdapter
from bench.engine import check_finite_weights, predict, train_one_epoch
from bench.errors import BenchError
from bench.optim import build_optimizer, build_scheduler
from bench.plugins import get_plugins
from bench.records import Sample
from bench.rundir import FAILED, FINISHED, RunFolder, RunLog, RunRecord, Tracker
from bench.testsets import UNREADABLE, evaluate_all
from bench.tracking import MlflowTracker, canonical_uri, flatten


@dataclass
class RunResult:
    run_dir: Path
    run_id: str | None
    best_epoch: int
    val_score: float
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)  # test set -> metric name -> value
    health: str = guards.OK


@dataclass
class RunData:
    train: list[Sample]
    val: list[Sample]
    tests: dict[str, list[Sample]]


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise BenchError("trainer.device asks for CUDA but no GPU is visible; use trainer.device=auto or cpu", key="trainer.device")
    return device


def use_bf16(precision: str, device: torch.device) -> bool:
    if precision not in ("auto", "bf16", "fp32"):
        raise BenchError(f"trainer.precision must be auto, bf16 or fp32, got {precision!r}", key="trainer.precision")
    return precision == "bf16" or (precision == "auto" and device.type == "cuda")


def collect(adapters: dict[str, DatasetAdapter], spec: SplitSpec, what: str, *, need_both: bool = True) -> list[Sample]:
    samples = adapters[spec.dataset].select(spec.split, spec.domains, spec.real)
    labels = {s.label for s in samples}
    if need_both and labels != {0, 1}:
        has = "no samples" if not labels else ("only fake samples" if labels == {1} else "only real samples")
        raise BenchError(f"{what} ({spec.dataset}/{spec.split}, domains={spec.domains}) has {has}: AUC needs real and "
                         f"fake images; include real samples (real: true) or pick another split", key="protocol")
    return samples


@contextlib.contextmanager
def cache_errors(cache: str) -> Iterator[None]:
    """A read-only or full cache (datasets generate or read prepared files there) is one line naming paths.cache."""
    root = str(Path(cache).expanduser().absolute())
    try:
        yield
    except OSError as err:
        if err.errno in (errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOSPC) and str(err.filename or "").startswith(root):
            raise BenchError(f"cannot write {err.filename} ({err.strerror}): datasets keep generated and prepared files "
                             f"in the cache; set paths.cache=/a/writable/folder or export BENCH_CACHE=...", key="paths.cache") from None
        raise


def load_data(c: RunConfig, adapters: dict[str, DatasetAdapter]) -> RunData:
    """The run's samples, refused if test data would reach training or a listed file is gone."""
    with cache_errors(c.paths.cache):
        data = RunData(
            train=evenly_spaced_frames(collect(adapters, c.protocol.train, "the training set"), c.trainer.frames_per_video),
            val=collect(adapters, preflight.val_spec(c.protocol), "the validation set"),
            tests={name: collect(adapters, spec, f"test set {name!r}") for name, spec in c.protocol.test.items()})
    guards.check_leakage(data.train, data.val, data.tests)
    guards.check_files_exist({"train": data.train, "val": data.val, **data.tests})
    return data


def run_tags(c: RunConfig, folder: RunFolder, kind: str, device: torch.device, bf16: bool, model) -> dict[str, Any]:
    """The bench.* tags every run (train or evaluate) carries (docs/run-record.md)."""
    sha, dirty = provenance.git_state()
    plugins = get_plugins()
    return {
        "bench.run_kind": kind, "bench.detector": c.detector.name, "bench.protocol": c.protocol.name,
        "bench.protocol_version": c.protocol.version, "bench.scale": c.meta.scale,
        "bench.git_commit": sha, "bench.git_dirty": str(dirty).lower(),
        "bench.torch_threads": torch.get_num_threads(), "bench.python": platform.python_version(),
        "bench.plugins": provenance.plugin_versions(plugins),
        "bench.device": str(device), "bench.precision": "bf16" if bf16 else "fp32",
        "bench.run_dir": str(folder.path), "bench.local_id": folder.record.local_id,
        **{f"bench.version.{k}": v for k, v in provenance.package_versions().items()},
        **{f"bench.detector_info.{k}": v for k, v in model.describe().items()},
    }


def open_log(c: RunConfig, folder: RunFolder, run_name: str) -> RunLog:
    """The run's log: its folder, mirrored to MLflow when tracking is on. A run folder that already has an MLflow run
    in this store and experiment (a resume) continues that run."""
    rec = folder.record
    tracker = None
    if c.tracking.enabled:
        uri, experiment = canonical_uri(c.tracking.uri), c.tracking.experiment or c.protocol.name
        same = (rec.mlflow.uri, rec.mlflow.experiment) == (uri, experiment)
        tracker = MlflowTracker(uri, experiment, c.tracking.run_name or run_name, folder.path)
        tracker.start(run_id=rec.mlflow.run_id if same else None, start_time=rec.started)
        rec.mlflow.uri, rec.mlflow.experiment = uri, experiment
    log = RunLog(folder, tracker).start()
    log.tags({"mlflow.runName": c.tracking.run_name or run_name})
    return log


def validate(model, loader: DataLoader, labels: np.ndarray, c: RunConfig, device, bf16: bool) -> dict[str, float]:
    out = predict(model, loader, device=device, bf16=bf16, progress=c.trainer.progress, desc="validate",
                  on_bad_image=c.data.on_bad_image, channels_last=c.trainer.channels_last)
    ok = out.read  # unreadable files are left out (data.on_bad_image=skip)
    m = metrics.binary_metrics(labels[ok], out.scores[ok], bootstrap=0)
    skipped = {UNREADABLE: int((~ok).sum())} if c.data.on_bad_image == "skip" else {}
    return {"auc": m.auc, "loss": float(out.losses[ok].mean()), "acc": m.acc, **skipped}


@dataclass
class Parts:
    """What training needs beyond the data: the model, its loaders, optimiser and schedule."""

    model: Any
    train_loader: DataLoader
    val_loader: DataLoader
    optimizer: torch.optim.Optimizer
    scheduler: Any
    index_loader: DataLoader  # the train batches without images, for epochs the detector needs none (`needs_images`)
    loss_fn: Callable[..., Any] | None = None  # training_loss, wrapped by DDP / torch.compile when asked


def build_parts(c: RunConfig, data: RunData, domain_names: list[str], domain_ids: np.ndarray, device: torch.device) -> Parts:
    trainer = c.trainer
    model = get_plugins().detectors.get(c.detector.name)(c.detector, domain_names).to(device)
    if trainer.channels_last:
        model = model.to(memory_format=torch.channels_last)
    loaders = dict(num_workers=trainer.num_workers, device_stage=True)
    train_loader = make_loader(FrameDataset(data.train, model.train_transform(), domain_ids), batch_size=trainer.batch_size,
                               train=True, sampler=trainer.sampler, seed=trainer.seed, **loaders)
    val_loader = make_loader(FrameDataset(data.val, model.eval_transform()), batch_size=trainer.eval_batch_size,
                             train=False, **loaders)
    steps_per_epoch = len(train_loader) if trainer.max_steps_per_epoch is None else min(len(train_loader), trainer.max_steps_per_epoch)
    optimizer = build_optimizer(model.trainable_parameters(), trainer)
    scheduler = build_scheduler(optimizer, trainer, total_steps=max(1, trainer.epochs * steps_per_epoch))
    index_loader = make_loader(FrameDataset(data.train, None, domain_ids), batch_size=trainer.batch_size, train=True,
                               sampler=trainer.sampler, seed=trainer.seed)
    loss_fn = distributed.wrap(model, device)
    if trainer.compile:  # the training step (through DDP's wrapper when there is one) and the forward of predictions
        loss_fn = torch.compile(loss_fn)
        model.compile()
    return Parts(model, train_loader, val_loader, optimizer, scheduler, index_loader, loss_fn)


class RankLog(RunLog):
    """The log of ranks > 0 of a data-parallel run: rank 0 alone writes the run folder and MLflow."""

    def __init__(self) -> None:  # no folder, no tracker, no heartbeat thread
        self.folder = None  # type: ignore[assignment]
        self.tracker = Tracker()
        self._record = RunRecord(local_id="")

    @property
    def record(self) -> RunRecord:
        return self._record

    def params(self, params) -> None: ...
    def tags(self, tags) -> None: ...
    def metrics(self, metrics, step=None) -> None: ...
    def heartbeat(self) -> None: ...
    def finish(self, status: str, error: str | None = None) -> None: ...


def run(cfg: DictConfig) -> RunResult:
    t_start = time.time()
    adapters = preflight.check_run(cfg)
    c: RunConfig = OmegaConf.to_object(cfg)
    w, device = distributed.setup(resolve_device(c.trainer.device))
    try:
        return _run(cfg, c, adapters, w, device, t_start)
    finally:
        distributed.teardown()


def _run(cfg: DictConfig, c: RunConfig, adapters: dict[str, DatasetAdapter], w: distributed.World, device: torch.device,
         t_start: float) -> RunResult:
    protocol, trainer = c.protocol, c.trainer
    with distributed.main_first():  # rank 0 fills the dataset caches, the other ranks read them
        data = load_data(c, adapters)
    fake_domains = adapters[protocol.train.dataset].expand_domains(protocol.train.domains or None)  # DiFF: t2i -> generators
    domain_names, domain_ids = assign_domains(data.train, fake_domains, protocol.real_domain)
    distributed.check_batch(trainer.batch_size, len(domain_names) if trainer.sampler == "domain_balanced" else None, w.size)

    provenance.seed_everything(trainer.seed)
    bf16 = use_bf16(trainer.precision, device)
    parts = build_parts(c, data, domain_names, domain_ids, device)
    if w.rank > 0:  # every rank built the same model; from here on each draws its own randomness (augmentation)
        provenance.seed_everything(trainer.seed + w.rank)
    state = checkpoint.TrainState()
    folder = None
    if trainer.resume:  # validated (weights-only, fits this model) before anything is written; same folder, same MLflow run
        payload = checkpoint.load(trainer.resume)
        state = checkpoint.restore(payload, model=parts.model, optimizer=parts.optimizer, scheduler=parts.scheduler)
        restore_rank_rng(payload, w, trainer.seed, state.epoch)
        if w.main:
            folder = RunFolder.open(Path(trainer.resume).expanduser().parent)
            folder.truncate_metrics(payload.get("extra", {}).get("metrics_offset", folder.metrics_offset()))
        print(f"resumed from {trainer.resume} at epoch {state.epoch}, step {state.step}")
    elif w.main:
        folder = RunFolder.create(c.paths.output, protocol.name, c.detector.name)
    if folder is None:
        log: RunLog = RankLog()
    else:
        folder.write_config(OmegaConf.to_yaml(cfg, resolve=True))
        run_name = " ".join([c.detector.name, *(o for o in c.meta.overrides
                                                if not o.startswith(("detector=", "protocol=", "trainer.resume=")))])
        log = open_log(c, folder, run_name.strip())
    try:
        log.params(flatten(OmegaConf.to_container(cfg, resolve=True)))
        log.tags({**(run_tags(c, folder, "train", device, bf16, parts.model) if folder else {}), "bench.complete": "false",
                  "bench.world_size": w.size, "bench.train_manifest_sha256": provenance.manifest_hash(data.train),
                  "bench.val_manifest_sha256": provenance.manifest_hash(data.val),
                  **{f"bench.test_manifest_sha256.{n}": provenance.manifest_hash(s) for n, s in data.tests.items()},
                  "bench.domains": ",".join(domain_names), "bench.n_train": len(data.train), "bench.n_val": len(data.val)})
        ranks = f" x {w.size} processes" if w.size > 1 else ""
        print(f"{protocol.name} v{protocol.version} | {c.detector.name} on {device}{ranks}{' (bf16)' if bf16 else ''} | "
              f"train {len(data.train)} frames over {len(domain_names)} domains, val {len(data.val)}, "
              f"test {', '.join(f'{n}: {len(s)}' for n, s in data.tests.items())} | run folder {folder and folder.path}")
        before = state.elapsed_s  # time of the sessions before a resume

        def elapsed() -> float:
            return before + time.time() - t_start

        last_loss = train_epochs(c, log, parts, data, state, device, bf16, elapsed)
        return test_and_finish(c, log, parts.model, data, state, device, bf16, last_loss, elapsed)
    except BaseException as err:
        if isinstance(err, guards.Diverged):
            log.tags({"bench.health": guards.DIVERGED})
        log.finish(FAILED, error=f"{type(err).__name__}: {err}")
        raise


def restore_rank_rng(payload: dict[str, Any], w: distributed.World, seed: int, epoch: int) -> None:
    """A resumed rank continues its own random streams when the run had as many ranks; else each rank > 0 reseeds
    from (seed, rank, epoch) (rank 0 has the checkpoint's, which `checkpoint.restore` set)."""
    ranks = payload.get("extra", {}).get("rng_ranks")
    if ranks and len(ranks) == w.size:
        checkpoint.set_rng_state(ranks[w.rank])
    elif w.rank > 0:
        provenance.seed_everything(seed + w.rank + 1000 * epoch)


def save_checkpoints(log: RunLog, parts: Parts, state: checkpoint.TrainState, improved: bool) -> None:
    """best.pt (when validation improved) and last.pt, written by rank 0 with every rank's RNG state."""
    rngs = distributed.gather_tensors(checkpoint.rng_state())  # every rank takes part in the gather
    if log.folder is None:
        return
    extra = {"metrics_offset": log.folder.metrics_offset(),  # a resume drops what was logged after this
             **({"rng_ranks": rngs} if len(rngs) > 1 else {})}
    saved = dict(model=parts.model, optimizer=parts.optimizer, scheduler=parts.scheduler, state=state, extra=extra)
    if improved:  # best.pt before last.pt: a kill between the two then repeats this epoch instead of losing best.pt
        checkpoint.save(log.folder.path / "best.pt", **saved)
    checkpoint.save(log.folder.path / "last.pt", **saved)


def train_epochs(c: RunConfig, log: RunLog, parts: Parts, data: RunData, state: checkpoint.TrainState, device, bf16: bool,
                 elapsed: Callable[[], float]) -> float | None:
    """Epochs until `trainer.epochs`, selecting on validation; returns the last epoch's mean training loss."""
    trainer, model = c.trainer, parts.model
    val_labels = np.array([s.label for s in data.val])
    last_loss = None
    while state.epoch < trainer.epochs:
        loader = parts.train_loader if model.needs_images(len(data.train)) else parts.index_loader
        stats = train_one_epoch(model, loader, parts.optimizer, parts.scheduler, state, device=device, bf16=bf16,
                                grad_clip=trainer.grad_clip, max_steps=trainer.max_steps_per_epoch, progress=trainer.progress,
                                log_every=trainer.log_every, on_bad_image=c.data.on_bad_image, on_log=log.metrics,
                                loss_fn=parts.loss_fn, channels_last=trainer.channels_last)
        check_finite_weights(model, state)
        val = validate(model, parts.val_loader, val_labels, c, device, bf16)
        state.epoch += 1
        last_loss = stats.loss
        score = val["auc"] if trainer.select_metric == "auc" else -val["loss"]
        improved = score > state.best_score
        if improved:
            state.best_score, state.best_epoch = score, state.epoch
        log.metrics({"epoch/train_loss": stats.loss, **{f"epoch/train_loss_{k}": v for k, v in stats.terms.items()},
                     **{f"epoch/phase_steps_{k}": v for k, v in stats.phases.items()},
                     **({f"epoch/{UNREADABLE}": stats.unreadable} if c.data.on_bad_image == "skip" else {}),
                     **{f"val/{k}": v for k, v in val.items()}}, step=state.epoch)
        state.elapsed_s = elapsed()
        save_checkpoints(log, parts, state, improved)
        log.heartbeat()
        print(f"epoch {state.epoch}/{trainer.epochs}: train loss {stats.loss:.4f} | val auc {val['auc']:.4f} "
              f"loss {val['loss']:.4f}{'  *best*' if improved else ''}")
    return last_loss


def test_and_finish(c: RunConfig, log: RunLog, model, data: RunData, state: checkpoint.TrainState, device, bf16: bool,
                    last_loss: float | None, elapsed: Callable[[], float]) -> RunResult:
    """Evaluate the checkpoint selected on validation on every test set; judge whether the run can be a result."""
    folder = log.folder
    log.tags({f"bench.detector_info.{k}": v for k, v in model.describe().items()})  # after training: cache use etc.
    if folder is not None and (folder.path / "best.pt").exists():
        checkpoint.restore(checkpoint.load(folder.path / "best.pt", key="trainer.resume"), model=model)
    distributed.broadcast_state(model)  # rank 0 read best.pt; the others test the same weights
    results, predictions = evaluate_all(model, data.tests, c, device, bf16, log)
    if folder is None:  # ranks > 0: their share of the predictions is with rank 0, which records the run
        return RunResult(run_dir=Path(), run_id=None, best_epoch=state.best_epoch, val_score=state.best_score)
    log.metrics({"val/best_score": state.best_score, "best_epoch": state.best_epoch, "time_s": elapsed()})

    health, reason = guards.training_health(state.initial_loss, last_loss)
    if health == guards.OK:
        health, reason = guards.scores_health({n: f["score"].to_numpy() for n, f in predictions.groupby("test_set", sort=False)})
    complete = c.trainer.max_steps_per_epoch is None and state.epoch == c.trainer.epochs
    log.tags({"bench.health": health, "bench.complete": str(complete).lower()})
    if health == guards.DIVERGED:
        raise guards.Diverged(f"training diverged: {reason}; results are in {folder.path} but the run is marked "
                              f"bench.health=diverged and is not a result; lower trainer.lr", key="trainer.lr")
    log.finish(FINISHED)
    if health != guards.OK:
        print(f"bench: warning: {reason}; the run is marked bench.health={health} and is not a result", file=sys.stderr)
    run_id = log.record.mlflow.run_id
    mirror = f" | MLflow run {run_id} in {c.tracking.uri}" if run_id else ""
    if log.tracker.failed:
        mirror = f" | MLflow does not have it in full: bench sync {folder.path}"
    print(f"run folder: {folder.path}{mirror}")
    return RunResult(run_dir=folder.path, run_id=run_id, best_epoch=state.best_epoch, val_score=state.best_score,
                     metrics=results, health=health)

"""One benchmark run: train on the protocol's training domains, select the checkpoint on their validation
split (never on a test set), evaluate every test set with it, log everything.

The runner knows detectors and datasets only through their interfaces (`bench.detector`, `bench.dataset`).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from omegaconf import DictConfig, OmegaConf
from tabulate import tabulate
from torch.utils.data import DataLoader

from bench import checkpoint, metrics, provenance
from bench.config import RunConfig, SplitSpec
from bench.data import FrameDataset, assign_domains, evenly_spaced_frames, make_loader
from bench.dataset import DatasetAdapter
from bench.engine import predict, train_one_epoch
from bench.errors import BenchError
from bench.optim import build_optimizer, build_scheduler
from bench.plugins import get_plugins
from bench.records import Predictions, Sample
from bench.tracking import Tracker, flatten


@dataclass
class RunResult:
    run_dir: Path
    run_id: str | None
    best_epoch: int
    val_score: float
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)  # test set -> metric name -> value


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


def build_adapters(c: RunConfig, names: set[str]) -> dict[str, DatasetAdapter]:
    """Instantiate and check every dataset the protocol needs; report all missing roots at once, before any work."""
    registry = get_plugins().datasets
    adapters, problems = {}, []
    for name in sorted(names):
        cls = registry.get(name)
        if name not in c.datasets:
            raise BenchError(f"no config for dataset {name!r}", key=f"datasets.{name}")
        adapter = cls(c.datasets[name], Path(c.paths.cache).expanduser() / name)
        try:
            adapter.check()
        except BenchError as err:
            problems.append(str(err))
        adapters[name] = adapter
    if problems:
        raise BenchError("cannot run protocol: " + "; ".join(problems))
    return adapters


def collect(adapters: dict[str, DatasetAdapter], spec: SplitSpec, what: str, *, need_both: bool = True) -> list[Sample]:
    samples = adapters[spec.dataset].select(spec.split, spec.domains, spec.real)
    labels = {s.label for s in samples}
    if need_both and labels != {0, 1}:
        has = "no samples" if not labels else ("only fake samples" if labels == {1} else "only real samples")
        raise BenchError(f"{what} ({spec.dataset}/{spec.split}, domains={spec.domains}) has {has}: AUC needs real and "
                         f"fake images; include real samples (real: true) or pick another split", key="protocol")
    return samples


def evaluate_set(name: str, model, samples: list[Sample], c: RunConfig, device, bf16: bool) -> tuple[dict[str, float], pd.DataFrame]:
    loader = make_loader(FrameDataset(samples, model.eval_transform()), batch_size=c.trainer.eval_batch_size, train=False,
                         num_workers=c.trainer.num_workers)
    scores, _ = predict(model, loader, device=device, bf16=bf16, progress=c.trainer.progress, desc=f"test {name}")
    preds = Predictions(keys=[s.key for s in samples], videos=[s.video for s in samples], domains=[s.domain for s in samples],
                        labels=np.array([s.label for s in samples]), scores=scores)
    result = metrics.evaluate(preds, bootstrap=c.trainer.bootstrap, seed=c.trainer.seed).as_dict()
    frame = pd.DataFrame({"test_set": name, "key": preds.keys, "video": preds.videos, "domain": preds.domains,
                          "label": preds.labels, "score": scores})
    return result, frame


def validate(model, loader: DataLoader, labels: np.ndarray, c: RunConfig, device, bf16: bool) -> dict[str, float]:
    scores, losses = predict(model, loader, device=device, bf16=bf16, progress=c.trainer.progress, desc="validate")
    m = metrics.binary_metrics(labels, scores, bootstrap=0)
    return {"auc": m.auc, "loss": float(losses.mean()), "acc": m.acc}


def run(cfg: DictConfig) -> RunResult:
    c: RunConfig = OmegaConf.to_object(cfg)
    t0 = time.time()
    protocol, trainer = c.protocol, c.trainer
    val_spec = protocol.val or SplitSpec(dataset=protocol.train.dataset, split="val", domains=protocol.train.domains,
                                         real=protocol.train.real)
    det_cls = get_plugins().detectors.get(c.detector.name)
    adapters = build_adapters(c, {protocol.train.dataset, val_spec.dataset, *(t.dataset for t in protocol.test.values())})

    train_samples = evenly_spaced_frames(collect(adapters, protocol.train, "the training set"), trainer.frames_per_video)
    val_samples = collect(adapters, val_spec, "the validation set")
    test_samples = {name: collect(adapters, spec, f"test set {name!r}") for name, spec in protocol.test.items()}
    fake_domains = protocol.train.domains or adapters[protocol.train.dataset].domains()
    domain_names, domain_ids = assign_domains(train_samples, fake_domains, protocol.real_domain)

    provenance.seed_everything(trainer.seed)
    device = resolve_device(trainer.device)
    bf16 = use_bf16(trainer.precision, device)
    model = det_cls(c.detector, domain_names).to(device)
    train_loader = make_loader(FrameDataset(train_samples, model.train_transform(), domain_ids), batch_size=trainer.batch_size,
                               train=True, sampler=trainer.sampler, seed=trainer.seed, num_workers=trainer.num_workers)
    # the same batches without reading images, for epochs where the detector needs none (`Detector.needs_images`)
    index_loader = make_loader(FrameDataset(train_samples, None, domain_ids), batch_size=trainer.batch_size, train=True,
                               sampler=trainer.sampler, seed=trainer.seed)
    val_loader = make_loader(FrameDataset(val_samples, model.eval_transform()), batch_size=trainer.eval_batch_size,
                             train=False, num_workers=trainer.num_workers)
    val_labels = np.array([s.label for s in val_samples])
    steps_per_epoch = len(train_loader) if trainer.max_steps_per_epoch is None else min(len(train_loader), trainer.max_steps_per_epoch)
    optimizer = build_optimizer(model.trainable_parameters(), trainer)
    scheduler = build_scheduler(optimizer, trainer, total_steps=max(1, trainer.epochs * steps_per_epoch))

    if trainer.resume:  # continue in the interrupted run's folder, where its best.pt is
        run_dir = Path(trainer.resume).expanduser().parent
    else:  # uuid, not the seeded RNG: two runs started in the same second must not share a folder
        stamp = time.strftime("%Y%m%d-%H%M%S")
        run_dir = Path(c.paths.output).expanduser() / protocol.name / f"{stamp}-{c.detector.name}-{uuid.uuid4().hex[:6]}"
        run_dir.mkdir(parents=True)
    resolved_yaml = OmegaConf.to_yaml(cfg, resolve=True)
    (run_dir / "config.yaml").write_text(resolved_yaml)

    state = checkpoint.TrainState()
    if trainer.resume:
        state = checkpoint.restore(checkpoint.load(trainer.resume), model=model, optimizer=optimizer, scheduler=scheduler)
        print(f"resumed from {trainer.resume} at epoch {state.epoch}, step {state.step}")

    run_name = " ".join([c.detector.name, *(o for o in c.meta.overrides if not o.startswith(("detector=", "protocol=")))])
    with Tracker(c.tracking, experiment=protocol.name, run_name=run_name.strip()) as tracker:
        tracker.log_params(flatten(OmegaConf.to_container(cfg, resolve=True)))
        tracker.set_tags({
            "bench.detector": c.detector.name, "bench.protocol": protocol.name, "bench.protocol_version": protocol.version,
            "bench.scale": c.meta.scale, "bench.git_commit": provenance.git_commit(),
            "bench.device": str(device), "bench.precision": "bf16" if bf16 else "fp32", "bench.run_dir": str(run_dir),
            "bench.train_manifest_sha256": provenance.manifest_hash(train_samples),
            "bench.val_manifest_sha256": provenance.manifest_hash(val_samples),
            **{f"bench.test_manifest_sha256.{n}": provenance.manifest_hash(s) for n, s in test_samples.items()},
            **{f"bench.version.{k}": v for k, v in provenance.package_versions().items()},
            **{f"bench.detector_info.{k}": v for k, v in model.describe().items()},
            "bench.domains": ",".join(domain_names),
            "bench.n_train": len(train_samples), "bench.n_val": len(val_samples),
        })
        tracker.log_text(resolved_yaml, "config.yaml")
        print(f"{protocol.name} v{protocol.version} | {c.detector.name} on {device}{' (bf16)' if bf16 else ''} | "
              f"train {len(train_samples)} frames over {len(domain_names)} domains, val {len(val_samples)}, "
              f"test {', '.join(f'{n}: {len(s)}' for n, s in test_samples.items())}")

        while state.epoch < trainer.epochs:
            loader = train_loader if model.needs_images(len(train_samples)) else index_loader
            stats = train_one_epoch(model, loader, optimizer, scheduler, state, device=device, bf16=bf16,
                                    grad_clip=trainer.grad_clip, max_steps=trainer.max_steps_per_epoch, progress=trainer.progress,
                                    on_step=lambda step, m: tracker.log_metrics(m, step=step) if step % trainer.log_every == 0 else None)
            val = validate(model, val_loader, val_labels, c, device, bf16)
            state.epoch += 1
            score = val["auc"] if trainer.select_metric == "auc" else -val["loss"]
            improved = score > state.best_score
            if improved:
                state.best_score, state.best_epoch = score, state.epoch
            checkpoint.save(run_dir / "last.pt", model=model, optimizer=optimizer, scheduler=scheduler, state=state)
            if improved:
                checkpoint.save(run_dir / "best.pt", model=model, optimizer=optimizer, scheduler=scheduler, state=state)
            tracker.log_metrics({"epoch/train_loss": stats.loss, **{f"epoch/train_loss_{k}": v for k, v in stats.terms.items()},
                                 **{f"epoch/phase_steps_{k}": v for k, v in stats.phases.items()},
                                 **{f"val/{k}": v for k, v in val.items()}}, step=state.epoch)
            print(f"epoch {state.epoch}/{trainer.epochs}: train loss {stats.loss:.4f} | val auc {val['auc']:.4f} "
                  f"loss {val['loss']:.4f}{'  *best*' if improved else ''}")

        tracker.set_tags({f"bench.detector_info.{k}": v for k, v in model.describe().items()})  # after training: cache use etc.
        if (run_dir / "best.pt").exists():  # evaluate the checkpoint chosen on validation data
            checkpoint.restore(checkpoint.load(run_dir / "best.pt"), model=model)
        results, frames = {}, []
        for name, samples in test_samples.items():
            results[name], frame = evaluate_set(name, model, samples, c, device, bf16)
            frames.append(frame)
            tracker.log_metrics({f"{name}/{k}": v for k, v in results[name].items()})
        tracker.log_metrics({"val/best_score": state.best_score, "best_epoch": state.best_epoch, "time_s": time.time() - t0})
        predictions = pd.concat(frames, ignore_index=True)
        predictions.to_parquet(run_dir / "predictions.parquet", index=False)
        tracker.log_predictions(predictions)
        tracker.log_roc({n: (f["label"].to_numpy(), f["score"].to_numpy()) for n, f in predictions.groupby("test_set", sort=False)})
        run_id = tracker.run_id

    print(results_table(results))
    print(f"run folder: {run_dir}" + (f" | MLflow run {run_id} in {c.tracking.uri}" if run_id else ""))
    return RunResult(run_dir=run_dir, run_id=run_id, best_epoch=state.best_epoch, val_score=state.best_score, metrics=results)


def results_table(results: dict[str, dict[str, Any]]) -> str:
    rows = []
    for name, m in results.items():
        rows.append([name, f"{m['auc']:.3f} [{m['auc_ci_low']:.3f}, {m['auc_ci_high']:.3f}]", f"{m['video_auc']:.3f}",
                     f"{m['ap']:.3f}", f"{m['eer']:.3f}", f"{m['acc']:.3f}", int(m["n_frames"]), int(m["n_videos"])])
    return tabulate(rows, headers=["test set", "AUC [95% CI]", "video AUC", "AP", "EER", "ACC@0.5", "frames", "videos"])

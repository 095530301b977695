"""The two loops: one training epoch, and prediction over a loader. No knowledge of any particular detector."""

from __future__ import annotations

import contextlib
import math
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from bench.checkpoint import TrainState
from bench.detector import Detector
from bench.data import count_unreadable
from bench.guards import Diverged


def autocast(device: torch.device, bf16: bool) -> contextlib.AbstractContextManager:
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()


@dataclass
class EpochStats:
    loss: float = 0.0
    terms: dict[str, float] = field(default_factory=dict)  # mean of each named loss term
    phases: dict[str, int] = field(default_factory=dict)  # steps spent in each training phase
    steps: int = 0
    images: int = 0
    unreadable: int = 0  # samples left out (data.on_bad_image=skip)


def train_one_epoch(model: Detector, loader: DataLoader, optimizer: torch.optim.Optimizer, scheduler, state: TrainState, *,
                    device: torch.device, bf16: bool, grad_clip: float | None, max_steps: int | None, progress: bool,
                    log_every: int = 10, on_bad_image: str = "error",
                    on_log: Callable[[dict[str, float], int], None] | None = None) -> EpochStats:
    """One epoch. `on_log(metrics, step)` gets every `log_every`-th step *of each training phase* (a detector
    alternating phases every step would otherwise only ever show one of them): `train/<phase>/loss`, `.../lr`,
    `.../loss_<term>`, or `train/loss`... for single-phase detectors."""
    model.train()
    for sampler in (loader.sampler, loader.batch_sampler):
        if hasattr(sampler, "set_epoch"):
            sampler.set_epoch(state.epoch)
    sums: dict[str, float] = defaultdict(float)
    stats = EpochStats()
    total = len(loader) if max_steps is None else min(len(loader), max_steps)
    bar = tqdm(loader, total=total, desc=f"train epoch {state.epoch + 1}", disable=not progress, leave=False)
    for batch in bar:
        if max_steps is not None and stats.steps >= max_steps:
            break
        stats.unreadable += count_unreadable(batch, on_bad_image)
        if batch.labels.numel() == 0:
            continue
        phase = model.training_phase(state.epoch, state.step)  # multi-phase detectors switch parameters here
        if phase is not None:
            stats.phases[phase] = stats.phases.get(phase, 0) + 1
        batch = batch.to(device)
        with autocast(device, bf16):
            out = model.training_loss(batch)
        loss = out.total.float()
        if not math.isfinite(loss.item()):
            raise Diverged(f"training loss became {loss.item()} at step {state.step}; lower trainer.lr or set "
                           f"trainer.grad_clip", key="trainer.lr")
        if state.initial_loss is None:
            state.initial_loss = loss.item()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if grad_clip:
            torch.nn.utils.clip_grad_norm_([p for g in optimizer.param_groups for p in g["params"]], grad_clip)
        optimizer.step()
        scheduler.step()
        state.step += 1
        stats.steps += 1
        stats.images += batch.labels.numel()
        sums["loss"] += loss.item()
        for name, value in out.terms.items():
            sums[name] += float(value)
        bar.set_postfix(loss=f"{sums['loss'] / stats.steps:.4f}", lr=f"{scheduler.get_last_lr()[0]:.2e}")
        n = state.phase_steps[phase or ""] = state.phase_steps.get(phase or "", 0) + 1
        if on_log is not None and n % log_every == 0:
            prefix = f"train/{phase}/" if phase else "train/"
            on_log({f"{prefix}loss": loss.item(), f"{prefix}lr": scheduler.get_last_lr()[0],
                    **{f"{prefix}loss_{k}": float(v) for k, v in out.terms.items()}}, state.step)
    bar.close()
    if stats.steps:
        stats.loss = sums.pop("loss") / stats.steps
        stats.terms = {k: v / stats.steps for k, v in sums.items()}
    return stats


def check_finite_weights(model: Detector, state: TrainState) -> None:
    """A finite last loss can still leave non-finite weights (the step after it); every prediction would be NaN."""
    bad = [name for name, t in model.state_dict().items() if t.is_floating_point() and not bool(torch.isfinite(t).all())]
    if bad:
        raise Diverged(f"weights became non-finite after epoch {state.epoch + 1}'s last step (step {state.step}): "
                       f"{', '.join(bad[:3])}{' ...' if len(bad) > 3 else ''}; lower trainer.lr or set trainer.grad_clip",
                       key="trainer.lr")


@dataclass
class Scores:
    """Per sample of a loader's dataset, in dataset order."""

    scores: np.ndarray  # (N,) probability of fake; NaN where `read` is False
    losses: np.ndarray  # (N,) cross-entropy; NaN where `read` is False
    read: np.ndarray  # (N,) bool: False where the file could not be read and data.on_bad_image=skip


@torch.no_grad()
def predict(model: Detector, loader: DataLoader, *, device: torch.device, bf16: bool, progress: bool,
            desc: str = "predict", on_bad_image: str = "error") -> Scores:
    model.eval()
    n = len(loader.dataset)
    out = Scores(scores=np.full(n, np.nan), losses=np.full(n, np.nan), read=np.zeros(n, dtype=bool))
    for batch in tqdm(loader, desc=desc, disable=not progress, leave=False):
        count_unreadable(batch, on_bad_image)
        if batch.labels.numel() == 0:
            continue
        batch = batch.to(device)
        with autocast(device, bf16):
            logits = model(batch.images).float()  # (B, 2)
        index = batch.index.cpu().numpy()
        out.scores[index] = logits.softmax(-1)[:, 1].cpu().numpy()
        out.losses[index] = torch.nn.functional.cross_entropy(logits, batch.labels, reduction="none").cpu().numpy()
        out.read[index] = True
    return out

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
from bench.errors import BenchError


def autocast(device: torch.device, bf16: bool) -> contextlib.AbstractContextManager:
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()


@dataclass
class EpochStats:
    loss: float = 0.0
    terms: dict[str, float] = field(default_factory=dict)  # mean of each named loss term
    phases: dict[str, int] = field(default_factory=dict)  # steps spent in each training phase
    steps: int = 0
    images: int = 0


def train_one_epoch(model: Detector, loader: DataLoader, optimizer: torch.optim.Optimizer, scheduler, state: TrainState, *,
                    device: torch.device, bf16: bool, grad_clip: float | None, max_steps: int | None, progress: bool,
                    on_step: Callable[[int, dict[str, float]], None] | None = None) -> EpochStats:
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
        phase = model.training_phase(state.epoch, state.step)  # multi-phase detectors switch parameters here
        if phase is not None:
            stats.phases[phase] = stats.phases.get(phase, 0) + 1
        batch = batch.to(device)
        with autocast(device, bf16):
            out = model.training_loss(batch)
        loss = out.total.float()
        if not math.isfinite(loss.item()):
            raise BenchError(f"training loss became {loss.item()} at step {state.step}; lower trainer.lr", key="trainer.lr")
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
        if on_step is not None:
            on_step(state.step, {"train/loss": loss.item(), "train/lr": scheduler.get_last_lr()[0],
                                 **{f"train/loss_{k}": float(v) for k, v in out.terms.items()}})
    bar.close()
    if stats.steps:
        stats.loss = sums.pop("loss") / stats.steps
        stats.terms = {k: v / stats.steps for k, v in sums.items()}
    return stats


@torch.no_grad()
def predict(model: Detector, loader: DataLoader, *, device: torch.device, bf16: bool, progress: bool,
            desc: str = "predict") -> tuple[np.ndarray, np.ndarray]:
    """Probability of fake for every sample, in loader order. Returns (scores (N,), mean CE loss per sample)."""
    model.eval()
    scores, losses = [], []
    for batch in tqdm(loader, desc=desc, disable=not progress, leave=False):
        batch = batch.to(device)
        with autocast(device, bf16):
            logits = model(batch.images).float()  # (B, 2)
        scores.append(logits.softmax(-1)[:, 1].cpu())
        losses.append(torch.nn.functional.cross_entropy(logits, batch.labels, reduction="none").cpu())
    return torch.cat(scores).numpy(), torch.cat(losses).numpy()

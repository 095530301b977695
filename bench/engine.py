"""The two loops: one training epoch, and prediction over a loader. No knowledge of any particular detector."""

from __future__ import annotations

import contextlib
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from bench.checkpoint import TrainState
from bench.detector import Detector
from bench.data import count_unreadable, to_device
from bench.distributed import all_min, all_sum, collective_device, gather_objects, world
from bench.guards import Diverged
from bench.records import Batch, LossOutput


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


class DeviceSums:
    """Loss and term sums kept on the device, read only every `log_every` steps: no host-device sync per step.

    Also remembers the first step whose loss was not finite, so a NaN is named by the step that produced it even
    though it is seen up to `log_every` steps later. Reads average over the ranks of a data-parallel run."""

    def __init__(self, device: torch.device) -> None:
        self.sums: dict[str, torch.Tensor] = {}  # name -> () float32 on the device
        self.counts: dict[str, int] = defaultdict(int)
        self.bad_step = torch.full((), -1, dtype=torch.long, device=device)  # first non-finite step, -1 = none
        self.first: torch.Tensor | None = None  # the epoch's first step's loss (the divergence reference)

    def add(self, loss: torch.Tensor, terms: dict[str, torch.Tensor], step: int) -> dict[str, torch.Tensor]:
        """Accumulate one step (device ops only); returns the step's values, for a read at a logging step."""
        values = {"loss": loss.detach(), **{k: v.detach().float() for k, v in terms.items()}}
        for name, value in values.items():
            self.sums[name] = self.sums[name] + value if name in self.sums else value.clone()
            self.counts[name] += 1
        if self.first is None:
            self.first = values["loss"]
        self.bad_step = torch.where((self.bad_step < 0) & ~torch.isfinite(values["loss"]), step, self.bad_step)
        return values

    def check(self) -> None:
        """Raise Diverged naming the first step with a non-finite loss on any rank (one read)."""
        none = torch.iinfo(torch.long).max
        step = int(all_min(torch.where(self.bad_step < 0, none, self.bad_step)).item())
        if step != none:
            raise Diverged(f"training loss became non-finite at step {step}; lower trainer.lr or set "
                           f"trainer.grad_clip", key="trainer.lr")

    @staticmethod
    def read(values: dict[str, torch.Tensor]) -> dict[str, float]:
        """Device values -> floats, averaged over ranks (one transfer)."""
        names = list(values)
        stacked = all_sum(torch.stack([values[k] for k in names]).float()) / world().size
        return dict(zip(names, stacked.tolist()))

    def means(self) -> dict[str, float]:
        return {k: v / self.counts[k] for k, v in self.read(self.sums).items()} if self.sums else {}


def train_one_epoch(model: Detector, loader: DataLoader, optimizer: torch.optim.Optimizer, scheduler, state: TrainState, *,
                    device: torch.device, bf16: bool, grad_clip: float | None, max_steps: int | None, progress: bool,
                    log_every: int = 10, on_bad_image: str = "error",
                    on_log: Callable[[dict[str, float], int], None] | None = None,
                    loss_fn: Callable[[Batch], LossOutput] | None = None, channels_last: bool = False) -> EpochStats:
    """One epoch. `on_log(metrics, step)` gets every `log_every`-th step *of each training phase* (a detector
    alternating phases every step would otherwise only ever show one of them): `train/<phase>/loss`, `.../lr`,
    `.../loss_<term>`, or `train/loss`... for single-phase detectors. `loss_fn`: the detector's `training_loss`
    wrapped for data-parallel training (`bench.distributed.wrap`); the detector's own by default.

    Nothing reads a device value between logging steps: losses are summed on the device, and the non-finite check
    runs every `log_every` steps and at the epoch's end."""
    model.train()
    for sampler in (loader.sampler, loader.batch_sampler):
        if hasattr(sampler, "set_epoch"):
            sampler.set_epoch(state.epoch)
    loss_fn = loss_fn or model.training_loss
    sums = DeviceSums(device)
    stats = EpochStats()
    total = len(loader) if max_steps is None else min(len(loader), max_steps)
    bar = tqdm(loader, total=total, desc=f"train epoch {state.epoch + 1}", disable=not (progress and world().main), leave=False)
    for batch in bar:
        if max_steps is not None and stats.steps >= max_steps:
            break
        stats.unreadable += count_unreadable(batch, on_bad_image)
        batch = _common_size(batch, on_bad_image)
        if batch.labels.numel() == 0:
            continue
        phase = model.training_phase(state.epoch, state.step)  # multi-phase detectors switch parameters here
        if phase is not None:
            stats.phases[phase] = stats.phases.get(phase, 0) + 1
        n_images = batch.labels.numel()
        batch = to_device(loader, batch, device, channels_last)
        with autocast(device, bf16):
            out = loss_fn(batch)
        loss = out.total.float()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if grad_clip:
            torch.nn.utils.clip_grad_norm_([p for g in optimizer.param_groups for p in g["params"]], grad_clip)
        optimizer.step()
        scheduler.step()
        values = sums.add(loss, out.terms, state.step)
        state.step += 1
        stats.steps += 1
        stats.images += n_images
        n = state.phase_steps[phase or ""] = state.phase_steps.get(phase or "", 0) + 1
        if on_log is not None and n % log_every == 0:
            prefix = f"train/{phase}/" if phase else "train/"
            read = sums.read(values)
            on_log({f"{prefix}loss": read.pop("loss"), f"{prefix}lr": scheduler.get_last_lr()[0],
                    **{f"{prefix}loss_{k}": v for k, v in read.items()}}, state.step)
        if state.step % log_every == 0:
            _checkpoint_window(sums, state, bar, scheduler, progress)
    bar.close()
    if stats.steps:
        _checkpoint_window(sums, state, bar, scheduler, False)
        means = sums.means()
        stats.loss = means.pop("loss")
        stats.terms = means
    if world().size > 1:  # counts over every rank
        counts = all_sum(torch.tensor([stats.images, stats.unreadable], device=collective_device()))
        stats.images, stats.unreadable = counts.tolist()
    return stats


def _checkpoint_window(sums: DeviceSums, state: TrainState, bar, scheduler, progress: bool) -> None:
    """The reads of a logging step: non-finite check, the divergence reference, the progress bar."""
    sums.check()
    if state.initial_loss is None and sums.first is not None:
        state.initial_loss = sums.read({"loss": sums.first})["loss"]
    if progress:  # a read on every rank (the mean is over ranks); rank 0 shows it
        bar.set_postfix(loss=f"{sums.means()['loss']:.4f}", lr=f"{scheduler.get_last_lr()[0]:.2e}")


def _common_size(batch: Batch, on_bad_image: str) -> Batch:
    """With data.on_bad_image=skip, the ranks of a data-parallel run cut their batches to the smallest share (DDP
    steps together; gathered losses need equal shares). One small all-reduce per step, only in that case."""
    if world().size == 1 or on_bad_image != "skip":
        return batch
    n = int(all_min(torch.tensor(batch.labels.numel(), device=collective_device())).item())
    if n == batch.labels.numel():
        return batch
    return Batch(batch.images[:n], batch.labels[:n], batch.domains[:n], batch.index[:n], batch.unreadable)


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
            desc: str = "predict", on_bad_image: str = "error", channels_last: bool = False) -> Scores:
    """Scores of every sample of the loader's dataset. In a data-parallel run every rank predicts its shard (the
    loader's sampler) and the shards are gathered back into dataset order on every rank."""
    model.eval()
    n = len(loader.dataset)
    out = Scores(scores=np.full(n, np.nan), losses=np.full(n, np.nan), read=np.zeros(n, dtype=bool))
    scores, losses, indices = [], [], []  # on the device until the end: no sync per batch
    for batch in tqdm(loader, desc=desc, disable=not (progress and world().main), leave=False):
        count_unreadable(batch, on_bad_image)
        if batch.labels.numel() == 0:
            continue
        indices.append(batch.index)
        batch = to_device(loader, batch, device, channels_last)
        with autocast(device, bf16):
            logits = model(batch.images).float()  # (B, 2)
        scores.append(logits.softmax(-1)[:, 1])
        losses.append(torch.nn.functional.cross_entropy(logits, batch.labels, reduction="none"))
    if indices:
        index = torch.cat(indices).numpy()
        out.scores[index] = torch.cat(scores).cpu().numpy()
        out.losses[index] = torch.cat(losses).cpu().numpy()
        out.read[index] = True
    return gather_scores(out) if world().size > 1 else out


def gather_scores(out: Scores) -> Scores:
    """Every rank's read samples merged, in dataset order (each sample was predicted by exactly one rank)."""
    merged = Scores(scores=out.scores.copy(), losses=out.losses.copy(), read=out.read.copy())
    for scores, losses, read in gather_objects((out.scores, out.losses, out.read)):
        merged.scores[read], merged.losses[read], merged.read[read] = scores[read], losses[read], True
    return merged

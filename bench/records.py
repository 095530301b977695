"""Typed records passed between modules: samples from datasets, batches to detectors, losses back.

Everything that crosses a module boundary is one of these, never an untyped dict.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # torch is imported lazily so `bench list` stays fast
    import torch

REAL, FAKE = 0, 1
REAL_DOMAIN = "real"


@dataclass(frozen=True)
class Sample:
    """One frame (or still image) of a dataset split.

    `video` must be unique across datasets *and* manipulations: FF++'s `000_003` exists under every method,
    so adapters prefix it (`ffpp/Deepfakes/000_003`). Video-level metrics group frames by this key.
    """

    dataset: str
    split: str  # "train" | "val" | "test"
    domain: str  # manipulation / forgery family; REAL_DOMAIN for pristine samples
    label: int  # REAL (0) or FAKE (1)
    video: str  # unique video key, e.g. "ffpp/Deepfakes/000_003"
    frame: int  # frame index inside the video (0 for still images)
    path: str | None = None  # image file on disk (PNG/JPEG crop)
    array: np.ndarray | None = field(default=None, repr=False, compare=False)  # (H, W, 3) uint8, in memory
    source: str | None = None  # identity/source video, where the dataset knows it (FF++: target id of a fake)

    def __post_init__(self) -> None:
        if self.label not in (REAL, FAKE):
            raise ValueError(f"label must be 0 (real) or 1 (fake), got {self.label!r} for {self.video}")
        if (self.path is None) == (self.array is None):
            raise ValueError(f"sample {self.video}#{self.frame} needs exactly one of path / array")

    @property
    def key(self) -> str:
        """Unique frame key, used in prediction files and caches."""
        return f"{self.video}#{self.frame}"


@dataclass
class Batch:
    """A collated training or evaluation batch."""

    images: torch.Tensor  # (B, 3, H, W) float, normalised by the detector's transform; (B, 0) when it needs none
    labels: torch.Tensor  # (B,) long, 0 real / 1 fake
    domains: torch.Tensor  # (B,) long, index into the run's training domain list (-1 outside training)
    index: torch.Tensor  # (B,) long, position of the sample in its split's sample list (stable across epochs)
    unreadable: tuple[str, ...] = ()  # why each left-out sample of this batch could not be loaded (names the file)

    def to(self, device: torch.device) -> Batch:
        tensors = (t.to(device, non_blocking=True) for t in (self.images, self.labels, self.domains, self.index))
        return Batch(*tensors, unreadable=self.unreadable)

    def pin_memory(self) -> Batch:
        """Called by DataLoader(pin_memory=True): page-locked tensors copy to the GPU asynchronously."""
        return Batch(*(t.pin_memory() for t in (self.images, self.labels, self.domains, self.index)), unreadable=self.unreadable)


@dataclass
class LossOutput:
    """What a detector's `training_loss` returns: the total to back-propagate, the logits, and named terms to log."""

    total: torch.Tensor  # () scalar
    logits: torch.Tensor  # (B, 2)
    terms: dict[str, torch.Tensor] = field(default_factory=dict)  # e.g. {"cls": ..., "att": ...}, each ()


@dataclass(frozen=True)
class Predictions:
    """Per-frame scores of one test set, aligned arrays."""

    keys: list[str]  # Sample.key per frame
    videos: list[str]
    domains: list[str]
    labels: np.ndarray  # (N,) int
    scores: np.ndarray  # (N,) float, probability of "fake"

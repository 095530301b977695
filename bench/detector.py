"""The detector interface. One subclass per file in ``detectors/`` (or in a plugin).

The runner only ever talks to this interface: it never branches on a detector's name. Multi-phase training
(MoA-CLIP alternates adapter and router steps) goes through `training_phase`, and detector-specific losses
through `training_loss`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from bench.detector_config import DetectorConfig
from bench.records import Batch, LossOutput
from bench.transforms import build_transform

Transform = Callable[[np.ndarray], torch.Tensor]  # (H, W, 3) uint8 -> (3, S, S) float


class Detector(nn.Module, ABC):
    """Base class of every detector.

    Class attributes a subclass sets:
      name, description: registry name and a one-line description for `bench list`.
      config_class: a dataclass (subclass of DetectorConfig) whose defaults are the published settings; its
        ClassVars `recipe` and `tiny` hold the training recipe and the tiny variant (composition reads them
        without importing this module, see bench/detector_config.py).
    """

    name: ClassVar[str]
    description: ClassVar[str] = ""
    config_class: ClassVar[type[DetectorConfig]] = DetectorConfig

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        misplaced = sorted({"recipe", "tiny"} & set(vars(cls)))
        if misplaced:  # they moved to the config class; refusing beats silently ignoring them
            raise TypeError(f"{cls.__qualname__}: set {' and '.join(misplaced)} as ClassVars of its config class "
                            f"({cls.config_class.__qualname__}), not on the detector class")

    def __init__(self, cfg: Any, domains: Sequence[str]) -> None:
        """`domains`: the run's training domain names; `Batch.domains` indexes this list."""
        super().__init__()
        self.cfg = cfg
        self.domains = list(domains)

    # ---- data ------------------------------------------------------------------------------------------
    def train_transform(self) -> Transform:
        c = self.cfg
        return build_transform(c.input_size, tuple(c.mean), tuple(c.std), c.augment)

    def eval_transform(self) -> Transform:
        c = self.cfg
        return build_transform(c.input_size, tuple(c.mean), tuple(c.std), None)

    # ---- model -----------------------------------------------------------------------------------------
    @abstractmethod
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) -> (B, 2) logits, index 1 = fake."""

    def trainable_parameters(self) -> list[nn.Parameter]:
        """Parameters the optimiser owns (frozen backbones excluded). Phases may toggle requires_grad on a subset."""
        return [p for p in self.parameters() if p.requires_grad]

    def training_loss(self, batch: Batch) -> LossOutput:
        """Default: cross-entropy on the logits. Detectors with auxiliary losses override this."""
        logits = self(batch.images)
        loss = F.cross_entropy(logits.float(), batch.labels)
        return LossOutput(total=loss, logits=logits, terms={"cls": loss.detach()})

    def frozen_keys(self) -> set[str]:
        """State-dict keys rebuilt identically from the config (a frozen pretrained backbone).

        Checkpoints skip them and keep only a fingerprint, so a run with a frozen ViT-L does not write its 1 GB
        of unchanged weights at every epoch. Default: none (everything is saved).
        """
        return set()

    def training_phase(self, epoch: int, step: int) -> str | None:
        """Called before every optimisation step (`step` counts from 0 over the whole run).

        Multi-phase detectors switch which parameters train here and return the phase's name (logged);
        single-phase detectors return None.
        """
        return None

    def needs_images(self, n_samples: int) -> bool:
        """Asked by the runner before every training epoch over `n_samples` samples (indices 0..n-1).

        A detector that can compute every training sample's loss from `Batch.index` alone (it has cached all their
        features, and its training transform is deterministic) returns False: the epoch then reads and transforms
        no image, and `Batch.images` is empty, shape (B, 0). Default: True.
        """
        return True

    @torch.no_grad()
    def predict_proba(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) -> (B,) probability of fake."""
        return self(images).float().softmax(dim=-1)[:, 1]

    def evaluation_stats(self) -> dict[str, float]:
        """Statistics the detector gathered while predicting since the previous call, then reset; the runner logs
        them with each test set's metrics as `<test set>/<name>` (MoA-CLIP: its route weight per domain adapter).
        Default: none."""
        return {}

    def describe(self) -> dict[str, Any]:
        """Facts about this instance to record with the run (e.g. which weights were loaded)."""
        n_train = sum(p.numel() for p in self.trainable_parameters())
        return {"params_total": sum(p.numel() for p in self.parameters()), "params_trainable": n_train}

"""`clip_probe`: a frozen CLIP image tower (open_clip) with a linear head on its image embedding.

The linear probe of CLIP (Radford et al., "Learning Transferable Visual Models From Natural Language Supervision",
ICML 2021), used as the "CLIP" baseline row of the MoA-CLIP paper's tables.

Faithful: the tower is CLIP's image encoder, frozen, with its own preprocessing (mean/std of the pretrained weights,
input at the tower's native size); the head is linear on the projected image embedding (B, embed_dim).
Our choices: default backbone ViT-B/16 with OpenAI weights (the backbone the MoA-CLIP paper reports as its best);
the head is trained by the bench's gradient trainer with cross-entropy (Adam, see `recipe`) rather than the paper's
L-BFGS logistic regression, so it shares the runner, sampler and checkpoint selection with every other detector;
no feature normalisation; no augmentation by default.

Feature cache (`detector.cache_features`): with a frozen tower and a deterministic training transform, an image's
embedding never changes, so `training_loss` computes it once per training sample (keyed by `Batch.index`) and later
epochs train the head on the cached embeddings, costing no backbone time. It is off when augmentation is on (the
image differs every epoch), and never used outside training mode (validation/test indices index other lists).
The cache is a plain dict on the module, so it is not part of checkpoints.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from bench.detector import Detector, Transform
from bench.detectors.configs import ClipProbeConfig
from bench.openclip import detector_tower, freeze
from bench.records import Batch, LossOutput


class ClipProbe(Detector):
    name = "clip_probe"
    description = "frozen open_clip image tower + linear head"
    config_class = ClipProbeConfig

    def __init__(self, cfg: ClipProbeConfig, domains: Sequence[str]) -> None:
        super().__init__(cfg, domains)
        tower = detector_tower(cfg)
        self.tower_info = tower  # facts only; the module itself is registered below
        self.backbone = freeze(tower.visual)
        self.head = nn.Linear(tower.embed_dim, 2)
        # Valid only while the training transform is deterministic: augmentation changes the image every epoch.
        self.cache_enabled = bool(cfg.cache_features) and not cfg.augment.enabled
        self.feature_cache: dict[int, torch.Tensor] = {}  # training-split index -> (embed_dim,) embedding
        self.cache_hits = 0
        self.cache_misses = 0

    # ---- data ------------------------------------------------------------------------------------------
    def train_transform(self) -> Transform:
        return self.tower_info.transform(self.cfg.augment)

    def eval_transform(self) -> Transform:
        return self.tower_info.transform()

    # ---- model -----------------------------------------------------------------------------------------
    def train(self, mode: bool = True) -> ClipProbe:
        super().train(mode)
        self.backbone.eval()  # frozen: keep any dropout / patch dropout off
        return self

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) -> (B, embed_dim) image embeddings of the frozen tower."""
        with torch.no_grad():
            return self.backbone(images)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.encode(images))  # (B, 2)

    def training_loss(self, batch: Batch) -> LossOutput:
        if self.training and self.cache_enabled:
            feats = self._cached_features(batch.images, batch.index)
        else:
            feats = self.encode(batch.images)
        logits = self.head(feats)  # (B, 2)
        loss = F.cross_entropy(logits.float(), batch.labels)
        return LossOutput(total=loss, logits=logits, terms={"cls": loss.detach()})

    def needs_images(self, n_samples: int) -> bool:
        """Once every training sample's embedding is cached, epochs run on `Batch.index` alone: no image is read."""
        return not (self.cache_enabled and all(i in self.feature_cache for i in range(n_samples)))

    def _cached_features(self, images: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """Embeddings of a training batch, running the tower only on samples not seen before. (B, embed_dim)"""
        keys = index.tolist()
        todo = [i for i, k in enumerate(keys) if k not in self.feature_cache]
        if todo and images.numel() == 0:
            raise RuntimeError(f"clip_probe: batch without images but {len(todo)} samples are not cached")
        if todo:
            fresh = self.encode(images[torch.tensor(todo, device=images.device)])  # (M, embed_dim)
            for i, f in zip(todo, fresh):
                self.feature_cache[keys[i]] = f
        self.cache_misses += len(todo)
        self.cache_hits += len(keys) - len(todo)
        return torch.stack([self.feature_cache[k] for k in keys])

    def frozen_keys(self) -> set[str]:
        return {k for k in self.state_dict() if k.startswith("backbone.")}  # the frozen tower: rebuilt from the config

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            **self.tower_info.facts(),
            "feature_cache": self.cache_enabled,
            "feature_cache_hits": self.cache_hits,
            "feature_cache_misses": self.cache_misses,
        }

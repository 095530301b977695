"""Helpers shared by detector tests: a detector's tiny config, and a batch a detector can learn from."""

from __future__ import annotations

from typing import Any

import torch
from omegaconf import OmegaConf

from bench.records import Batch


def tiny_cfg(detector_cls: type, **overrides: Any) -> Any:
    """The class's config with its own `tiny` overrides merged like `scale=tiny` does, plus the test's."""
    merged = OmegaConf.merge(OmegaConf.structured(detector_cls.config_class()), detector_cls.config_class.tiny, overrides)
    return OmegaConf.to_object(merged)


def learnable_batch(size: int = 8, seed: int = 0, image_size: int = 64) -> Batch:
    """Reals are smooth, fakes carry high-frequency noise; values in [-1, 1]."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(size) % 2
    smooth = torch.nn.functional.interpolate(torch.randn(size, 3, 8, 8, generator=g), size=image_size, mode="bilinear")
    images = (smooth + labels.view(-1, 1, 1, 1) * torch.randn(size, 3, image_size, image_size, generator=g)).clamp(-1, 1)
    zeros = torch.zeros(size, dtype=torch.long)
    return Batch(images=images, labels=labels, domains=zeros, index=torch.arange(size))  # images: (B, 3, S, S)


def train_steps(model: Any, batch: Batch, steps: int, check_grads_at: int) -> list[float]:
    """Adam steps on one batch; asserts that every parameter gets a gradient at step `check_grads_at`. Returns losses."""
    opt = torch.optim.Adam(model.trainable_parameters(), lr=1e-3)
    losses = []
    for step in range(steps):
        opt.zero_grad()
        out = model.training_loss(batch)
        out.total.backward()
        if step == check_grads_at:
            dead = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
            assert not dead, dead
        opt.step()
        losses.append(out.total.item())
        assert out.logits.shape == (batch.labels.numel(), 2)
    return losses

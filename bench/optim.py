"""Optimiser and learning-rate schedule from the trainer config."""

from __future__ import annotations

import math

import torch
from torch import nn

from bench.config import TrainerConfig
from bench.errors import BenchError


def build_optimizer(params: list[nn.Parameter], cfg: TrainerConfig) -> torch.optim.Optimizer:
    if not params:
        raise BenchError("the detector has no trainable parameters", key="detector")
    kind = cfg.optimizer.lower()
    if kind == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, betas=tuple(cfg.betas), weight_decay=cfg.weight_decay)
    if kind == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, betas=tuple(cfg.betas), weight_decay=cfg.weight_decay)
    if kind == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=0.9, weight_decay=cfg.weight_decay)
    raise BenchError(f"unknown optimizer {cfg.optimizer!r}; use adam, adamw or sgd", key="trainer.optimizer")


def build_scheduler(opt: torch.optim.Optimizer, cfg: TrainerConfig, total_steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    """Per-step schedule: linear warm-up over `warmup_steps`, then constant ("none") or cosine down to `min_lr`."""
    if cfg.scheduler not in ("none", "cosine"):
        raise BenchError(f"unknown scheduler {cfg.scheduler!r}; use none or cosine", key="trainer.scheduler")
    warmup = max(0, min(cfg.warmup_steps, total_steps - 1))
    floor = cfg.min_lr / cfg.lr if cfg.lr > 0 else 0.0

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        if cfg.scheduler == "none":
            return 1.0
        progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))

    return torch.optim.lr_scheduler.LambdaLR(opt, factor)

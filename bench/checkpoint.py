"""Checkpoints: everything a resume needs, saved with torch.save and loaded weights-only.

Contents: model state (incl. detector buffers such as MoA-CLIP's prototypes), optimiser, scheduler, epoch, global
step, best validation score, and the python/numpy/torch RNG states. Only tensors and plain containers are
stored, so `torch.load(..., weights_only=True)` can read it: no pickled code runs on load.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.errors import BenchError


@dataclass
class TrainState:
    epoch: int = 0  # epochs completed
    step: int = 0  # optimisation steps completed
    best_score: float = float("-inf")
    best_epoch: int = -1


def rng_state() -> dict[str, Any]:
    np_state = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].copy()), *np_state[2:]],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(_as_tuple(state["python"]))
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, keys.numpy(), *rest))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _as_tuple(x: Any) -> Any:
    return tuple(_as_tuple(v) for v in x) if isinstance(x, (list, tuple)) else x


def save(path: Path, *, model: torch.nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any, state: TrainState) -> None:
    """Atomic save (temp file + rename): a kill never leaves a truncated checkpoint."""
    payload = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "train_state": vars(state).copy(),
        "rng": rng_state(),
    }
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)


def load(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise BenchError(f"checkpoint {path} does not exist", key="trainer.resume")
    return torch.load(path, map_location="cpu", weights_only=True)


def restore(payload: dict[str, Any], *, model: torch.nn.Module, optimizer: torch.optim.Optimizer | None = None,
            scheduler: Any = None) -> TrainState:
    model.load_state_dict(payload["model"])
    if optimizer is not None:
        optimizer.load_state_dict(payload["optimizer"])
    if scheduler is not None:
        scheduler.load_state_dict(payload["scheduler"])
    if optimizer is not None:
        set_rng_state(payload["rng"])
    return TrainState(**payload["train_state"])

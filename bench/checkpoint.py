"""Checkpoints: everything a resume needs, saved with torch.save and loaded weights-only.

Contents: model state (incl. detector buffers such as MoA-CLIP's prototypes; a frozen pretrained backbone is
rebuilt from the config and stored only as a fingerprint, see `Detector.frozen_keys`), optimiser, scheduler, epoch, global
step, best validation score, and the python/numpy/torch RNG states. Only tensors and plain containers are
stored, so `torch.load(..., weights_only=True)` can read it: no pickled code runs on load.
"""

from __future__ import annotations

import os
import pickle
import random
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.detector import Detector
from bench.errors import BenchError


@dataclass
class TrainState:
    epoch: int = 0  # epochs completed
    step: int = 0  # optimisation steps completed
    best_score: float = float("-inf")
    best_epoch: int = -1
    initial_loss: float | None = None  # the first step's loss: divergence is judged against it
    elapsed_s: float = 0.0  # training and validation time of every session so far (a resume adds to it)
    phase_steps: dict[str, int] = field(default_factory=dict)  # steps per training phase ("" = single-phase)


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


def fingerprint(tensors: dict[str, torch.Tensor]) -> torch.Tensor:
    """A cheap signature of weights that are not saved: per-tensor sums and sums of squares, in key order."""
    if not tensors:
        return torch.zeros(0, dtype=torch.float64)
    return torch.stack([torch.stack([t.double().sum(), t.double().square().sum()]) for _, t in sorted(tensors.items())]).flatten()


def split_state(model: Detector) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """(saved, frozen) parts of the model's state dict; frozen = `model.frozen_keys()`, rebuilt from the config."""
    frozen_keys = model.frozen_keys()
    state = model.state_dict()
    return ({k: v for k, v in state.items() if k not in frozen_keys}, {k: v for k, v in state.items() if k in frozen_keys})


def save(path: Path, *, model: Detector, optimizer: torch.optim.Optimizer, scheduler: Any, state: TrainState,
         extra: dict[str, Any] | None = None) -> None:
    """Atomic save (temp file + rename): a kill never leaves a truncated checkpoint. `extra`: plain values the
    runner needs on resume (e.g. how much of metrics.jsonl this checkpoint has seen)."""
    saved, frozen = split_state(model)
    payload = {
        "model": saved,
        "frozen_fingerprint": fingerprint(frozen),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "train_state": vars(state).copy(),
        "rng": rng_state(),
        "extra": dict(extra or {}),
    }
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)


def load_weights(path: str | Path, key: str) -> Any:
    """The shared safe loader: `torch.load(weights_only=True)` with one-line errors naming `key`.

    A file holding pickled objects is refused (unpickling can run arbitrary code); so is anything that is not a torch
    file. Detectors loading pretrained weights call this too."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise BenchError(f"{path} does not exist", key=key)
    try:
        with warnings.catch_warnings():  # torch warns about a pickle protocol just before refusing the file
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        if not _pickle_container(path):  # a text or other file that only happens to start like a pickle opcode
            raise BenchError(f"{path} is not a readable torch file (UnpicklingError: {_first_line(err)})", key=key) from None
        raise BenchError(f"{path} is not a plain weights file: it holds pickled Python objects, which are never "
                         f"loaded because unpickling can run code. If you trust its source, re-save only its tensors "
                         f"(a dict of name -> tensor, e.g. the model's state_dict()) with torch.save and pass that file",
                         key=key) from None
    except Exception as err:  # a text file (KeyError), a truncated zip (RuntimeError), an empty file (EOFError) ...
        raise BenchError(f"{path} is not a readable torch file ({type(err).__name__}: {_first_line(err)})", key=key) from None


def _pickle_container(path: Path) -> bool:
    """torch.save's zip archive, or a bare pickle (protocol >= 2 starts with the PROTO opcode 0x80)."""
    with open(path, "rb") as f:
        return zipfile.is_zipfile(f) or f.seek(0) == 0 and f.read(1) == b"\x80"


def _first_line(err: BaseException) -> str:
    lines = str(err).strip().splitlines()
    return lines[0][:200] if lines else "no message"


CHECKPOINT_KEYS = ("model", "frozen_fingerprint", "optimizer", "scheduler", "train_state", "rng")


def load(path: str | Path, key: str = "trainer.resume") -> dict[str, Any]:
    """A ForgeryBench checkpoint (last.pt / best.pt), loaded weights-only."""
    payload = load_weights(path, key)
    missing = [k for k in CHECKPOINT_KEYS if not isinstance(payload, dict) or k not in payload]
    if missing:
        raise BenchError(f"{path} is not a ForgeryBench checkpoint (no {', '.join(missing)}); pass a run folder's "
                         f"last.pt", key=key)
    return payload


def restore(payload: dict[str, Any], *, model: Detector, optimizer: torch.optim.Optimizer | None = None,
            scheduler: Any = None) -> TrainState:
    _, frozen = split_state(model)
    if not torch.allclose(fingerprint(frozen), payload["frozen_fingerprint"], rtol=1e-6, atol=1e-6):
        raise BenchError("the checkpoint was trained on other frozen backbone weights than this config builds; "
                         "use the run's own config (its config.yaml)", key="detector")
    try:
        missing, unexpected = model.load_state_dict(payload["model"], strict=False)
    except RuntimeError as err:  # shapes differ (another width, another architecture)
        raise BenchError(f"checkpoint does not fit the model: {_first_line(err)} ...; resume with the run's own config",
                         key="trainer.resume") from None
    if set(missing) != set(frozen) or unexpected:
        raise BenchError(f"checkpoint does not fit the model: missing {sorted(set(missing) - set(frozen))[:5]}, "
                         f"unexpected {sorted(unexpected)[:5]}", key="trainer.resume")
    if optimizer is not None:
        optimizer.load_state_dict(payload["optimizer"])
    if scheduler is not None:
        scheduler.load_state_dict(payload["scheduler"])
    if optimizer is not None:
        set_rng_state(payload["rng"])
    return TrainState(**payload["train_state"])

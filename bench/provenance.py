"""What makes a result traceable: seeds, git commit, package versions, data manifest hash."""

from __future__ import annotations

import hashlib
import random
import subprocess
from collections.abc import Iterable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np

from bench.records import Sample

PACKAGES = ("forgerybench", "torch", "torchvision", "timm", "open_clip_torch", "numpy", "scikit-learn", "hydra-core",
            "mlflow", "pandas", "av", "opencv-python-headless")


def seed_everything(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def git_commit() -> str:
    """Commit of the ForgeryBench source tree ('+dirty' if modified), or 'unknown' outside a git checkout."""
    src = Path(__file__).resolve().parent
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=src, capture_output=True, text=True, timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=src, capture_output=True,
                               text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return sha + ("+dirty" if dirty else "")


def package_versions() -> dict[str, str]:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def manifest_hash(samples: Iterable[Sample]) -> str:
    """sha256 over (key, label, domain, path or pixels) of every sample, in order: changes whenever the data does."""
    h = hashlib.sha256()
    for s in samples:
        h.update(f"{s.key}\t{s.label}\t{s.domain}\t{s.path or ''}\n".encode())
        if s.array is not None:  # in-memory (generated) images: hash the pixels themselves
            h.update(np.ascontiguousarray(s.array).tobytes())
    return h.hexdigest()

"""What makes a result traceable: seeds, git commit and dirty state, package and plugin versions, data manifest hash."""

from __future__ import annotations

import hashlib
import random
import subprocess
from collections.abc import Iterable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from bench.records import Sample

if TYPE_CHECKING:
    from bench.plugins import Plugins

PACKAGES = ("forgerybench", "torch", "torchvision", "timm", "open_clip_torch", "numpy", "scikit-learn", "hydra-core",
            "mlflow", "pandas", "av", "opencv-python-headless")


def seed_everything(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


SOURCE_SUFFIXES = (".py", ".yaml", ".yml", ".toml", ".csv", ".json", ".cfg")  # untracked files that can change a result


def git_state(src: Path | None = None) -> tuple[str, bool]:
    """(commit sha, dirty) of the ForgeryBench source tree, or ("unknown", False) outside a git checkout.

    Dirty: a tracked file is modified, or an untracked (not ignored) source file exists: a new detector file
    changes results as much as an edited one."""
    src = src or Path(__file__).resolve().parent
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=src, capture_output=True, text=True, timeout=5, check=True).stdout.strip()
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=src, capture_output=True,
                                text=True, timeout=5, check=True).stdout.splitlines()
    except (OSError, subprocess.SubprocessError):
        return "unknown", False
    dirty = any(not line.startswith("??") or line.rstrip().endswith(SOURCE_SUFFIXES) for line in status if line.strip())
    return sha, dirty


def plugin_versions(plugins: Plugins) -> str:
    """"dist==version" of every external plugin distribution that loaded, sorted and comma-separated ("" if none)."""
    from bench.plugins import BUILTIN_DIST

    return ",".join(sorted(f"{i.dist}=={i.version}" for i in plugins.info.values()
                           if i.dist != BUILTIN_DIST and i.status == "ok"))


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

"""Small helpers shared by the built-in dataset adapters (not an adapter itself; nothing registers it).

Every adapter reads a dataset exactly as published and never drops a listed file silently: files that a list
(split file, label file, index JSON) names but that are absent are collected and reported together.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any


from bench.dataset import SPLITS
from bench.errors import BenchError

VIDEO_SUFFIX = ".mp4"
COMPRESSIONS = ("raw", "c23", "c40")  # FaceForensics++ (and DFD) quality levels
MAX_LISTED = 5  # missing files quoted in an error message; the count covers the rest


def inside_root(dataset: str, root: Path, entry: str, where: str, key: str, allow_absolute: bool = False) -> Path:
    """`root / entry` for an entry of a list file, refusing one that leaves the root (`..`, an absolute path, a
    drive): a crafted list must never make ForgeryBench open `/etc/passwd`. The check is lexical, so a folder
    inside the root that is a symlink to another disk still works. `where` names the file and line for the error."""
    import ntpath
    import os
    from pathlib import PurePosixPath

    text = entry.replace("\\", "/")
    rel = PurePosixPath(text)
    if rel.is_absolute() or ntpath.splitdrive(entry)[0]:
        if allow_absolute:
            return Path(os.path.normpath(text))
        raise BenchError(f"dataset {dataset!r}: {where}: {entry!r} is an absolute path; entries must be relative to "
                         f"the dataset root {root}", key=key)
    path = Path(os.path.normpath(root / rel))
    if ".." in rel.parts and not path.is_relative_to(os.path.normpath(root)):
        raise BenchError(f"dataset {dataset!r}: {where}: {entry!r} points outside the dataset root {root}; "
                         f"refusing to read it", key=key)
    return path


def mask_video(method_dir: Path, stem: str, enabled: bool) -> str | None:
    """The FaceForensics-style mask video of a fake (`<method_dir>/masks/videos/<stem>.mp4`), if shipped and wanted."""
    if not enabled:
        return None
    path = method_dir / "masks" / "videos" / f"{stem}{VIDEO_SUFFIX}"
    return str(path) if path.is_file() else None


def env_root(var: str) -> str:
    """OmegaConf default of a dataset root: the environment variable if set, else null."""
    return f"${{oc.env:{var},null}}"




def check_split(dataset: str, split: str) -> None:
    if split not in SPLITS:
        raise BenchError(f"dataset {dataset!r} has no split {split!r}; splits are {list(SPLITS)}", key="protocol")


def hash_unit(key: str) -> float:
    """A stable pseudo-random number in [0, 1) per key (same on every machine and Python run, unlike hash())."""
    return int.from_bytes(hashlib.sha1(key.encode()).digest()[:8], "big") / 2**64


def train_or_val(group: str, val_fraction: float) -> str:
    """Carve a validation split out of a training pool by a stable hash of `group`.

    Adapters pass the source identity/video as the group, so a real video and the fakes made from it land in the
    same split and validation never shares a source with training.
    """
    return "val" if hash_unit(group) < val_fraction else "train"


def check_fraction(dataset: str, field: str, value: float) -> None:
    if not 0.0 <= value < 1.0:
        raise BenchError(f"dataset {dataset!r}: {field} must be in [0, 1), got {value}", key=f"datasets.{dataset}.{field}")


def raise_if_missing(dataset: str, paths: Iterable[Path], what: str, hint: str, key: str) -> None:
    """Raise one BenchError naming a few of the `paths` that are not files, and how many there are."""
    paths = list(paths)
    missing = [p for p in paths if not p.is_file()]
    if not missing:
        return
    shown = ", ".join(str(p) for p in missing[:MAX_LISTED])
    more = f" (and {len(missing) - MAX_LISTED} more)" if len(missing) > MAX_LISTED else ""
    raise BenchError(f"dataset {dataset!r}: {len(missing)} of {len(paths)} {what} are missing: {shown}{more}; {hint}",
                     key=key)


def require_dir(dataset: str, path: Path, what: str, key: str) -> Path:
    if not path.is_dir():
        raise BenchError(f"dataset {dataset!r}: expected {what} at {path}, which is not a folder", key=key)
    return path


def read_json(dataset: str, path: Path, what: str, key: str) -> Any:
    if not path.is_file():
        raise BenchError(f"dataset {dataset!r}: {what} {path} does not exist", key=key)
    try:
        with path.open(encoding="utf-8") as f:
            return json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise BenchError(f"dataset {dataset!r}: {what} {path} is not valid JSON ({err})", key=key) from None


def mp4s(folder: Path) -> list[Path]:
    """The .mp4 files directly inside `folder`, sorted by name (deterministic order on every file system)."""
    return sorted(p for p in folder.iterdir() if p.suffix.lower() == VIDEO_SUFFIX and p.is_file())

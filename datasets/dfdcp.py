"""DFDC-Preview (Dolhansky et al., arXiv:1910.08854), read as released.

Layout::

    <root>/dataset.json                                {"<relative path>.mp4": {"label": "real"|"fake",
    <root>/original_videos/<id>/<file>.mp4                                    "set": "train"|"test", ...}, ...}
    <root>/method_A/<id>/<id>_A/<file>.mp4
    <root>/method_B/<id>/<id>_B/<file>.mp4

Faithful to the source: ``dataset.json`` is the index. Its keys are paths relative to the root, its ``label`` says
real/fake and its ``set`` train/test; ``test`` is exactly the videos with ``set == "test"``. The two anonymous
face-swap methods are the fake domains ``method_A`` and ``method_B``, from the first folder of each path.

Assumptions (stated because the preview came with little documentation): a video's first path component is
``original_videos`` (real) or ``method_A`` / ``method_B`` (fake), and a label that disagrees with that folder fails
naming the entry; any further fields are ignored. Our choice: ``val`` is carved from ``set == "train"`` by a stable
hash of the identity folder (the path's second component), ``val_fraction`` of it. Keys are
``dfdcp/<relative path without .mp4>``; ``source`` is the identity folder (the release names no source clip).
Index entries must stay inside the root.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import ClassVar

from bench.dataset import DatasetConfig, VideoDatasetAdapter, VideoRecord
from bench.datasets._common import (check_fraction, check_split, inside_root, raise_if_missing, read_json,
                                    train_or_val)
from bench.errors import BenchError
from bench.records import FAKE, REAL, REAL_DOMAIN

REAL_FOLDER = "original_videos"
METHODS = ("method_A", "method_B")
LABELS = {"real": REAL, "fake": FAKE}
SETS = ("train", "test")


@dataclass
class DFDCPConfig(DatasetConfig):
    name: str = "dfdcp"
    root_env: ClassVar[str] = "BENCH_DFDCP_ROOT"
    index: str = "dataset.json"  # relative to the root
    val_fraction: float = 0.1  # of set == "train", grouped by identity folder


class DFDCP(VideoDatasetAdapter):
    name = "dfdcp"
    description = "DFDC-Preview (original_videos, method_A, method_B; sets from dataset.json)"
    config_class = DFDCPConfig

    cfg: DFDCPConfig  # built and env-resolved by the base class from config_class

    def domains(self) -> list[str]:
        return list(METHODS)

    def videos(self, split: str) -> list[VideoRecord]:
        check_split(self.name, split)
        check_fraction(self.name, "val_fraction", self.cfg.val_fraction)
        root = self.root.absolute()
        key = f"datasets.{self.name}.index"
        index = read_json(self.name, root / self.cfg.index, "index", key)
        if not isinstance(index, dict):
            raise BenchError(f"dataset {self.name!r}: {self.cfg.index} must map video paths to their labels", key=key)
        records = []
        for rel, info in sorted(index.items()):
            inside_root(self.name, root, rel, f"{self.cfg.index} entry {rel!r}", key)
            path = PurePosixPath(rel)
            if not isinstance(info, dict) or info.get("label") not in LABELS or info.get("set") not in SETS:
                raise BenchError(f"dataset {self.name!r}: {self.cfg.index} entry {rel!r} needs label real|fake and "
                                 f"set train|test", key=key)
            label = LABELS[info["label"]]
            folder = path.parts[0]
            if folder not in (REAL_FOLDER, *METHODS) or (label == REAL) != (folder == REAL_FOLDER):
                raise BenchError(f"dataset {self.name!r}: {self.cfg.index} entry {rel!r} is labelled {info['label']} "
                                 f"but lies in {folder}/ (real videos are in {REAL_FOLDER}/, fakes in "
                                 f"{' or '.join(METHODS)}/)", key=key)
            group = path.parts[1] if len(path.parts) > 2 else path.stem
            if info["set"] == "test":
                video_split = "test"
            else:
                video_split = train_or_val(f"{self.name}/{group}", self.cfg.val_fraction)
            if video_split == split:
                domain = REAL_DOMAIN if label == REAL else folder
                records.append(VideoRecord(dataset=self.name, split=split, domain=domain, label=label,
                                           video=f"{self.name}/{path.with_suffix('')}", path=str(root / path),
                                           source=group))
        raise_if_missing(self.name, (Path(r.path) for r in records), f"{split} videos listed in {self.cfg.index}",
                         hint="the tree must be the complete release", key=f"datasets.{self.name}.root")
        return records

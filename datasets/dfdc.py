"""DFDC, the full Deepfake Detection Challenge dataset (Dolhansky et al., arXiv:2006.07397), read as released.

Layout (either part may be absent; the test set alone is enough for cross-dataset testing)::

    <root>/test/labels.csv                             "filename,label" with 1 = fake, 0 = real
    <root>/test/videos/<name>.mp4                      (or next to labels.csv)
    <root>/dfdc_train_part_<N>/metadata.json           {"<name>.mp4": {"label": "FAKE"|"REAL", "split": "train",
    <root>/dfdc_train_part_<N>/<name>.mp4                               "original": "<name>.mp4" (fakes)}}
    (training parts may also sit under <root>/train/, as DeepfakeBench users keep them)

Faithful to the source: ``test`` is the released test set with its labels; ``train`` is the released training
parts. The release does not say which of its face-swap methods made a video, so all fakes share one domain,
``fake``.

Our choices: ``val`` is carved from the training parts by a stable hash of each video's original (a fake goes with
the real video it was made from), ``val_fraction`` of them. Whatever part of the release is absent yields empty
splits (so ``bench prepare`` of the test set alone works; using an empty split is the runner's error to report);
neither part present is an error. Keys are ``dfdc/<domain>/<stem>`` (DFDC file names are unique random strings).
``source`` is the original clip where the release names it (training fakes; every real video is its own), None for
test fakes (labels.csv does not say). Entries of labels.csv and metadata.json must stay inside their folder.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from bench.dataset import DatasetConfig, VideoDatasetAdapter, VideoRecord
from bench.datasets._common import (check_fraction, check_split, inside_root, raise_if_missing, read_json,
                                    train_or_val)
from bench.errors import BenchError
from bench.records import FAKE, REAL, REAL_DOMAIN

DOMAIN = "fake"
TEST_LABELS = {"0": REAL, "1": FAKE}
TRAIN_LABELS = {"REAL": REAL, "FAKE": FAKE}


@dataclass
class DFDCConfig(DatasetConfig):
    name: str = "dfdc"
    root_env: ClassVar[str] = "BENCH_DFDC_ROOT"
    test_labels: str = "test/labels.csv"  # relative to the root; videos in its folder or its videos/ subfolder
    train_parts: list[str] = field(default_factory=lambda: ["dfdc_train_part_*", "train/dfdc_train_part_*"])  # globs
    val_fraction: float = 0.1  # of the training parts' videos, grouped by original video


class DFDC(VideoDatasetAdapter):
    name = "dfdc"
    description = "DFDC full release (test set with labels.csv; optional training parts)"
    config_class = DFDCConfig

    cfg: DFDCConfig  # built and env-resolved by the base class from config_class

    def domains(self) -> list[str]:
        return [DOMAIN]

    def videos(self, split: str) -> list[VideoRecord]:
        check_split(self.name, split)
        root = self.root.absolute()
        labels = root / self.cfg.test_labels
        parts = sorted({p for pattern in self.cfg.train_parts for p in root.glob(pattern) if p.is_dir()})
        if not parts and not labels.is_file():
            raise BenchError(f"dataset {self.name!r}: neither the test labels {labels} (filename,label next to the test "
                             f"videos) nor a training part {list(self.cfg.train_parts)} is under {root}",
                             key=f"datasets.{self.name}.test_labels")
        if split == "test":
            records = self._test(labels) if labels.is_file() else []
        else:
            records = self._train(split, parts)
        raise_if_missing(self.name, (Path(r.path) for r in records), f"{split} videos listed by the release",
                         hint="the tree must be the complete release", key=f"datasets.{self.name}.root")
        return records

    def _record(self, split: str, path: Path, label: int, source: str | None) -> VideoRecord:
        domain = DOMAIN if label == FAKE else REAL_DOMAIN
        return VideoRecord(dataset=self.name, split=split, domain=domain, label=label,
                           video=f"{self.name}/{domain}/{path.stem}", path=str(path), source=source)

    def _test(self, labels: Path) -> list[VideoRecord]:
        key = f"datasets.{self.name}.test_labels"
        with labels.open(newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        if rows and not {"filename", "label"} <= set(rows[0]):
            raise BenchError(f"dataset {self.name!r}: {labels} needs the columns filename,label", key=key)
        records = []
        for n, row in enumerate(rows, start=2):  # line 1 is the header
            if (row["label"] or "").strip() not in TEST_LABELS:
                raise BenchError(f"dataset {self.name!r}: {labels.name} line {n}: label {row['label']!r} is not 0 or 1",
                                 key=key)
            name = row["filename"].strip()
            nested = inside_root(self.name, labels.parent / "videos", name, f"{labels.name} line {n}", key)
            path = nested if nested.is_file() else inside_root(self.name, labels.parent, name, f"{labels.name} line {n}", key)
            label = TEST_LABELS[row["label"].strip()]
            records.append(self._record("test", path, label, source=path.stem if label == REAL else None))
        return records

    def _train(self, split: str, parts: list[Path]) -> list[VideoRecord]:
        check_fraction(self.name, "val_fraction", self.cfg.val_fraction)
        records = []
        for part in parts:
            meta_path = part / "metadata.json"
            meta = read_json(self.name, meta_path, "training metadata", f"datasets.{self.name}.root")
            if not isinstance(meta, dict):
                raise BenchError(f"dataset {self.name!r}: {meta_path} must map video file names to their labels",
                                 key=f"datasets.{self.name}.root")
            for name, info in sorted(meta.items()):
                if not isinstance(info, dict) or info.get("label") not in TRAIN_LABELS:
                    raise BenchError(f"dataset {self.name!r}: {meta_path} entry {name!r} has no label REAL or FAKE",
                                     key=f"datasets.{self.name}.root")
                label = TRAIN_LABELS[info["label"]]
                source = Path(info.get("original") or name).stem if label == FAKE else Path(name).stem
                if train_or_val(f"{self.name}/{source}", self.cfg.val_fraction) == split:
                    path = inside_root(self.name, part, name, f"{meta_path} entry {name!r}", f"datasets.{self.name}.root")
                    records.append(self._record(split, path, label, source))
        return records

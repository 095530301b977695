"""Celeb-DF v1 and v2 (Li et al., CVPR 2020), read as released.

Layout (the same for both versions)::

    <root>/Celeb-real/id<i>_<nnnn>.mp4                 real celebrity interviews
    <root>/YouTube-real/<nnnnn>.mp4                    real YouTube clips
    <root>/Celeb-synthesis/id<t>_id<s>_<nnnn>.mp4      fakes: video id<t>_<nnnn> with the face of id<s>
    <root>/List_of_testing_videos.txt                  lines "<label> <folder>/<file>.mp4"

Faithful to the source: the test split is exactly the release's list. Its labels are 1 = REAL and 0 = FAKE, the
opposite of ours, so they are converted, and every line is cross-checked against its folder (a label that
disagrees with the folder fails naming the line: a swapped convention must never pass silently).

Our choices: ``train`` / ``val`` are every video not on the list, so no test video leaks into training, minus the
videos that share a source clip with a test video (``id0_id2_0000`` is made from ``id0_0000``: when ``id0_0000`` or
any other fake of it is tested, training on it leaks the test set); ``keep_test_sources=true`` keeps them.
``val_fraction`` of them go to ``val`` by a stable hash of the source video (a fake ``id0_id1_0003`` is grouped
with its real ``id0_0003``), so validation never shares a source video with training. Every record's ``source``
is that source clip, so the runner's leakage guard can compare them. List entries must stay inside the root. The one fake domain is
``Celeb-synthesis``; keys are ``<name>/<folder>/<stem>`` (``celebdf_v2/Celeb-synthesis/id0_id1_0000``).
v1 and v2 are two registered datasets with their own roots and environment variables.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from bench.dataset import DatasetConfig, VideoDatasetAdapter, VideoRecord
from bench.datasets._common import (check_fraction, check_split, inside_root, mp4s, raise_if_missing,
                                    require_dir, train_or_val)
from bench.errors import BenchError
from bench.records import FAKE, REAL, REAL_DOMAIN

FAKE_FOLDER = "Celeb-synthesis"
FOLDER_LABELS = {"Celeb-real": REAL, "YouTube-real": REAL, FAKE_FOLDER: FAKE}
LIST_TO_OURS = {"1": REAL, "0": FAKE}  # the test list says 1 = real, 0 = fake
FAKE_NAME = re.compile(r"(?P<target>id\d+)_id\d+_(?P<clip>\d+)")


@dataclass
class CelebDFConfig(DatasetConfig):
    test_list: str = "List_of_testing_videos.txt"  # relative to the root
    val_fraction: float = 0.1  # of the videos not on the test list, grouped by source video
    # Videos off the test list that share a source clip with a test video (a fake made from a test real clip, or
    # the real clip a test fake alters) are kept out of train/val: training on them leaks the test set. true keeps
    # them (the split most papers used before this was noticed).
    keep_test_sources: bool = False


@dataclass
class CelebDFv1Config(CelebDFConfig):
    name: str = "celebdf_v1"
    root_env: ClassVar[str] = "BENCH_CELEBDF_V1_ROOT"


@dataclass
class CelebDFv2Config(CelebDFConfig):
    name: str = "celebdf_v2"
    root_env: ClassVar[str] = "BENCH_CELEBDF_V2_ROOT"


class CelebDF(VideoDatasetAdapter):
    """Shared reader; the registered datasets are the two subclasses below."""

    config_class = CelebDFConfig
    cfg: CelebDFConfig  # built and env-resolved by the base class from config_class

    def domains(self) -> list[str]:
        return [FAKE_FOLDER]

    def videos(self, split: str) -> list[VideoRecord]:
        check_split(self.name, split)
        check_fraction(self.name, "val_fraction", self.cfg.val_fraction)
        root = self.root.absolute()
        test = self._test_list(root)
        records = []
        if split == "test":
            for rel, (path, label) in test.items():
                records.append(self._record(split, path, label))
            raise_if_missing(self.name, (Path(r.path) for r in records), f"videos on {self.cfg.test_list}",
                             hint="the tree must be the complete release", key=f"datasets.{self.name}.root")
            return records
        test_sources = set() if self.cfg.keep_test_sources else {_source(p.stem, label) for p, label in test.values()}
        for folder, label in FOLDER_LABELS.items():
            for path in mp4s(require_dir(self.name, root / folder, f"the {folder} folder", f"datasets.{self.name}.root")):
                source = _source(path.stem, label)
                if f"{folder}/{path.name}" in test or source in test_sources:
                    continue
                if train_or_val(f"{self.name}/{source}", self.cfg.val_fraction) == split:
                    records.append(self._record(split, path, label))
        return records

    def _record(self, split: str, path: Path, label: int) -> VideoRecord:
        return VideoRecord(dataset=self.name, split=split, domain=FAKE_FOLDER if label == FAKE else REAL_DOMAIN,
                           label=label, video=f"{self.name}/{path.parent.name}/{path.stem}", path=str(path),
                           source=_source(path.stem, label))

    def _test_list(self, root: Path) -> dict[str, tuple[Path, int]]:
        """`<folder>/<file>.mp4` -> (its path inside the root, our label: 0 real / 1 fake), in the list's order."""
        key = f"datasets.{self.name}.test_list"
        path = root / self.cfg.test_list
        if not path.is_file():
            raise BenchError(f"dataset {self.name!r}: the test list {path} does not exist (it ships with the release)",
                             key=key)
        out: dict[str, tuple[Path, int]] = {}
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            parts = line.split()
            folder = parts[1].split("/")[0] if len(parts) == 2 else ""
            if len(parts) != 2 or parts[0] not in LIST_TO_OURS or folder not in FOLDER_LABELS:
                raise BenchError(f"dataset {self.name!r}: {path.name} line {n} {line!r} is not "
                                 f"'<1|0> <{'|'.join(FOLDER_LABELS)}>/<file>.mp4'", key=key)
            label = LIST_TO_OURS[parts[0]]
            if label != FOLDER_LABELS[folder]:
                raise BenchError(f"dataset {self.name!r}: {path.name} line {n} {line!r} labels a video in {folder}/ as "
                                 f"{'real' if label == REAL else 'fake'} (the list uses 1 = real, 0 = fake)", key=key)
            if parts[1] in out:
                raise BenchError(f"dataset {self.name!r}: {path.name} line {n} lists {parts[1]} a second time", key=key)
            out[parts[1]] = (inside_root(self.name, root, parts[1], f"{path.name} line {n}", key), label)
        return out


def _source(stem: str, label: int) -> str:
    """The real video a fake alters (`id0_id1_0003` -> `id0_0003`); a real video is its own source."""
    m = FAKE_NAME.fullmatch(stem) if label == FAKE else None
    return f"{m['target']}_{m['clip']}" if m else stem


class CelebDFv1(CelebDF):
    name = "celebdf_v1"
    description = "Celeb-DF v1 (test = List_of_testing_videos.txt; train/val = the rest)"
    config_class = CelebDFv1Config


class CelebDFv2(CelebDF):
    name = "celebdf_v2"
    description = "Celeb-DF v2 (test = List_of_testing_videos.txt; train/val = the rest)"
    config_class = CelebDFv2Config

"""DeepFakeDetection (DFD; Google & Jigsaw, 2019), as shipped inside the FaceForensics++ download.

Layout (``<c>`` is ``raw``, ``c23`` or ``c40``)::

    <root>/original_sequences/actors/<c>/videos/<actor>__<scene>.mp4
    <root>/manipulated_sequences/DeepFakeDetection/<c>/videos/<target>_<source>__<scene>__<8-char id>.mp4

Faithful to the source: every video of the release, real (actors) and fake, is listed from those two folders; there
is no official split, and cross-dataset papers use all of DFD as a test set, so by default every video is in
``test`` and ``train`` / ``val`` are empty.

Our choices and known limitations:
- Which face is kept: DFD scenes often show several people and only the target actor's face is manipulated. Where
  the release ships a fake's mask (``manipulated_sequences/DeepFakeDetection/masks/videos/<stem>.mp4``),
  ``bench prepare`` keeps the face inside it (column ``mask_guided`` of the manifest), so a pristine bystander is
  never labelled fake; ``masks=false`` turns that off. Real videos (and fakes without a mask) keep the video's face
  track (bench/faces/track.py), which may be either person in a two-person scene.
- ``source`` is the real clip a video shows (``<actor>__<scene>``; a fake's is its target's), for leakage checks.
- ``test_only=false`` splits DFD by target actor (stable hash): every video of an actor, real or a fake of him/her,
  lands in one split. The source actor's face can still appear in another split.
- Keys: ``dfd/real/<actor>__<scene>``, ``dfd/DeepFakeDetection/<target>_<source>__<scene>__<id>``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar

from bench.dataset import DatasetConfig, VideoDatasetAdapter, VideoRecord
from bench.datasets._common import (COMPRESSIONS, check_fraction, check_split, hash_unit, mask_video, mp4s,
                                    require_dir)
from bench.errors import BenchError
from bench.records import FAKE, REAL, REAL_DOMAIN

DOMAIN = "DeepFakeDetection"
REAL_NAME = re.compile(r"(?P<actor>\d+)__(?P<scene>.+)")
FAKE_NAME = re.compile(r"(?P<target>\d+)_(?P<source>\d+)__(?P<scene>.+)__(?P<id>[A-Za-z0-9]{8})")


@dataclass
class DFDConfig(DatasetConfig):
    name: str = "dfd"
    root_env: ClassVar[str] = "BENCH_DFD_ROOT"
    root: str | None = None  # the FaceForensics++ root (DFD ships inside it)
    compression: str = "c23"  # raw | c23 | c40
    test_only: bool = True  # the whole release is one test set, as in cross-dataset papers
    val_fraction: float = 0.1  # of actors; only when test_only=false
    test_fraction: float = 0.2  # of actors; only when test_only=false
    masks: bool = True  # choose the face inside the shipped manipulation mask of a fake (false: the tracked face)


class DFD(VideoDatasetAdapter):
    name = "dfd"
    description = "DeepFakeDetection (Google/Jigsaw) from the FaceForensics++ tree; test-only by default"
    config_class = DFDConfig

    cfg: DFDConfig  # built and env-resolved by the base class from config_class

    def domains(self) -> list[str]:
        return [DOMAIN]

    def videos(self, split: str) -> list[VideoRecord]:
        check_split(self.name, split)
        return [r for r in self._all() if r.split == split]

    def _all(self) -> list[VideoRecord]:
        c = self.cfg.compression
        if c not in COMPRESSIONS:
            raise BenchError(f"dataset {self.name!r}: compression must be one of {list(COMPRESSIONS)}, got {c!r}",
                             key=f"datasets.{self.name}.compression")
        root = self.root.absolute()
        key = f"datasets.{self.name}.root"
        real_dir = require_dir(self.name, root / "original_sequences" / "actors" / c / "videos", f"the real {c} videos", key)
        fake_dir = require_dir(self.name, root / "manipulated_sequences" / DOMAIN / c / "videos", f"the fake {c} videos", key)
        records = []
        for folder, pattern, domain, label in ((real_dir, REAL_NAME, REAL_DOMAIN, REAL), (fake_dir, FAKE_NAME, DOMAIN, FAKE)):
            for path in mp4s(folder):
                m = pattern.fullmatch(path.stem)
                if m is None:  # never skip a video silently: an unexpected name means an unexpected tree
                    raise BenchError(f"dataset {self.name!r}: {path} does not follow DFD's naming "
                                     f"({'<actor>__<scene>' if label == REAL else '<target>_<source>__<scene>__<id>'}.mp4)",
                                     key=key)
                actor = m["actor"] if label == REAL else m["target"]
                mask = mask_video(fake_dir.parent.parent, path.stem, self.cfg.masks) if label == FAKE else None
                records.append(VideoRecord(dataset=self.name, split=self._split_of(actor), domain=domain, label=label,
                                           video=f"{self.name}/{domain}/{path.stem}", path=str(path),
                                           source=f"{actor}__{m['scene']}", mask=mask))
        return records

    def _split_of(self, actor: str) -> str:
        if self.cfg.test_only:
            return "test"
        check_fraction(self.name, "val_fraction", self.cfg.val_fraction)
        check_fraction(self.name, "test_fraction", self.cfg.test_fraction)
        u = hash_unit(f"{self.name}/{actor}")
        if u < self.cfg.test_fraction:
            return "test"
        return "val" if u < self.cfg.test_fraction + self.cfg.val_fraction else "train"

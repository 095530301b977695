"""DiFF, the Diffusion Facial Forgery dataset (Cheng et al., ACM MM 2024): still images, read as users lay it out.

Layout (the default of ``subsets`` and ``splits``; folder names match in any case, images may be nested, e.g. one
folder per generation method)::

    <root>/<split>/real/...*.png|jpg         pristine faces
    <root>/<split>/t2i/...                   text-to-image
    <root>/<split>/i2i/...                   image-to-image
    <root>/<split>/fs/...                    face swapping
    <root>/<split>/fe/...                    face editing

Faithful to the source: the four forgery subsets T2I, I2I, FS and FE are the domains (named ``t2i``, ``i2i``,
``fs``, ``fe``), and real images are the pristine class of every split.

Our choices: DiFF publishes no loader that fixes the folder layout, so the folder -> domain mapping (``subsets``)
and split folder names (``splits``) are config; a folder mapped to null is skipped on purpose, while a folder that
is not in the mapping fails (never dropped silently). Every image is its own "video" for video-level metrics: the key
is ``diff/<path relative to the root>``, frame 0. A test set needs real images (AUC needs both classes): they are
part of every split's samples, and a protocol that would test on fakes alone is rejected by the runner.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from bench.dataset import DatasetAdapter, DatasetConfig
from bench.datasets._common import check_split
from bench.errors import BenchError
from bench.records import FAKE, REAL, REAL_DOMAIN, Sample

DOMAINS = ("t2i", "i2i", "fs", "fe")


@dataclass
class DiFFConfig(DatasetConfig):
    name: str = "diff"
    root_env: ClassVar[str] = "BENCH_DIFF_ROOT"
    # Folder name (any case) -> domain; "real" marks pristine images; null skips the folder on purpose.
    subsets: dict[str, str | None] = field(
        default_factory=lambda: {"real": REAL_DOMAIN, **{d: d for d in DOMAINS}})
    splits: dict[str, str] = field(default_factory=lambda: {"train": "train", "val": "val", "test": "test"})
    extensions: list[str] = field(default_factory=lambda: [".png", ".jpg", ".jpeg", ".webp", ".bmp"])


class DiFF(DatasetAdapter):
    name = "diff"
    description = "DiFF diffusion facial forgeries (images; domains t2i, i2i, fs, fe)"
    config_class = DiFFConfig

    cfg: DiFFConfig  # built and env-resolved by the base class from config_class

    def domains(self) -> list[str]:
        return list(dict.fromkeys(d for d in self.cfg.subsets.values() if d and d != REAL_DOMAIN))

    def samples(self, split: str) -> list[Sample]:
        check_split(self.name, split)
        root = self.root.absolute()
        split_dir = _child(root, self.cfg.splits.get(split, split))
        if split_dir is None:
            raise BenchError(f"dataset {self.name!r}: no folder {self.cfg.splits.get(split, split)!r} (any case) for "
                             f"split {split!r} in {root}", key=f"datasets.{self.name}.splits")
        subsets = {k.lower(): v for k, v in self.cfg.subsets.items()}
        extensions = {e.lower() for e in self.cfg.extensions}
        samples = []
        for folder in sorted(p for p in split_dir.iterdir() if p.is_dir()):
            if folder.name.lower() not in subsets:
                raise BenchError(f"dataset {self.name!r}: folder {folder} is not a known subset {sorted(subsets)}; map "
                                 f"it to a domain (or to null to skip it) in datasets.{self.name}.subsets",
                                 key=f"datasets.{self.name}.subsets")
            domain = subsets[folder.name.lower()]
            if domain is None:
                continue
            label = REAL if domain == REAL_DOMAIN else FAKE
            for path in sorted(p for p in folder.rglob("*") if p.suffix.lower() in extensions and p.is_file()):
                rel = path.relative_to(root).as_posix()
                samples.append(Sample(dataset=self.name, split=split, domain=domain, label=label,
                                      video=f"{self.name}/{rel}", frame=0, path=str(path)))
        if not samples:
            raise BenchError(f"dataset {self.name!r}: no images with extensions {sorted(extensions)} under {split_dir}",
                             key=f"datasets.{self.name}.root")
        return samples


def _child(parent: Path, name: str) -> Path | None:
    """The sub-folder of `parent` called `name`, compared case-insensitively."""
    matches = [p for p in parent.iterdir() if p.is_dir() and p.name.lower() == name.lower()]
    if len(matches) > 1:
        raise BenchError(f"folders {[m.name for m in matches]} in {parent} differ only in case; keep one",
                         key="datasets.diff.root")
    return matches[0] if matches else None

"""DiFF, the Diffusion Facial Forgery dataset (Cheng et al., ACM MM 2024): still images, read as users lay it out.

Layout (the default of ``subsets`` and ``splits``; folder names match in any case)::

    <root>/<split>/real/...*.png|jpg              pristine faces (may be nested)
    <root>/<split>/t2i/<generator>/...            text-to-image: Midjourney, SDXL, FreeDoM_T, HPS
    <root>/<split>/i2i/<generator>/...            image-to-image: LoRA, DreamBooth, SDXL Refiner, FreeDoM_I
    <root>/<split>/fs/<generator>/...             face swapping: DiffFace, DCFace
    <root>/<split>/fe/<generator>/...             face editing: Imagic, Cycle Diffusion, Collaborative Diffusion

Faithful to the source: the four forgery subsets T2I, I2I, FS and FE (named ``t2i``, ``i2i``, ``fs``, ``fe``) are
what protocols train and test on, and real images are the pristine class of every split.

Domains (``domain_level``): each subset holds several generation methods, one folder each. With "generator" (the
default) every generator folder is its own domain, named ``<subset>/<folder>`` (e.g. ``t2i/Midjourney``; images
directly in a subset folder get the subset's name), and a subset's name stands for all its generators wherever
domains are listed (``protocol.train.domains: [t2i]``, test sets): a run trained on one subset then has one domain
per generator, which MoA-CLIP's per-domain adapters, router and cross-domain losses need (with a single domain they
degenerate). ``generators`` renames, merges or skips generator folders (``{"t2i/HPS": "t2i/sd", "t2i/SDXL":
"t2i/sd", "fe/Imagic": null}``; keys are ``<subset>/<folder>``, any case). "subset" gives the four subsets as the
domains, as before.

Our choices: DiFF publishes no loader that fixes the folder layout, so the folder -> domain mapping (``subsets``)
and split folder names (``splits``) are config; a folder mapped to null is skipped on purpose, while a folder that
is not in the mapping fails (never dropped silently). Every image is its own "video" for video-level metrics: the key
is ``diff/<path relative to the root>``, frame 0. A test set needs real images (AUC needs both classes): they are
part of every split's samples, and a protocol that would test on fakes alone is rejected by the runner.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
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
    domain_level: str = "generator"  # "generator": one domain per generator folder, <subset>/<folder> | "subset"
    generators: dict[str, str | None] = field(default_factory=dict)  # "<subset>/<folder>" -> domain; null skips


class DiFF(DatasetAdapter):
    name = "diff"
    description = "DiFF diffusion facial forgeries (images; subsets t2i, i2i, fs, fe; one domain per generator)"
    config_class = DiFFConfig

    cfg: DiFFConfig  # built and env-resolved by the base class from config_class

    def __init__(self, cfg: Any, cache_dir: str | Path) -> None:
        super().__init__(cfg, cache_dir)
        if self.cfg.domain_level not in ("generator", "subset"):
            raise BenchError(f"dataset {self.name!r}: domain_level must be 'generator' or 'subset', got "
                             f"{self.cfg.domain_level!r}", key=f"datasets.{self.name}.domain_level")
        self._groups: dict[str, list[str]] | None = None

    def subsets(self) -> list[str]:
        """The forgery subsets (t2i, i2i, fs, fe with the default mapping)."""
        return list(dict.fromkeys(d for d in self.cfg.subsets.values() if d and d != REAL_DOMAIN))

    def domains(self) -> list[str]:
        if self.cfg.domain_level == "subset":
            return self.subsets()
        return [d for members in self.domain_groups().values() for d in members]

    def domain_groups(self) -> dict[str, list[str]]:
        """Subset -> its generator domains, as found in the split folders on disk (generator level only)."""
        if self.cfg.domain_level == "subset":
            return {}
        if self._groups is None:
            found: dict[str, dict[str, None]] = {s: {} for s in self.subsets()}
            for split in self.cfg.splits.values():
                split_dir = _child(self.root.absolute(), split)
                for folder, subset in self._subset_folders(split_dir) if split_dir else []:
                    if subset == REAL_DOMAIN:
                        continue
                    for entry in sorted(folder.iterdir()):
                        domain = self._domain(subset, entry.name) if entry.is_dir() else subset
                        if domain and (entry.is_dir() or entry.suffix.lower() in self._extensions()):
                            found[subset][domain] = None
            self._groups = {s: list(members) for s, members in found.items()}
        return self._groups

    def samples(self, split: str) -> list[Sample]:
        check_split(self.name, split)
        root = self.root.absolute()
        split_dir = _child(root, self.cfg.splits.get(split, split))
        if split_dir is None:
            raise BenchError(f"dataset {self.name!r}: no folder {self.cfg.splits.get(split, split)!r} (any case) for "
                             f"split {split!r} in {root}", key=f"datasets.{self.name}.splits")
        extensions = self._extensions()
        samples = []
        for folder, subset in self._subset_folders(split_dir):
            label = REAL if subset == REAL_DOMAIN else FAKE
            for path in sorted(p for p in folder.rglob("*") if p.suffix.lower() in extensions and p.is_file()):
                inner = path.relative_to(folder).parts
                domain = subset
                if label == FAKE and self.cfg.domain_level == "generator" and len(inner) > 1:
                    domain = self._domain(subset, inner[0])
                    if domain is None:  # generator skipped on purpose (generators: {<subset>/<folder>: null})
                        continue
                rel = path.relative_to(root).as_posix()
                samples.append(Sample(dataset=self.name, split=split, domain=domain, label=label,
                                      video=f"{self.name}/{rel}", frame=0, path=str(path)))
        if not samples:
            raise BenchError(f"dataset {self.name!r}: no images with extensions {sorted(extensions)} under {split_dir}",
                             key=f"datasets.{self.name}.root")
        return samples

    # ---- helpers --------------------------------------------------------------------------------------------
    def _extensions(self) -> set[str]:
        return {e.lower() for e in self.cfg.extensions}

    def _subset_folders(self, split_dir: Path) -> list[tuple[Path, str]]:
        """(folder, subset or REAL_DOMAIN) for each folder of a split that is not skipped; unknown folders fail."""
        subsets = {k.lower(): v for k, v in self.cfg.subsets.items()}
        out = []
        for folder in sorted(p for p in split_dir.iterdir() if p.is_dir()):
            if folder.name.lower() not in subsets:
                raise BenchError(f"dataset {self.name!r}: folder {folder} is not a known subset {sorted(subsets)}; map "
                                 f"it to a domain (or to null to skip it) in datasets.{self.name}.subsets",
                                 key=f"datasets.{self.name}.subsets")
            if subsets[folder.name.lower()] is not None:
                out.append((folder, subsets[folder.name.lower()]))
        return out

    def _domain(self, subset: str, folder: str) -> str | None:
        """The domain of generator folder `folder` of `subset`: `generators`' entry (any case) or <subset>/<folder>."""
        key = f"{subset}/{folder}"
        mapping = {k.lower(): v for k, v in self.cfg.generators.items()}
        return mapping[key.lower()] if key.lower() in mapping else key


def _child(parent: Path, name: str) -> Path | None:
    """The sub-folder of `parent` called `name`, compared case-insensitively."""
    matches = [p for p in parent.iterdir() if p.is_dir() and p.name.lower() == name.lower()]
    if len(matches) > 1:
        raise BenchError(f"folders {[m.name for m in matches]} in {parent} differ only in case; keep one",
                         key="datasets.diff.root")
    return matches[0] if matches else None

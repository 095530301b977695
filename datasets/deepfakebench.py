"""Datasets already preprocessed by DeepfakeBench (Yan et al., NeurIPS 2023 D&B): its dataset JSON + frame folders.

Format (one JSON per dataset, as written by DeepfakeBench's ``preprocessing/rearrange.py``)::

    {"<dataset>": {"<label name>": {"<split>": {["<compression>": ]{"<video>": {"label": "<label name>",
                                                                            "frames": ["<path>.png", ...]}}}}}}

The compression level exists for FaceForensics++-derived JSONs only. Frames are read directly: they are
DeepfakeBench's face crops, so ``bench prepare`` is not needed (and not used) for this dataset.

Faithful to the source: splits, videos and frames are exactly the JSON's. Label names are DeepfakeBench's
(``FF-real``, ``FF-DF``, ``CelebDFv2_fake``, ``DFDCP_FakeA``, ...); ``labels`` maps each to our label and domain,
with defaults for every name DeepfakeBench ships. A label name without a mapping fails naming it.

Our choices: frame paths are resolved against the root (after removing ``strip_prefix``, for JSONs written on
another machine with absolute paths; Windows separators are accepted) and must stay inside it (``..`` or an absolute
path is refused, naming the entry, unless ``allow_absolute=true``); a listed frame missing on disk fails with a
count. The frame index is the number in the frame's file name (DeepfakeBench names frames by their index in the
video), else its position in the list. Keys are ``deepfakebench/<dataset>/<label name>/<video>``. Beware that
DeepfakeBench's own JSONs copy the test list into ``val`` for Celeb-DF, DFDC and DFDC-P: never select a
checkpoint on those.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, ClassVar

from omegaconf import MISSING

from bench.dataset import DatasetAdapter, DatasetConfig
from bench.datasets._common import check_split, inside_root, raise_if_missing, read_json
from bench.errors import BenchError
from bench.records import FAKE, REAL, REAL_DOMAIN, Sample

TRAILING_NUMBER = re.compile(r"(\d+)$")


@dataclass
class LabelSpec:
    label: int = MISSING  # 0 real / 1 fake
    domain: str = MISSING  # our domain name; "real" for pristine videos


def _default_labels() -> dict[str, LabelSpec]:
    fakes = {  # DeepfakeBench label name -> our domain (named as the corresponding built-in adapter names it)
        "FF-DF": "Deepfakes", "FF-F2F": "Face2Face", "FF-FS": "FaceSwap", "FF-NT": "NeuralTextures",
        "FF-FH": "FaceShifter", "DFD_fake": "DeepFakeDetection", "CelebDFv1_fake": "Celeb-synthesis",
        "CelebDFv2_fake": "Celeb-synthesis", "DFDC_Fake": "fake", "DFDCP_FakeA": "method_A",
        "DFDCP_FakeB": "method_B", "UADFV_Fake": "UADFV", "DF_fake": "DeeperForensics",
    }
    reals = ("FF-real", "DFD_real", "CelebDFv1_real", "CelebDFv2_real", "DFDC_Real", "DFDCP_Real", "UADFV_Real",
             "DF_real")
    return {**{r: LabelSpec(REAL, REAL_DOMAIN) for r in reals}, **{k: LabelSpec(FAKE, d) for k, d in fakes.items()}}


@dataclass
class DeepfakeBenchConfig(DatasetConfig):
    name: str = "deepfakebench"
    root_env: ClassVar[str] = "BENCH_DEEPFAKEBENCH_ROOT"
    root: str | None = None  # the folder the JSON's frame paths are relative to
    json_file: str | None = None  # e.g. dataset_json/Celeb-DF-v2.json; relative to the root, or absolute
    dataset: str | None = None  # the JSON's top-level key; null = its only one
    compression: str = "c23"  # used where the JSON has a compression level (FaceForensics++)
    strip_prefix: str | None = None  # leading part of every frame path to drop before joining the root
    # Frame paths must be relative to the root (after strip_prefix); true also accepts absolute paths, for JSONs
    # you wrote yourself on this machine. `..` never leaves the root.
    allow_absolute: bool = False
    labels: dict[str, LabelSpec] = field(default_factory=_default_labels)


class DeepfakeBench(DatasetAdapter):
    name = "deepfakebench"
    description = "any dataset in DeepfakeBench's JSON + frames format, read directly"
    config_class = DeepfakeBenchConfig

    def __init__(self, cfg: Any, cache_dir: str | Path) -> None:
        super().__init__(cfg, cache_dir)
        self.cfg: DeepfakeBenchConfig
        self._tree: tuple[str, dict[str, Any]] | None = None

    def domains(self) -> list[str]:
        _, tree = self._dataset()
        return list(dict.fromkeys(self._spec(n).domain for n in tree if self._spec(n).label == FAKE))

    def samples(self, split: str) -> list[Sample]:
        check_split(self.name, split)
        dataset, tree = self._dataset()
        samples, empty = [], []
        for label_name, by_split in tree.items():
            spec = self._spec(label_name)
            for video, entry in sorted(self._videos(label_name, by_split.get(split, {})).items()):
                frames = entry.get("frames") if isinstance(entry, dict) else None
                if not isinstance(frames, list):
                    raise BenchError(f"dataset {self.name!r}: {label_name}/{split}/{video} has no 'frames' list",
                                     key=f"datasets.{self.name}.json_file")
                if not frames:
                    empty.append(video)
                key = f"{self.name}/{dataset}/{label_name}/{video}"
                where = f"{self.cfg.json_file} {label_name}/{split}/{video}"
                samples += [Sample(dataset=self.name, split=split, domain=spec.domain, label=spec.label, video=key,
                                   frame=index, path=str(self._resolve(p, where)))
                            for index, p in zip(_frame_indices(frames), frames)]
        if empty:  # DeepfakeBench lists videos where its face detector found nothing: say so, do not hide it
            warnings.warn(f"dataset {self.name!r}: {len(empty)} {split} videos list no frames (e.g. {empty[0]})",
                          stacklevel=2)
        raise_if_missing(self.name, (Path(s.path) for s in samples), f"{split} frames listed in {self.cfg.json_file}",
                         hint=f"point datasets.{self.name}.root at the folder the frame paths are relative to "
                              f"(and set datasets.{self.name}.strip_prefix for absolute paths from another machine)",
                         key=f"datasets.{self.name}.root")
        return samples

    # ---- helpers ------------------------------------------------------------------------------------------
    def _dataset(self) -> tuple[str, dict[str, Any]]:
        """(dataset name, {label name: {split: ...}}) from the JSON, read once."""
        if self._tree is None:
            root, key = self.root, f"datasets.{self.name}.json_file"  # the root first: the most likely thing unset
            if not self.cfg.json_file:
                raise BenchError(f"dataset {self.name!r} needs its DeepfakeBench JSON: set {key}=/path/to/<dataset>.json",
                                 key=key)
            path = root / Path(self.cfg.json_file).expanduser()  # an absolute json_file replaces the root
            data = read_json(self.name, path, "DeepfakeBench JSON", key)
            names = list(data) if isinstance(data, dict) else []
            name = self.cfg.dataset or (names[0] if len(names) == 1 else None)
            if name not in names or not isinstance(data[name], dict):
                raise BenchError(f"dataset {self.name!r}: pick one of the datasets {names} in {path} with "
                                 f"datasets.{self.name}.dataset", key=f"datasets.{self.name}.dataset")
            self._tree = (name, data[name])
        return self._tree

    def _spec(self, label_name: str) -> LabelSpec:
        spec = self.cfg.labels.get(label_name)
        key = f"datasets.{self.name}.labels"
        if spec is None:
            raise BenchError(f"dataset {self.name!r}: label name {label_name!r} has no mapping; add "
                             f"{key}.{label_name}={{label: 0|1, domain: <name>}}", key=key)
        if spec.label not in (REAL, FAKE) or (spec.label == REAL) != (spec.domain == REAL_DOMAIN):
            raise BenchError(f"dataset {self.name!r}: {key}.{label_name} must be label 0 with domain "
                             f"{REAL_DOMAIN!r} or label 1 with a fake domain, got {spec}", key=key)
        return spec

    def _videos(self, label_name: str, level: Any) -> dict[str, Any]:
        """Videos of one label and split, stepping through the compression level where there is one."""
        if isinstance(level, dict) and all(isinstance(v, dict) and "frames" in v for v in level.values()):
            return level
        if isinstance(level, dict) and all(isinstance(v, dict) for v in level.values()):
            if self.cfg.compression not in level:
                raise BenchError(f"dataset {self.name!r}: {label_name} has compression levels {sorted(level)}, "
                                 f"not {self.cfg.compression!r}", key=f"datasets.{self.name}.compression")
            return self._videos(label_name, level[self.cfg.compression])
        raise BenchError(f"dataset {self.name!r}: {label_name} is not a mapping of videos to frames in "
                         f"{self.cfg.json_file}", key=f"datasets.{self.name}.json_file")

    def _resolve(self, frame: str, where: str) -> Path:
        frame = frame.replace("\\", "/")
        prefix = (self.cfg.strip_prefix or "").replace("\\", "/")
        if prefix and frame.startswith(prefix):
            frame = frame[len(prefix):].lstrip("/")
        return inside_root(self.name, self.root.absolute(), frame, where, f"datasets.{self.name}.allow_absolute",
                           allow_absolute=self.cfg.allow_absolute)


def _frame_indices(frames: list[str]) -> list[int]:
    """Frame numbers from file names (`.../012.png` -> 12); positions where names carry no distinct numbers."""
    numbers = [TRAILING_NUMBER.search(PurePosixPath(f.replace("\\", "/")).stem) for f in frames]
    if all(numbers) and len({int(m[1]) for m in numbers}) == len(frames):
        return [int(m[1]) for m in numbers]
    return list(range(len(frames)))

"""The dataset-adapter interface. One subclass per file in ``datasets/`` (or in a plugin).

An adapter turns a dataset *as published* into typed `Sample` records per split. Roots come from config
(`datasets.<name>.root`) or the environment variable its config class names (`root_env`), never from code.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from omegaconf import MISSING, DictConfig, OmegaConf

from bench.checks import Check
from bench.errors import BenchError, DataRootMissing
from bench.records import REAL_DOMAIN, Sample

SPLITS = ("train", "val", "test")


@dataclass
class DatasetConfig:
    """Fields every dataset config has; subclasses add their own.

    ClassVars (not config fields) a subclass sets:
      root_env: the environment variable that holds the root when `datasets.<name>.root` is not set (it becomes the
        default of `root` in every composed config, for built-in and plugin datasets alike; see `dataset_node`).
      needs_root: False for datasets that need no files (generated ones).
      checks: field name -> value rule (`bench.checks`), applied when the config is composed.
    """

    root_env: ClassVar[str | None] = None
    needs_root: ClassVar[bool] = True
    checks: ClassVar[dict[str, Check]] = {}

    name: str = MISSING
    root: str | None = None  # the dataset's folder; default ${oc.env:<root_env>,null}


def dataset_node(config_class: type[DatasetConfig], name: str) -> DictConfig:
    """The typed config node of dataset `name`, whose `root` defaults to the `root_env` variable (resolved lazily)."""
    node = OmegaConf.structured(config_class(name=name))
    if config_class.root_env and node.root is None:
        node.root = f"${{oc.env:{config_class.root_env},null}}"
    return node


class DatasetAdapter(ABC):
    """Base class of dataset adapters.

    Class attributes: name, description, config_class (a DatasetConfig subclass, which also says where the root
    comes from: its `root_env` and `needs_root`).
    """

    name: ClassVar[str]
    description: ClassVar[str] = ""
    config_class: ClassVar[type[DatasetConfig]] = DatasetConfig

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        misplaced = sorted({"root_env", "needs_root"} & set(vars(cls)))
        if misplaced:  # composition reads them from the config class without importing the adapter
            raise TypeError(f"{cls.__qualname__}: set {' and '.join(misplaced)} as ClassVars of its config class "
                            f"({cls.config_class.__qualname__}), not on the adapter")

    def __init__(self, cfg: Any, cache_dir: str | Path) -> None:
        """`cfg`: the config dataclass, an OmegaConf node (as Hydra composes it) or None (all defaults, the root from
        `root_env`); it is stored as `config_class` with `${oc.env:...}` values resolved. `cache_dir`: a writable
        folder for this dataset's derived files (prepared crops, generated images)."""
        schema = dataset_node(self.config_class, self.name)
        self.cfg = OmegaConf.to_object(OmegaConf.merge(schema, cfg) if cfg is not None else schema)
        self.cache_dir = Path(cache_dir)

    @property
    def root_env(self) -> str | None:
        return self.config_class.root_env

    @property
    def needs_root(self) -> bool:
        return self.config_class.needs_root

    # ---- what subclasses implement ---------------------------------------------------------------------
    @abstractmethod
    def samples(self, split: str) -> list[Sample]:
        """All samples (real and fake, every domain) of `split`, in a deterministic order."""

    @abstractmethod
    def domains(self) -> list[str]:
        """The fake domains (manipulations / forgery families) this dataset provides."""

    # ---- shared helpers --------------------------------------------------------------------------------
    @property
    def root(self) -> Path:
        """The configured root; raises a `DataRootMissing` naming the key and environment variable to set."""
        key = f"datasets.{self.name}.root"
        how = f"set {key}=/path/to/{self.name}" + (f" or export {self.root_env}=/path/to/{self.name}" if self.root_env else "")
        raw = getattr(self.cfg, "root", None)
        if not raw:
            raise DataRootMissing(f"dataset {self.name!r} has no root configured: {how}", key=key)
        path = Path(os.path.expanduser(str(raw)))
        if not path.is_dir():
            raise DataRootMissing(f"dataset {self.name!r}: root {path} does not exist or is not a folder: {how}", key=key)
        return path

    def check(self) -> None:
        """Fail fast (before any training) if the dataset cannot be read. Default: the root must exist."""
        if self.needs_root:
            _ = self.root

    def domain_groups(self) -> dict[str, list[str]]:
        """Names that stand for several domains, e.g. DiFF's subset `t2i` -> its generator folders. Default: none."""
        return {}

    def expand_domains(self, names: list[str] | None) -> list[str]:
        """The fake domains `names` stand for (a group name expands to its members), in order; None = all."""
        if names is None:
            return self.domains()
        groups, known = self.domain_groups(), set(self.domains())
        unknown = sorted(n for n in names if n not in known and n not in groups)
        if unknown:
            have = self.domains() + [g for g in groups if g not in known]
            raise BenchError(f"dataset {self.name!r} has no domain(s) {unknown}; it has {have}", key="protocol")
        return list(dict.fromkeys(d for n in names for d in groups.get(n, [n])))

    def select(self, split: str, domains: list[str] | None, real: bool = True) -> list[Sample]:
        """Samples of `split` restricted to fake `domains` (None = all; groups expanded) plus, if `real`, the real
        samples."""
        keep = None if domains is None else set(self.expand_domains(domains))
        return [s for s in self.samples(split)
                if (s.domain == REAL_DOMAIN and real) or (s.domain != REAL_DOMAIN and (keep is None or s.domain in keep))]


class UnreadableImage(BenchError):
    """An image file that is missing, empty, truncated or cannot be decoded; the message names the file."""


# Where a complete file ends: JPEG's end-of-image marker, PNG's IEND chunk (type + CRC) in the last bytes.
_JPEG, _PNG = b"\xff\xd8", b"\x89PNG"
_END_MARKERS = {_JPEG: b"\xff\xd9", _PNG: b"IEND"}
_TAIL = 16


def load_image(sample: Sample) -> np.ndarray:
    """The sample's pixels as (H, W, 3) uint8 RGB; `UnreadableImage` (naming the file) if they cannot be read."""
    if sample.array is not None:  # a read-only (cached, memory-mapped) array is copied: torch needs writable memory
        return sample.array if sample.array.flags.writeable else sample.array.copy()
    return decode_file(sample.path)


def check_image(path: str | Path) -> str | None:
    """Why `path` is not a usable image (missing, empty, truncated, undecodable), or None. Decodes it in full."""
    try:
        decode_file(path)
    except UnreadableImage as err:
        return str(err)
    return None


def decode_file(path: str | Path) -> np.ndarray:
    """Decode with OpenCV (about 1.8x PIL's JPEG speed in benchmarks/crop_loading.py) after checking that a JPEG or
    PNG file is complete: libjpeg only warns ("Premature end of JPEG file") and returns grey-filled pixels for a
    truncated file. A file without its end marker goes to PIL's strict decoder, which accepts complete files with
    trailing data and refuses truncated ones. Any failure is an `UnreadableImage` naming the file."""
    import cv2

    try:
        data = np.fromfile(path, dtype=np.uint8)
    except FileNotFoundError:
        raise UnreadableImage(f"image {path} is missing") from None
    except OSError as err:
        raise UnreadableImage(f"cannot read image {path}: {err.strerror or err}") from None
    if data.size == 0:
        raise UnreadableImage(f"image {path} is empty (0 bytes)")
    head = data[:4].tobytes()
    end = next((m for magic, m in _END_MARKERS.items() if head.startswith(magic)), None)
    if end is None or end in data[-_TAIL:].tobytes():
        bgr = cv2.imdecode(data, cv2.IMREAD_COLOR)
        if bgr is not None:
            return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    import io

    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data.tobytes())) as im:
            return np.asarray(im.convert("RGB"))
    except UnidentifiedImageError:
        raise UnreadableImage(f"image {path} is not an image file PIL or OpenCV can read (corrupt, or another format)") from None
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:  # PIL: "image file is truncated (N bytes not processed)" etc.
        raise UnreadableImage(f"image {path} cannot be decoded: {err}") from None


@dataclass(frozen=True)
class VideoRecord:
    """One video of a video dataset, as listed from its published layout (before `bench prepare`)."""

    dataset: str
    split: str
    domain: str  # manipulation method, or REAL_DOMAIN
    label: int  # 0 real / 1 fake (converted from the dataset's own convention)
    video: str  # unique key across datasets and manipulations, e.g. "ffpp/Deepfakes/000_003"
    path: str  # absolute path of the video file
    source: str | None = None  # the source clip/identity where the dataset knows it (FF++: target id of a fake)
    mask: str | None = None  # a video of the manipulation mask, frame-aligned (FF++/DFD fakes), where shipped


class VideoDatasetAdapter(DatasetAdapter):
    """A dataset of videos: subclasses list `videos(split)`; `bench prepare` turns them into face crops, and
    `samples(split)` reads the prepared manifest (never decoding video during training)."""

    @abstractmethod
    def videos(self, split: str) -> list[VideoRecord]:
        """Every video of `split` (real and fake), deterministic order."""

    def samples(self, split: str) -> list[Sample]:
        from bench.manifest import prepared_samples  # reads what `bench prepare` wrote

        return prepared_samples(self, split)

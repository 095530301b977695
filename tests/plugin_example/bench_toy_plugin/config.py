"""Config classes of the example plugin. No torch here: ForgeryBench composes configs without the model code."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from bench.checks import Check, at_least
from bench.dataset import DatasetConfig
from bench.detector_config import DetectorConfig


@dataclass
class ToyColorConfig(DetectorConfig):
    recipe: ClassVar[dict[str, Any]] = {"optimizer": "adam", "lr": 1e-2, "epochs": 2}
    tiny: ClassVar[dict[str, Any]] = {"hidden": 8}
    checks: ClassVar[dict[str, Check]] = {**DetectorConfig.checks, "hidden": at_least(1)}

    name: str = "toy_color"
    input_size: int = 32
    hidden: int = 16


@dataclass
class ToyFacesConfig(DatasetConfig):
    root_env: ClassVar[str] = "TOY_FACES_ROOT"  # `export TOY_FACES_ROOT=/data/toy` works like datasets.toy_faces.root

    name: str = "toy_faces"
    labels: str = "labels.csv"  # relative to the root: split,domain,label,video,frame,path per line

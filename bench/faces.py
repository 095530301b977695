"""Face detectors used by `bench prepare` (interface; implementations register through the plugin hooks)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import numpy as np

from bench.hookspecs import hookimpl


class FaceDetector(ABC):
    """Finds faces in an RGB frame."""

    name: ClassVar[str]
    description: ClassVar[str] = ""

    @abstractmethod
    def detect(self, frame: np.ndarray) -> list[tuple[int, int, int, int]]:
        """(H, W, 3) uint8 RGB -> face boxes (x0, y0, x1, y1) in pixels."""


@hookimpl
def bench_register_face_detectors(register) -> None:
    pass

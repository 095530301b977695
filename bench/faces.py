"""Face detectors used by `bench prepare`, and the crop geometry shared by all of them.

A detector is a `FaceDetector` subclass registered through `bench_register_face_detectors`, like the built-in
`haar` below (OpenCV's Viola-Jones cascade: it ships inside opencv-python-headless, so `bench prepare` works
offline with no weights to fetch). Plugins add stronger detectors (RetinaFace, SCRFD, ...) whose weights file
comes from their own config field, set through `prepare.face_detector_options`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from bench.errors import BenchError
from bench.hookspecs import hookimpl

Box = tuple[int, int, int, int]  # (x0, y0, x1, y1) in pixels, x1/y1 exclusive


@dataclass
class FaceDetectorConfig:
    """Options of a face detector; subclasses add theirs (e.g. a weights file)."""


class FaceDetector(ABC):
    """Finds faces in an RGB frame. Constructed once per worker process, from its `config_class`."""

    name: ClassVar[str]
    description: ClassVar[str] = ""
    config_class: ClassVar[type[FaceDetectorConfig]] = FaceDetectorConfig

    def __init__(self, cfg: FaceDetectorConfig) -> None:
        self.cfg = cfg

    @abstractmethod
    def detect(self, frame: np.ndarray) -> list[Box]:
        """(H, W, 3) uint8 RGB -> face boxes (x0, y0, x1, y1) in pixels."""


@dataclass
class HaarConfig(FaceDetectorConfig):
    cascade: str = "haarcascade_frontalface_default.xml"  # a file in cv2.data.haarcascades, or a path
    scale_factor: float = 1.1
    min_neighbors: int = 5  # higher = fewer false positives, more missed faces
    min_size: int = 24  # smallest face side, in pixels of the (downscaled) detection image
    # Frames are downscaled to this longer side before detection: the cascade's cost grows with the pixel count,
    # and faces in forgery datasets are large (FF++/DFDC faces are >100 px in 480p-1080p frames).
    max_side: int = 640


class HaarFaceDetector(FaceDetector):
    """OpenCV's frontal-face Haar cascade (Viola & Jones, CVPR 2001)."""

    name = "haar"
    description = "OpenCV Haar cascade, frontal faces (bundled with opencv-python-headless; no weights to download)"
    config_class = HaarConfig

    def __init__(self, cfg: HaarConfig) -> None:
        import cv2  # imported here, not at the top: this module is loaded by every `bench` command

        super().__init__(cfg)
        path = Path(cfg.cascade)
        if not path.is_file():
            path = Path(cv2.data.haarcascades) / cfg.cascade
        self._cascade = cv2.CascadeClassifier(str(path))
        if self._cascade.empty():
            raise BenchError(f"cannot load the Haar cascade {cfg.cascade!r} (looked in {cv2.data.haarcascades})",
                             key="prepare.face_detector_options.cascade")

    def detect(self, frame: np.ndarray) -> list[Box]:
        import cv2

        h, w = frame.shape[:2]
        scale = min(1.0, self.cfg.max_side / max(h, w))
        gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
        if scale < 1.0:
            gray = cv2.resize(gray, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
        found = self._cascade.detectMultiScale(gray, scaleFactor=self.cfg.scale_factor, minNeighbors=self.cfg.min_neighbors,
                                               minSize=(self.cfg.min_size, self.cfg.min_size))
        return [(round(x / scale), round(y / scale), round((x + bw) / scale), round((y + bh) / scale))
                for x, y, bw, bh in np.asarray(found).reshape(-1, 4).tolist()]


def largest(boxes: list[Box]) -> Box | None:
    return max(boxes, key=lambda b: (b[2] - b[0]) * (b[3] - b[1]), default=None)


def crop_box(face: Box, margin: float, width: int, height: int) -> Box:
    """The square around `face`, `margin` times its longer side, in frame pixels.

    The square is shifted to lie inside the frame when it fits, rather than padded: padding would add black
    borders that follow face position, a cue a detector could latch onto. It extends past the frame (and is
    padded by `square_crop`) only when it is larger than the frame itself.
    """
    x0, y0, x1, y1 = face
    side = max(1, round(max(x1 - x0, y1 - y0) * margin))
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    left, top = round(cx - side / 2), round(cy - side / 2)
    if side <= width:
        left = min(max(left, 0), width - side)
    if side <= height:
        top = min(max(top, 0), height - side)
    return left, top, left + side, top + side


def square_crop(frame: np.ndarray, box: Box, size: int) -> np.ndarray:
    """Pixels of `box` (padded with black where it leaves the frame), resized to (size, size, 3)."""
    import cv2

    h, w = frame.shape[:2]
    x0, y0, x1, y1 = box
    out = np.zeros((y1 - y0, x1 - x0, 3), np.uint8)
    sx0, sy0, sx1, sy1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    out[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = frame[sy0:sy1, sx0:sx1]
    interp = cv2.INTER_AREA if out.shape[0] > size else cv2.INTER_CUBIC  # AREA avoids aliasing when shrinking
    return cv2.resize(out, (size, size), interpolation=interp)


def build_face_detector(cls: type[FaceDetector], options: dict[str, Any]) -> FaceDetector:
    """Instantiate `cls` with its typed config; an unknown option fails with its key."""
    from omegaconf import OmegaConf
    from omegaconf.errors import ConfigKeyError

    try:
        cfg = OmegaConf.merge(OmegaConf.structured(cls.config_class), options)
    except ConfigKeyError as err:
        raise BenchError(f"face detector {cls.name!r} has no option {err.key!r}; it has "
                         f"{sorted(OmegaConf.structured(cls.config_class).keys())}",
                         key=f"prepare.face_detector_options.{err.key}") from None
    return cls(OmegaConf.to_object(cfg))


@hookimpl
def bench_register_face_detectors(register) -> None:
    register("haar", "bench.faces:HaarFaceDetector", HaarFaceDetector.description)

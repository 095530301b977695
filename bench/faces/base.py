"""The face-detector interface, the `Face` record it returns, and the crop geometry shared by every detector."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from bench.errors import BenchError

Box = tuple[int, int, int, int]  # (x0, y0, x1, y1) in pixels, x1/y1 exclusive


@dataclass(frozen=True)
class Face:
    """One detected face. `score` and `evidence` are on a common [0, 1] scale so that faces of one detector can be
    ranked: a false positive on clothing or a coin can out-size the face, but rarely has its confidence *and*
    eyes."""

    box: Box
    score: float  # detector confidence mapped to [0, 1] (Haar: sigmoid of the last stage's weight; MTCNN: O-Net's p)
    evidence: float = 0.0  # facial evidence inside the box in [0, 1] (Haar: eyes found / 2; MTCNN: landmarks inside)

    @property
    def quality(self) -> float:
        return self.score + self.evidence

    @property
    def side(self) -> float:
        return float(max(self.box[2] - self.box[0], self.box[3] - self.box[1]))

    def moved(self, scale: float, dx: float, dy: float) -> Face:
        """The face in another image's pixels: `box / scale + (dx, dy)` (a detection on a resized region mapped back)."""
        x0, y0, x1, y1 = self.box
        box = (round(x0 / scale + dx), round(y0 / scale + dy), round(x1 / scale + dx), round(y1 / scale + dy))
        return Face(box, self.score, self.evidence)


@dataclass
class FaceDetectorConfig:
    """Options of a face detector; subclasses add theirs (e.g. a weights folder)."""


class FaceDetector(ABC):
    """Finds faces in RGB images. Constructed once per worker process, from its `config_class`."""

    name: ClassVar[str]
    description: ClassVar[str] = ""
    config_class: ClassVar[type[FaceDetectorConfig]] = FaceDetectorConfig

    def __init__(self, cfg: FaceDetectorConfig) -> None:
        self.cfg = cfg

    @abstractmethod
    def detect(self, image: np.ndarray) -> list[Face]:
        """(H, W, 3) uint8 RGB -> faces in its pixels. Any size: the tracker also calls it on small regions."""

    def detect_batch(self, images: Sequence[np.ndarray]) -> list[list[Face]]:
        """Faces of several images; CNN detectors override this to run them as one batch."""
        return [self.detect(img) for img in images]

    def detect_sized(self, image: np.ndarray, min_side: float, max_side: float, *, lone_evidence: bool = True) -> list[Face]:
        """Faces whose longer side lies in [min_side, max_side] pixels of `image`: the tracker knows the size of the
        face it follows. Detectors whose cost grows with the range of sizes searched (a cascade's scales, a CNN's
        pyramid levels) override this to search only that range. `lone_evidence=False`: the caller takes a lone
        face as it is (evidence only ranks faces), so a detector may leave its `evidence` at 0 when it finds one
        face. Default: `detect`, filtered."""
        return [f for f in self.detect(image) if min_side <= f.side <= max_side]


def largest(faces: Sequence[Face]) -> Face | None:
    return max(faces, key=lambda f: (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]), default=None)


def iou(a: Box, b: Box) -> float:
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


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
    """Pixels of `box` (padded with black where it leaves the frame), resized to (size, size, C)."""
    import cv2

    h, w = frame.shape[:2]
    x0, y0, x1, y1 = box
    out = np.zeros((y1 - y0, x1 - x0, *frame.shape[2:]), np.uint8)
    sx0, sy0, sx1, sy1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if sx1 > sx0 and sy1 > sy0:
        out[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = frame[sy0:sy1, sx0:sx1]
    interp = cv2.INTER_AREA if out.shape[0] > size else cv2.INTER_CUBIC  # AREA avoids aliasing when shrinking
    return cv2.resize(out, (size, size), interpolation=interp)


def build_face_detector(cls: type[FaceDetector], options: dict[str, Any]) -> FaceDetector:
    """Instantiate `cls` with its typed config; an unknown option fails with its key."""
    from omegaconf import OmegaConf
    from omegaconf.errors import ConfigKeyError, ValidationError

    try:
        cfg = OmegaConf.merge(OmegaConf.structured(cls.config_class), options)
    except ConfigKeyError as err:
        raise BenchError(f"face detector {cls.name!r} has no option {err.key!r}; it has "
                         f"{sorted(OmegaConf.structured(cls.config_class).keys())}",
                         key=f"prepare.face_detector_options.{err.key}") from None
    except ValidationError as err:
        raise BenchError(f"face detector {cls.name!r}: option {err.key!r}: {err.msg}",
                         key=f"prepare.face_detector_options.{err.key}") from None
    return cls(OmegaConf.to_object(cfg))

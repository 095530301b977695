"""OpenCV's frontal-face Haar cascade (Viola & Jones, CVPR 2001), with a confidence and an eye check per box.

The cascade alone cannot rank its boxes, and on real footage it also fires on clothing, coins or posters, often
larger than the face. So every box gets:
- a confidence: the weight of the cascade's last stage (`detectMultiScale3`, `outputRejectLevels`), squashed to
  [0, 1] by a logistic centred at `weight_center` (large faces score 5-8 on it, small ones ~4, most false positives
  below 4);
- facial evidence: how many eyes the eye cascade finds in the box's upper part (0, 1 or 2, as 0, 0.5, 1). The eye
  cascade's window is 20 px, so that region is resized to `eye_face_px` wide first: small faces still get checked.
  64 px rather than a larger size: on benchmarks/face_scenes.py's frames it found both eyes of every face and none
  on any distractor (120 px: one "eye" on some coins), at a quarter of the cost (~1 ms per box).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.errors import BenchError
from bench.faces.base import Face, FaceDetector, FaceDetectorConfig


@dataclass
class HaarConfig(FaceDetectorConfig):
    cascade: str = "haarcascade_frontalface_default.xml"  # a file in cv2.data.haarcascades, or a path
    scale_factor: float = 1.1
    min_neighbors: int = 5  # higher = fewer false positives, more missed faces
    min_size: int = 24  # smallest face side, in pixels of the (downscaled) detection image
    # Frames are downscaled to this longer side before detection: the cascade's cost grows with the pixel count,
    # and faces in forgery datasets are large (FF++/DFDC faces are >100 px in 480p-1080p frames).
    max_side: int = 640
    weight_center: float = 3.0  # last-stage weight that maps to confidence 0.5
    eye_cascade: str | None = "haarcascade_eye.xml"  # null = no eye check (evidence 0 for every box)
    eye_face_px: int = 64  # the box is resized to this width before looking for eyes (see the docstring)


def _cascade(name: str, key: str):
    import cv2

    path = Path(name)
    if not path.is_file():
        path = Path(cv2.data.haarcascades) / name
    cascade = cv2.CascadeClassifier(str(path))
    if cascade.empty():
        raise BenchError(f"cannot load the Haar cascade {name!r} (looked in {cv2.data.haarcascades})", key=key)
    return cascade


class HaarFaceDetector(FaceDetector):
    """OpenCV's frontal-face Haar cascade, ranked by last-stage weight and eyes found."""

    name = "haar"
    description = "OpenCV Haar cascade + eye check (bundled with opencv-python-headless; no weights to download)"
    config_class = HaarConfig

    def __init__(self, cfg: HaarConfig) -> None:
        super().__init__(cfg)
        self.cfg: HaarConfig = cfg
        self._faces = _cascade(cfg.cascade, "prepare.face_detector_options.cascade")
        self._eyes = _cascade(cfg.eye_cascade, "prepare.face_detector_options.eye_cascade") if cfg.eye_cascade else None

    def detect(self, image: np.ndarray) -> list[Face]:
        return self._detect(image, self.cfg.min_size, None)

    def detect_sized(self, image: np.ndarray, min_side: float, max_side: float, *, lone_evidence: bool = True) -> list[Face]:
        """Only the cascade's scales between the two sides (a region search scans ~4 scales instead of ~15), and the
        eye check only where there is more than one face to rank, unless `lone_evidence`."""
        return self._detect(image, min_side, max_side, lone_evidence)

    def _detect(self, image: np.ndarray, min_side: float, max_side: float | None, lone_evidence: bool = True) -> list[Face]:
        import cv2

        h, w = image.shape[:2]
        gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        scale = min(1.0, self.cfg.max_side / max(h, w))
        small = gray if scale >= 1.0 else cv2.resize(gray, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
        lo = max(self.cfg.min_size, round(min_side * scale))  # sides in pixels of `small`
        hi = round(max_side * scale) if max_side is not None else 0  # 0 = no upper bound
        if hi and hi < lo:
            return []
        boxes, _, weights = self._faces.detectMultiScale3(
            small, scaleFactor=self.cfg.scale_factor, minNeighbors=self.cfg.min_neighbors,
            minSize=(lo, lo), maxSize=(hi, hi), outputRejectLevels=True)
        found = []
        for (x, y, bw, bh), weight in zip(np.asarray(boxes).reshape(-1, 4).tolist(), np.asarray(weights).ravel().tolist()):
            box = (round(x / scale), round(y / scale), round((x + bw) / scale), round((y + bh) / scale))
            if max_side is not None and not min_side <= max(box[2] - box[0], box[3] - box[1]) <= max_side:
                continue  # a group of windows can average to a box a little outside the range
            found.append((box, 1.0 / (1.0 + math.exp(-(weight - self.cfg.weight_center)))))
        check_eyes = lone_evidence or len(found) > 1
        return [Face(box, score, self._eye_evidence(gray, box) if check_eyes else 0.0) for box, score in found]

    def _eye_evidence(self, gray: np.ndarray, box: tuple[int, int, int, int]) -> float:
        """Eyes found in the upper 60% of the box (full-resolution pixels), as 0, 0.5 or 1."""
        import cv2

        if self._eyes is None:
            return 0.0
        x0, y0, x1, y1 = max(box[0], 0), max(box[1], 0), box[2], box[1] + round(0.6 * (box[3] - box[1]))
        region = gray[y0:y1, x0:x1]
        if region.size == 0:
            return 0.0
        f = self.cfg.eye_face_px / region.shape[1]
        region = cv2.resize(region, (self.cfg.eye_face_px, max(1, round(region.shape[0] * f))),
                            interpolation=cv2.INTER_AREA if f < 1 else cv2.INTER_LINEAR)
        side = self.cfg.eye_face_px
        eyes = self._eyes.detectMultiScale(region, scaleFactor=1.1, minNeighbors=3, minSize=(side // 8, side // 8),
                                           maxSize=(side // 2, side // 2))
        return min(len(np.asarray(eyes).reshape(-1, 4)), 2) / 2

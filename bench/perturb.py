"""Image perturbations for robustness tests (`bench evaluate --perturb jpeg=90,70,50 blur=1,2 resize=0.5`).

Each applies to the decoded (H, W, 3) uint8 frame before the detector's own transform, to real and fake frames
alike, deterministically (no randomness: every run sees the same perturbed pixels).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from bench.errors import BenchError


def _jpeg(image: np.ndarray, quality: float) -> np.ndarray:
    import cv2

    ok, buf = cv2.imencode(".jpg", image[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(quality)])  # RGB -> BGR for cv2
    return np.ascontiguousarray(cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1])


def _blur(image: np.ndarray, sigma: float) -> np.ndarray:
    import cv2

    return cv2.GaussianBlur(image, (0, 0), sigmaX=float(sigma))  # kernel size from sigma (about 6 sigma + 1)


def _resize(image: np.ndarray, factor: float) -> np.ndarray:
    """Down-scale by `factor` and back to the original size: the detail a lower-resolution source would lose."""
    import cv2

    h, w = image.shape[:2]
    small = cv2.resize(image, (max(1, round(w * factor)), max(1, round(h * factor))), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


# kind -> (function, check on the level, what the level means)
KINDS: dict[str, tuple[Callable[[np.ndarray, float], np.ndarray], Callable[[float], bool], str]] = {
    "jpeg": (_jpeg, lambda q: 1 <= q <= 100 and q == int(q), "JPEG quality, an integer in 1..100"),
    "blur": (_blur, lambda s: s > 0, "Gaussian sigma in pixels, > 0"),
    "resize": (_resize, lambda f: 0 < f < 1, "scale factor in (0, 1), then back to the original size"),
}


@dataclass(frozen=True)
class Perturbation:
    kind: str
    level: float

    @property
    def name(self) -> str:
        """The `bench.perturbation` tag value, e.g. `jpeg=90`, `resize=0.5`."""
        return f"{self.kind}={self.level:g}"

    def __call__(self, image: np.ndarray) -> np.ndarray:
        return KINDS[self.kind][0](image, self.level)


def parse(specs: list[str]) -> list[Perturbation]:
    """["jpeg=90,70", "blur=1"] -> [jpeg=90, jpeg=70, blur=1], with one-line errors naming the bad item."""
    out = []
    for spec in specs:
        kind, sep, levels = spec.partition("=")
        if kind not in KINDS or not sep or not levels:
            raise BenchError(f"--perturb {spec!r}: expected KIND=LEVEL[,LEVEL...] with KIND one of {sorted(KINDS)}",
                             key="--perturb")
        for text in levels.split(","):
            try:
                level = float(text)
            except ValueError:
                level = float("nan")
            if not KINDS[kind][1](level):
                raise BenchError(f"--perturb {kind}={text}: the level is the {KINDS[kind][2]}", key="--perturb")
            out.append(Perturbation(kind, level))
    return out

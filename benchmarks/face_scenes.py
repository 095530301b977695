"""Frames with a real face and distractors that fool a face detector, for the face-selection tests and benchmarks.

The face is scikit-image's astronaut photograph (Eileen Collins; public domain). The distractors were found by
experiment: OpenCV's frontal-face cascade fires on the profile heads of scikit-image's `coins` photograph, and at
`coin_scale` 1.6 with the face at `face_scale` 0.6 several of those false positives are *larger* than the face
(80 px against 60 px), so "the largest face" crops a coin — the failure seen on real DFD footage (a shirt).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Hand-annotated on skimage.data.astronaut() (512 x 512): the face from brow to chin, and eye/mouth centres.
ASTRONAUT_FACE = (180, 75, 272, 172)
ASTRONAUT_LANDMARKS = ((202, 100), (247, 102), (222, 145))
PORTRAIT = (0, 100, 300, 420)  # (y0, x0, y1, x1) of the photo kept as the portrait: head and shoulders


@dataclass
class Scene:
    frame: np.ndarray  # (H, W, 3) uint8 RGB
    face: tuple[int, int, int, int]  # the true face box in frame pixels
    landmarks: list[tuple[int, int]]  # eyes and mouth in frame pixels


def _background(height: int, width: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = np.linspace(70, 120, width, dtype=np.float32)[None, :, None] + np.zeros((height, 1, 3), np.float32)
    return np.clip(base + rng.normal(0, 4, (height, width, 3)), 0, 255).astype(np.uint8)


def scene(face_xy: tuple[int, int] = (20, 20), face_scale: float = 0.6, distractors: bool = True,
          coin_scale: float = 1.6, size: tuple[int, int] = (360, 640), seed: int = 0) -> Scene:
    """A frame of `size` (H, W): the astronaut's portrait at `face_xy` scaled by `face_scale`, the coins to its right."""
    import cv2
    from skimage import data

    h, w = size
    frame = _background(h, w, seed)
    y0, x0, y1, x1 = PORTRAIT
    portrait = cv2.resize(data.astronaut()[y0:y1, x0:x1], None, fx=face_scale, fy=face_scale, interpolation=cv2.INTER_AREA)
    px, py = face_xy
    ph, pw = min(portrait.shape[0], h - py), min(portrait.shape[1], w - px)
    frame[py:py + ph, px:px + pw] = portrait[:ph, :pw]
    if distractors:
        coins = cv2.cvtColor(data.coins(), cv2.COLOR_GRAY2RGB)
        coins = cv2.resize(coins, None, fx=coin_scale, fy=coin_scale, interpolation=cv2.INTER_LINEAR)
        cx = px + portrait.shape[1] + 10
        ch, cw = min(h, coins.shape[0]), max(0, min(w - cx, coins.shape[1]))
        frame[:ch, cx:cx + cw] = coins[:ch, :cw]

    def to_frame(x: float, y: float) -> tuple[int, int]:
        return round(px + (x - x0) * face_scale), round(py + (y - y0) * face_scale)

    fx0, fy0 = to_frame(*ASTRONAUT_FACE[:2])
    fx1, fy1 = to_frame(*ASTRONAUT_FACE[2:])
    return Scene(frame, (fx0, fy0, fx1, fy1), [to_frame(x, y) for x, y in ASTRONAUT_LANDMARKS])


def drifting(n: int, step: tuple[int, int] = (2, 1), **kw) -> list[Scene]:
    """`n` scenes, the portrait moving `step` pixels per frame (a talking head), the distractors static."""
    x, y = kw.pop("face_xy", (20, 20))
    return [scene(face_xy=(x + i * step[0], y + i * step[1]), seed=i, **kw) for i in range(n)]


def contains(box: tuple[int, int, int, int], points: list[tuple[int, int]]) -> bool:
    x0, y0, x1, y1 = box
    return all(x0 <= x < x1 and y0 <= y < y1 for x, y in points)

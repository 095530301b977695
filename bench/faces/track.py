"""One face per video: a track built from a few full-frame detections, followed in small regions between them.

Why: "the largest face of each frame" picks a false positive whenever one is larger than the face (on real DFD
footage a shirt won every frame), and detecting on every full frame dominates preparation time. Here:

1. **Anchors.** Every `detect_every`-th sampled frame (and the last) is searched in full. The track is the chain
   of anchor candidates with the highest summed quality (confidence + facial evidence), each box continuing the
   previous one (its centre moved less than its side, its size changed less than `LINK_SCALE`x). A false positive
   must beat the face on confidence *and* eyes *and* persistence to be chosen.
2. **Following.** Every other frame is searched only in a region around the track's predicted box (interpolated
   between the last chosen box and the next anchor), downscaled so the face is ~`ROI_FACE_PX` pixels: a few
   milliseconds instead of a full-frame pass. A frame where the region holds no continuous face is searched in full
   once more; a face that is there but jumped elsewhere, or changed size, is rejected (`off_track`), never cropped.
3. **Report.** A video is `unstable` when frames were rejected or its track was missing on more than half of the
   anchors, and `low_confidence` when its median confidence is below `min_confidence`; `bench prepare` lists them.

`hints` (one box or None per frame, e.g. the bounding box of a manipulation mask) restrict the choice to faces
overlapping them, so a bystander's pristine face is not cropped for a fake video.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from bench.faces.base import Box, Face, FaceDetector, largest
from bench.manifest import NO_FACE, OFF_TRACK, OK

LINK_SHIFT, LINK_SCALE = 1.0, 1.6  # between anchors (seconds apart): centre shift / side, size ratio
FOLLOW_SHIFT, FOLLOW_SCALE = 0.5, 1.5  # from the predicted box to the chosen one
ROI_FACTOR = 2.5  # the search region around a predicted box, times its side
ROI_FACE_PX = 80  # the region is downscaled so the predicted face is this wide
HINT_OVERLAP = 0.3  # a face must have this fraction of its area inside the hint box
SELECTIONS = ("track", "best", "largest")


@dataclass
class FaceChoice:
    """The face kept for one sampled frame (None unless `status` is ok)."""

    face: Face | None
    candidates: int  # faces the search that decided this frame returned (full frame or region)
    source: str  # "anchor" (full-frame search), "tracked" (region search), "redetected" (full search after a miss)
    status: str  # OK | NO_FACE | OFF_TRACK


@dataclass
class VideoFaces:
    choices: list[FaceChoice]
    flags: list[str] = field(default_factory=list)  # "unstable", "low_confidence"


def _centre(b: Box) -> tuple[float, float]:
    return (b[0] + b[2]) / 2, (b[1] + b[3]) / 2


def _side(b: Box) -> float:
    return float(max(b[2] - b[0], b[3] - b[1], 1))


def continuous(prev: Box, box: Box, shift: float, scale: float) -> bool:
    (px, py), (bx, by) = _centre(prev), _centre(box)
    ratio = _side(box) / _side(prev)
    return np.hypot(bx - px, by - py) <= shift * _side(prev) and 1 / scale <= ratio <= scale


def _overlaps(face: Face, hint: Box | None) -> bool:
    if hint is None:
        return True
    x0, y0, x1, y1 = face.box
    ix = max(0, min(x1, hint[2]) - max(x0, hint[0]))
    iy = max(0, min(y1, hint[3]) - max(y0, hint[1]))
    return ix * iy >= HINT_OVERLAP * max(1, (x1 - x0) * (y1 - y0))


def _interpolate(a: Box, b: Box, t: float) -> Box:
    return tuple(round(u + (v - u) * t) for u, v in zip(a, b))  # type: ignore[return-value]


def _search_region(frame: np.ndarray, predicted: Box, detector: FaceDetector) -> list[Face]:
    """Faces in the region around `predicted`, in frame pixels."""
    import cv2

    h, w = frame.shape[:2]
    side = _side(predicted) * ROI_FACTOR
    cx, cy = _centre(predicted)
    x0, y0 = max(0, round(cx - side / 2)), max(0, round(cy - side / 2))
    x1, y1 = min(w, round(cx + side / 2)), min(h, round(cy + side / 2))
    if x1 - x0 < 8 or y1 - y0 < 8:
        return []
    region = frame[y0:y1, x0:x1]
    scale = min(1.0, ROI_FACE_PX / _side(predicted))
    if scale < 1.0:
        region = cv2.resize(region, (max(1, round((x1 - x0) * scale)), max(1, round((y1 - y0) * scale))),
                            interpolation=cv2.INTER_AREA)
    return [f.moved(scale, x0, y0) for f in detector.detect(np.ascontiguousarray(region))]


def best_track(anchors: list[int], found: dict[int, list[Face]]) -> dict[int, Face]:
    """The chain of anchor faces with the highest summed quality, each continuing the previous one (dynamic
    programming over anchors; a chain may skip anchors where the face was missed)."""
    nodes = [(a, f) for a in anchors for f in found[a]]
    best: list[float] = []
    back: list[int | None] = []
    for j, (a, face) in enumerate(nodes):
        preds = [i for i, (b, g) in enumerate(nodes[:j]) if b < a and continuous(g.box, face.box, LINK_SHIFT, LINK_SCALE)]
        i = max(preds, key=lambda i: best[i], default=None)
        best.append(face.quality + (best[i] if i is not None else 0.0))
        back.append(i)
    if not nodes:
        return {}
    j: int | None = max(range(len(nodes)), key=lambda j: (best[j], nodes[j][1].side))
    track = {}
    while j is not None:
        track[nodes[j][0]] = nodes[j][1]
        j = back[j]
    return track


def select_faces(frames: Sequence[np.ndarray | None], detector: FaceDetector, *, selection: str = "track",
                 detect_every: int = 8, min_confidence: float = 0.5,
                 hints: Sequence[Box | None] | None = None) -> VideoFaces:
    """One `FaceChoice` per frame (None frames = not decoded: `no_face` placeholders the caller overrides)."""
    hints = list(hints) if hints is not None else [None] * len(frames)
    present = [i for i, f in enumerate(frames) if f is not None]
    if selection != "track" or not present:
        found = dict(zip(present, detector.detect_batch([frames[i] for i in present])))
        pick = largest if selection == "largest" else (lambda fs: max(fs, key=lambda f: f.quality, default=None))
        choices = []
        for i in range(len(frames)):
            faces = [f for f in found.get(i, []) if _overlaps(f, hints[i])]
            face = pick(faces)
            choices.append(FaceChoice(face, len(found.get(i, [])), "anchor", OK if face else NO_FACE))
        return VideoFaces(choices, _flags(choices, 0, 0.0, min_confidence))

    anchors = sorted({*present[::max(1, detect_every)], present[-1]})
    found = dict(zip(anchors, detector.detect_batch([frames[a] for a in anchors])))
    eligible = {a: [f for f in fs if _overlaps(f, hints[a])] for a, fs in found.items()}
    track = best_track(anchors, eligible)
    if not track:
        choices = [FaceChoice(None, len(found.get(i, [])), "anchor", NO_FACE) for i in range(len(frames))]
        return VideoFaces(choices, _flags(choices, 0, 0.0, min_confidence))

    choices: list[FaceChoice | None] = [None] * len(frames)
    rejected = 0
    first = min(track)
    # Forward from the track's first anchor, then backward to the frames before it (each predicted from its
    # neighbour already chosen, so a face that entered the track late is still followed to the start).
    for order in (range(first, len(frames)), range(first - 1, -1, -1)):
        last: tuple[int, Box] | None = None
        for i in order:
            frame = frames[i]
            if frame is None:
                choices[i] = FaceChoice(None, 0, "", NO_FACE)
                continue
            if i in track:
                choices[i] = FaceChoice(track[i], len(found[i]), "anchor", OK)
                last = (i, track[i].box)
                continue
            predicted = _predict(i, last, track) if i > first else (last[1] if last else track[first].box)
            choice = _follow(frame, predicted, detector, hints[i], found.get(i))
            rejected += choice.status == OFF_TRACK
            choices[i] = choice
            if choice.face is not None:
                last = (i, choice.face.box)
    missing_anchors = sum(a not in track for a in anchors)
    done = [c for c in choices if c is not None]
    return VideoFaces(done, _flags(done, rejected, missing_anchors / len(anchors), min_confidence))


def _predict(i: int, last: tuple[int, Box] | None, track: dict[int, Face]) -> Box:
    """The track's box at frame `i`: interpolated between the last chosen box and the next anchor of the track."""
    nxt = min((a for a in track if a > i), default=None)
    if last is None:
        return track[nxt].box if nxt is not None else track[max(track)].box
    if nxt is None:
        return last[1]
    return _interpolate(last[1], track[nxt].box, (i - last[0]) / (nxt - last[0]))


def _follow(frame: np.ndarray, predicted: Box, detector: FaceDetector, hint: Box | None,
            full: list[Face] | None) -> FaceChoice:
    """Search near the predicted box; on a miss, search the full frame once (unless that was done already)."""
    def nearest(faces: list[Face]) -> Face | None:
        ok = [f for f in faces if _overlaps(f, hint) and continuous(predicted, f.box, FOLLOW_SHIFT, FOLLOW_SCALE)]
        return max(ok, key=lambda f: (f.quality, -np.hypot(*np.subtract(_centre(f.box), _centre(predicted)))), default=None)

    near = _search_region(frame, predicted, detector)
    if (face := nearest(near)) is not None:
        return FaceChoice(face, len(near), "tracked", OK)
    full = detector.detect(frame) if full is None else full
    if (face := nearest(full)) is not None:
        return FaceChoice(face, len(full), "redetected", OK)
    return FaceChoice(None, len(full), "redetected", OFF_TRACK if full else NO_FACE)


def _flags(choices: list[FaceChoice], rejected: int, missing_anchor_share: float, min_confidence: float) -> list[str]:
    flags = []
    if rejected or missing_anchor_share > 0.5:
        flags.append("unstable")
    scores = [c.face.score for c in choices if c.face is not None]
    if scores and float(np.median(scores)) < min_confidence:
        flags.append("low_confidence")
    return flags

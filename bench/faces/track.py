"""One face per video: a track built from a few full-frame detections, followed in small regions between them.

Why: "the largest face of each frame" picks a false positive whenever one is larger than the face (on real DFD
footage a shirt won every frame), and detecting on every full frame dominates preparation time. Here:

1. **Anchors: which face.** Every `detect_every`-th sampled frame (and the last) is searched in full; while none
   holds a face, the frames halfway between them too, and so on. The first anchor with a face is searched for faces
   of every size, later ones only for faces that could continue its contenders (see `_search_anchors`). The track
   is the chain of anchor faces with the highest summed quality (confidence + facial evidence), each continuing
   the previous one (centre moved less than LINK_SHIFT/LINK_SPEED sides, size changed less than LINK_SCALE x).
   A false positive must beat the face on confidence *and* eyes *and* persistence to be chosen.
2. **Following: its box in every frame.** From the track's best face, forward and then backward, each frame is
   searched only near the previous frame's box: a region `ROI_FACTOR` times its side, downscaled so the face is
   ~`ROI_FACE_PX` px, for faces within `ROI_SCALE`x its size (a few ms instead of ~80 for a full pass at 720p).
   An anchor takes its full search's face that continues the previous box. A frame where no continuous face is
   found is searched in full once more; a face that is there but jumped elsewhere or changed size is rejected
   (`off_track`), never cropped. Following, rather than joining anchors seconds apart, keeps a moving face: a face
   that moved more than its side between anchors broke the chain, and a chain could join a face and a coin.
3. **Report.** A video is `unstable` when frames were rejected or the followed face was not among the full
   search's faces on more than half of the anchors, and `low_confidence` when its median confidence is below
   `min_confidence`; `bench prepare` lists them.

`hints` (one box or None per frame, e.g. the bounding box of a manipulation mask) restrict the choice to faces
overlapping them, so a bystander's pristine face is not cropped for a fake video.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from bench.faces.base import Box, Face, FaceDetector, largest
from bench.manifest import NO_FACE, OFF_TRACK, OK

# Between two anchors (seconds apart): centre shift / side, at least 1 and LINK_SPEED per sampled frame between them
# (a moving face must still link: at a fixed 1 side, a head crossing the frame lost to a distractor that moves with
# it), and size ratio. Links only decide which face is followed; following checks continuity frame by frame.
LINK_SHIFT, LINK_SPEED, LINK_SCALE = 1.0, 0.2, 1.6
FOLLOW_SHIFT, FOLLOW_SCALE = 0.5, 1.3  # from the previous frame's box to this frame's
# The region search. Measured on 720p frames against a full-resolution search (benchmarks/prepare_speed.py):
# - ROI_FACTOR: a face whose centre moved up to 0.3 of its side since the previous sampled frame stays inside
#   (larger moves fall back to a full search); 1.6 costs ~2/3 of 2.0's windows.
# - ROI_FACE_PX: OpenCV's cascade steps 2 px below windows of 48 px and 1 px above, so a face drawn smaller than
#   that is located coarsely (box IoU with a full-resolution search, mean: 0.83 at 48 px, 0.94 at 64 px).
# - ROI_SCALE: 3 cascade scales instead of 5 at 1.25 (3.2 vs 4.2 ms), and as close to the full-resolution box;
#   a face that grew or shrank more since the previous sampled frame is found by the full search.
ROI_FACTOR = 1.6  # the search region around the previous box, times its side
ROI_FACE_PX = 64  # the region is downscaled so the previous face is this wide
ROI_SCALE = 1.15  # the region is searched for faces within this factor of the previous side
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


def _search_region(frame: np.ndarray, predicted: Box, detector: FaceDetector) -> list[Face]:
    """Faces near `predicted` and of about its size (within ROI_SCALE), in frame pixels."""
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
    face_px = _side(predicted) * scale  # the predicted face's side in the region's pixels
    faces = detector.detect_sized(np.ascontiguousarray(region), face_px / ROI_SCALE, face_px * ROI_SCALE,
                                  lone_evidence=False)
    return [f.moved(scale, x0, y0) for f in faces]


def best_track(anchors: list[int], found: dict[int, list[Face]]) -> dict[int, Face]:
    """The chain of anchor faces with the highest summed quality, each continuing the previous one (dynamic
    programming over anchors; a chain may skip anchors where the face was missed)."""
    nodes = [(a, f) for a in anchors for f in found[a]]
    best: list[float] = []
    back: list[int | None] = []
    for j, (a, face) in enumerate(nodes):
        preds = [i for i, (b, g) in enumerate(nodes[:j])
                 if b < a and continuous(g.box, face.box, max(LINK_SHIFT, LINK_SPEED * (a - b)), LINK_SCALE)]
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
                 detect_every: int = 32, min_confidence: float = 0.5,
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

    step = max(1, detect_every)
    found = _search_anchors(frames, sorted({*present[::step], present[-1]}), detector, hints)
    while step > 1 and not any(_overlaps(f, hints[a]) for a, fs in found.items() for f in fs):
        step //= 2  # no face on any anchor (turned away, a title card): search the frames between them too
        found.update(_search_anchors(frames, [i for i in present[::step] if i not in found], detector, hints))
    anchors = sorted(found)
    track = best_track(anchors, {a: [f for f in fs if _overlaps(f, hints[a])] for a, fs in found.items()})
    if not track:
        choices = [FaceChoice(None, len(found.get(i, [])), "anchor", NO_FACE) for i in range(len(frames))]
        return VideoFaces(choices, _flags(choices, 0, 0.0, min_confidence))

    # The track decides which face; following it frame by frame decides its box in every frame. Following starts
    # at the track's best face and runs forward, then backward; the other anchors' full searches serve as checks.
    start = max(track, key=lambda a: (track[a].quality, track[a].side))
    choices: list[FaceChoice] = [FaceChoice(None, 0, "", NO_FACE)] * len(frames)  # None frames keep this
    choices[start] = FaceChoice(track[start], len(found[start]), "anchor", OK)
    for order in (range(start + 1, len(frames)), range(start - 1, -1, -1)):
        last = track[start].box
        for i in order:
            if frames[i] is None:
                continue
            choices[i] = _follow(frames[i], last, detector, hints[i], found.get(i))
            if choices[i].face is not None:
                last = choices[i].face.box
    rejected = sum(c.status == OFF_TRACK for c in choices)
    missing_anchors = sum(choices[a].source != "anchor" for a in anchors)
    return VideoFaces(choices, _flags(choices, rejected, missing_anchors / len(anchors), min_confidence))


def _search_anchors(frames: Sequence[np.ndarray | None], anchors: list[int], detector: FaceDetector,
                    hints: Sequence[Box | None]) -> dict[int, list[Face]]:
    """Full-frame searches of the anchors. Until one holds a face, anchors are searched for faces of every size;
    after it, only for faces that could continue one of its contenders (down to the smallest one's side /
    LINK_SCALE): a cascade's smallest scales cost the most. Contenders are the faces within 1 (the range of facial
    evidence) of its best face's quality, so a small false positive without eyes does not keep every scale on."""
    found: dict[int, list[Face]] = {}
    smallest: float | None = None
    for a in anchors:
        frame = frames[a]
        assert frame is not None
        faces = detector.detect(frame) if smallest is None else detector.detect_sized(frame, smallest, float(max(frame.shape)))
        found[a] = faces
        good = [f for f in faces if _overlaps(f, hints[a])]
        if smallest is None and good:
            best = max(f.quality for f in good)
            smallest = min(f.side for f in good if f.quality >= best - 1) / LINK_SCALE
    return found


def _follow(frame: np.ndarray, predicted: Box, detector: FaceDetector, hint: Box | None,
            full: list[Face] | None) -> FaceChoice:
    """The face continuing `predicted`: from the frame's full search if it is an anchor, else from a search near the
    predicted box, else from a full search (once). A face found only elsewhere is `off_track`."""
    def nearest(faces: list[Face]) -> Face | None:
        ok = [f for f in faces if _overlaps(f, hint) and continuous(predicted, f.box, FOLLOW_SHIFT, FOLLOW_SCALE)]
        return max(ok, key=lambda f: (f.quality, -np.hypot(*np.subtract(_centre(f.box), _centre(predicted)))), default=None)

    if full is not None and (face := nearest(full)) is not None:
        return FaceChoice(face, len(full), "anchor", OK)
    near = _search_region(frame, predicted, detector)  # at an anchor too: its downscaled full search can miss a face
    if (face := nearest(near)) is not None:
        return FaceChoice(face, len(near), "tracked", OK)
    if full is None:
        full = detector.detect(frame)
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

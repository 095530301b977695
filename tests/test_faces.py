"""Face selection on real photographs with distractors larger than the face (bench/faces), through `bench prepare`."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bench.dataset import DatasetConfig
from bench.faces import crop_box, iou, largest
from bench.faces.haar import HaarConfig, HaarFaceDetector
from bench.faces.track import LINK_SCALE, select_faces
from bench.manifest import OFF_TRACK, OK, manifest_path
from bench.prepare import PrepareConfig, prepare_dataset
from bench.video import write_video
from face_scenes import contains, drifting, scene
from test_prepare import ClipFolder


@pytest.fixture(scope="module")
def haar() -> HaarFaceDetector:
    return HaarFaceDetector(HaarConfig())


def test_the_distractors_fool_largest_face_but_not_the_track(haar) -> None:
    scenes = drifting(5)
    faces = haar.detect(scenes[0].frame)
    big = largest(faces)
    assert len(faces) >= 3 and iou(big.box, scenes[0].face) == 0  # the cascade fires on coins larger than the face
    assert (big.box[2] - big.box[0]) > (scenes[0].face[2] - scenes[0].face[0])
    frames = [s.frame for s in scenes]
    assert all(c.face and iou(c.face.box, s.face) == 0 for c, s in
               zip(select_faces(frames, haar, selection="largest").choices, scenes))
    for selection in ("track", "best"):
        result = select_faces(frames, haar, selection=selection)
        assert not result.flags
        for choice, s in zip(result.choices, scenes):
            assert choice.status == OK and iou(choice.face.box, s.face) > 0.6
            h, w = s.frame.shape[:2]
            assert contains(crop_box(choice.face.box, 1.3, w, h), s.landmarks)  # the crop holds eyes and mouth


def test_tracking_follows_the_face_with_few_full_searches(haar) -> None:
    frames = [s.frame for s in drifting(13)]
    tracked = select_faces(frames, haar, detect_every=6).choices
    full = select_faces(frames, haar, detect_every=1).choices
    assert [c.source for c in tracked].count("anchor") == 3  # frames 0, 6, 12 searched in full; the rest nearby
    assert all(iou(a.face.box, b.face.box) >= 0.8 for a, b in zip(tracked, full))
    assert all(c.candidates == 1 for c in tracked if c.source == "tracked")  # the region holds the face only


def test_a_moving_face_is_followed_past_distractors_that_move_with_it(haar) -> None:
    # The face (~50 px) moves more than its side between anchors; the coins beside it move along, as a shirt would.
    scenes = drifting(17, step=(6, 3), face_scale=0.5)
    result = select_faces([s.frame for s in scenes], haar, detect_every=8)
    assert not result.flags and all(iou(c.face.box, s.face) > 0.6 for c, s in zip(result.choices, scenes))


def test_a_face_missing_on_every_anchor_is_found_between_them(haar) -> None:
    scenes = drifting(17, distractors=False)
    frames = [s.frame for s in scenes]
    for a in (0, 8, 16):  # the anchors show no face (a title card, a head turned away)
        frames[a] = np.full_like(frames[a], 90)
    result = select_faces(frames, haar, detect_every=8)
    statuses = [c.status for c in result.choices]
    assert [i for i, st in enumerate(statuses) if st != OK] == [0, 8, 16]
    assert all(iou(c.face.box, s.face) > 0.6 for c, s in zip(result.choices, scenes) if c.face)


class Spy(HaarFaceDetector):
    """Haar, recording each search: ("full" | "sized", smallest side searched, lone_evidence)."""

    def __init__(self) -> None:
        super().__init__(HaarConfig())
        self.calls: list[tuple[str, float, bool]] = []

    def detect(self, image):
        self.calls.append(("full", 0.0, True))
        return super().detect(image)

    def detect_sized(self, image, min_side, max_side, *, lone_evidence=True):
        self.calls.append(("sized", min_side, lone_evidence))
        return super().detect_sized(image, min_side, max_side, lone_evidence=lone_evidence)


def test_later_anchors_and_the_region_search_only_sizes_the_face_can_have() -> None:
    spy = Spy()
    scenes = drifting(17)
    result = select_faces([s.frame for s in scenes], spy, detect_every=8)
    assert [c.source for c in result.choices].count("anchor") == 3 and not result.flags
    side = result.choices[0].face.side
    full, anchors, regions = spy.calls[0], spy.calls[1:3], spy.calls[3:]
    assert full[0] == "full"  # the first anchor: faces of every size
    # later anchors: down to the contenders' smallest side / LINK_SCALE (the coins score too low to be contenders)
    assert all(kind == "sized" and lone for kind, _, lone in anchors)
    assert anchors[0][1] == pytest.approx(side / LINK_SCALE, rel=0.01)
    assert len(regions) == 14 and all(kind == "sized" and not lone for kind, _, lone in regions)


def test_haar_sized_search_finds_only_faces_of_that_size(haar) -> None:
    s = scene(distractors=False)
    face = max(haar.detect(s.frame), key=lambda f: f.quality)
    near = haar.detect_sized(s.frame, face.side / 1.15, face.side * 1.15)
    assert len(near) == 1 and iou(near[0].box, face.box) > 0.8 and near[0].evidence == 1.0
    assert haar.detect_sized(s.frame, face.side / 1.15, face.side * 1.15, lone_evidence=False)[0].evidence == 0.0
    assert haar.detect_sized(s.frame, face.side * 1.6, face.side * 3) == []


def test_a_face_that_jumps_off_the_track_is_not_cropped(haar) -> None:
    scenes = drifting(9, distractors=False)
    scenes[4] = scene(face_xy=(300, 40), distractors=False)  # another place: a cut, or another person
    result = select_faces([s.frame for s in scenes], haar, detect_every=8)
    statuses = [c.status for c in result.choices]
    assert statuses[4] == OFF_TRACK and statuses.count(OK) == 8 and result.flags == ["unstable"]
    assert result.choices[4].candidates >= 1  # the face was found, and rejected


def test_a_mask_hint_picks_the_manipulated_face(haar) -> None:
    left = scene(face_xy=(20, 20), distractors=False)
    right = scene(face_xy=(330, 20), distractors=False)
    frame = left.frame.copy()
    frame[:, 320:] = right.frame[:, 320:]  # two people; only the right one is manipulated
    hint = tuple(v + d for v, d in zip(right.face, (-10, -10, 10, 10)))
    result = select_faces([frame] * 3, haar, hints=[hint] * 3)
    assert all(iou(c.face.box, right.face) > 0.6 for c in result.choices)
    assert all(iou(c.face.box, left.face) > 0.6 for c in select_faces([frame] * 3, haar).choices)  # unguided: left is better


def test_prepare_records_the_choice_and_flags_unstable_videos(tmp_path) -> None:
    root = tmp_path / "data"
    (root / "test/real").mkdir(parents=True)
    write_video(root / "test/real/distracted.mp4", [s.frame for s in drifting(24)], gop=12)
    jumpy = drifting(24, distractors=False)
    jumpy[12] = scene(face_xy=(320, 60), distractors=False)
    write_video(root / "test/real/jumpy.mp4", [s.frame for s in jumpy], gop=12)
    adapter = ClipFolder(DatasetConfig(name="clips", root=str(root)), tmp_path / "cache" / "clips")
    summary = prepare_dataset(adapter, PrepareConfig(splits=["test"], frames={"test": 9}, workers=1, progress=False),
                              HaarFaceDetector)
    m = pd.read_parquet(manifest_path(adapter))
    distracted = m[m.video == "clips/real/distracted"]
    faces = drifting(24)
    for row in distracted.itertuples():
        assert row.status == OK and iou((row.face_x0, row.face_y0, row.face_x1, row.face_y1), faces[row.frame].face) > 0.6
        assert 0.5 < row.face_score <= 1 and row.face_candidates >= 1 and row.face_source in ("anchor", "tracked")
    assert distracted.face_candidates.max() >= 3 and (distracted.track_flags == "").all()
    jumpy_rows = m[m.video == "clips/real/jumpy"]
    assert set(jumpy_rows.track_flags) == {"unstable"} and (jumpy_rows.status == OFF_TRACK).sum() == 1
    assert summary.flagged == {"unstable": ["clips/real/jumpy"]}
    assert "1 unstable face track" in summary.render()
    assert not m.mask_guided.any()

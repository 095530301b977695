"""The MTCNN face detector option: random-init nets (always), the release weights (when installed)."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

from bench.errors import BenchError
from bench.faces import build_face_detector, iou
from bench.faces.mtcnn import MTCNNConfig, MTCNNFaceDetector, ONet, PNet, RNet
from bench.plugins import load_plugins
from face_scenes import drifting, scene

HAS_WEIGHTS = importlib.util.find_spec("facenet_pytorch") is not None


def test_nets_have_the_published_shapes() -> None:
    prob, reg = PNet()(torch.zeros(2, 3, 12, 12))
    assert prob.shape == (2, 1, 1) and reg.shape == (2, 4, 1, 1)  # a 12x12 window -> one cell
    prob, reg = RNet()(torch.zeros(3, 3, 24, 24))
    assert prob.shape == (3,) and reg.shape == (3, 4)
    prob, reg, marks = ONet()(torch.zeros(1, 3, 48, 48))
    assert prob.shape == (1,) and reg.shape == (1, 4) and marks.shape == (1, 10)
    assert sum(p.numel() for n in (PNet(), RNet(), ONet()) for p in n.parameters()) < 600_000


def test_random_init_runs_batched_and_registered() -> None:
    torch.manual_seed(0)
    detector = MTCNNFaceDetector(MTCNNConfig(weights="random", thresholds=(0.45, 0.45, 0.45), min_face=24))
    frames = [s.frame[:96, 40:136] for s in drifting(3, distractors=False)] + [np.zeros((100, 80, 3), np.uint8)]
    batched = detector.detect_batch(frames)
    assert len(batched) == 4
    assert sum(map(len, batched)) > 0  # random nets at low thresholds still pass boxes through all three stages
    for frame, faces in zip(frames, batched):
        alone = detector.detect(frame)  # a batch gives each frame's own result
        assert [f.box for f in faces] == [f.box for f in alone]
        assert np.allclose([f.score for f in faces], [f.score for f in alone], atol=1e-5)
        h, w = frame.shape[:2]
        for f in faces:
            assert 0 <= f.score <= 1 and 0 <= f.evidence <= 1 and f.box[2] > f.box[0] and f.box[3] > f.box[1]
    assert load_plugins(external=False).face_detectors.get("mtcnn") is MTCNNFaceDetector


def test_missing_weights_is_one_line_naming_the_option(tmp_path) -> None:
    with pytest.raises(BenchError, match="MTCNN weights not found") as err:
        build_face_detector(MTCNNFaceDetector, {"weights": str(tmp_path)})
    assert err.value.key == "prepare.face_detector_options.weights" and "\n" not in str(err.value)
    assert "pip install --no-deps facenet-pytorch" in str(err.value)


@pytest.mark.skipif(not HAS_WEIGHTS, reason="MTCNN release weights absent: pip install --no-deps facenet-pytorch")
def test_release_weights_find_the_face_and_not_the_coins() -> None:
    detector = build_face_detector(MTCNNFaceDetector, {})
    s = scene()
    faces = detector.detect(s.frame)
    assert len(faces) == 1 and iou(faces[0].box, s.face) > 0.6 and faces[0].score > 0.95 and faces[0].evidence == 1.0

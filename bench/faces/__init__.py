"""Face detectors used by `bench prepare` and `bench predict`, the choice of one face per video, and crop geometry.

- `base`: the `FaceDetector` interface and its `Face` record (box, confidence, facial evidence), crop geometry.
- `haar`: the default, OpenCV's Viola-Jones cascade (ships inside opencv-python-headless: offline, no weights).
- `mtcnn`: MTCNN (Zhang et al. 2016) in torch, batched, on GPU when there is one; weights from a local folder or an
  installed facenet-pytorch wheel.
- `track`: one face track per video from a few full-frame detections, followed between them in small regions.

Detectors register through `bench_register_face_detectors`, like any plugin's.
"""

from __future__ import annotations

from bench.faces.base import (Box, Face, FaceDetector, FaceDetectorConfig, build_face_detector, crop_box, iou, largest,
                              square_crop)
from bench.hookspecs import hookimpl

# Bumped when a change moves the face or box that the same settings choose (the tracker, a built-in detector's
# defaults), so that `bench prepare` writes new crops under another settings folder instead of mixing them with old
# ones. 2: the track is followed frame by frame from its best face; Haar's eye check at 64 px.
FACES_VERSION = 2

__all__ = ["FACES_VERSION", "Box", "Face", "FaceDetector", "FaceDetectorConfig", "build_face_detector", "crop_box", "iou",
           "largest", "square_crop"]


@hookimpl
def bench_register_face_detectors(register) -> None:
    register("haar", "bench.faces.haar:HaarFaceDetector",
             "OpenCV Haar cascade + eye check (bundled with opencv-python-headless; no weights to download)")
    register("mtcnn", "bench.faces.mtcnn:MTCNNFaceDetector",
             "MTCNN P/R/O-Nets in torch, batched, GPU when available (weights: a local folder or facenet-pytorch)")

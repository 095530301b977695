"""Face detectors compared on frames with distractors larger than the face.

    python benchmarks/face_prepare.py            # ~1 minute on one core
    python benchmarks/face_prepare.py --smoke    # seconds: checks that the script runs

Frames with scikit-image's astronaut and distractors that the Haar cascade fires on, larger than the face
(benchmarks/face_scenes.py), at several face sizes and positions. Per detector and face choice: recall
(the kept box overlaps the true face, IoU > 0.5), false-positive crops (the kept box misses the face entirely), and
frames/s per core (frames / CPU seconds of this process, one OpenCV / torch thread).

`bench prepare`'s speed per stage, before and after, is benchmarks/prepare_speed.py.
"""

from __future__ import annotations

import argparse
import time

import cv2
import torch

from bench.faces import iou
from bench.faces.haar import HaarConfig, HaarFaceDetector
from bench.faces.track import select_faces
from face_scenes import scene


def cpu(fn):
    t = time.process_time()
    out = fn()
    return out, time.process_time() - t


def detectors(smoke: bool) -> dict:
    found = {"haar": HaarFaceDetector(HaarConfig())}
    try:
        from bench.faces.mtcnn import MTCNNConfig, MTCNNFaceDetector

        found["mtcnn"] = MTCNNFaceDetector(MTCNNConfig())
    except Exception as err:  # weights absent: compare what is there
        print(f"(mtcnn skipped: {err})")
    return found


def compare_detectors(smoke: bool) -> None:
    placements = [(x, y, s) for s in ((0.5,) if smoke else (0.4, 0.5, 0.6, 0.8)) for x, y in ((20, 20), (40, 100))]
    scenes = [scene(face_xy=(x, y), face_scale=s, seed=i) for i, (x, y, s) in enumerate(placements)]
    print(f"\n## Face detectors on {len(scenes)} frames (640x360) with a face and larger distractors\n")
    print("| detector | face choice | recall (IoU>0.5) | false-positive crops | frames/s per core |")
    print("|---|---|---:|---:|---:|")
    for name, det in detectors(smoke).items():
        for selection in ("largest", "best"):
            results, seconds = cpu(lambda: [select_faces([s.frame], det, selection=selection).choices[0] for s in scenes])
            hits = sum(bool(c.face) and iou(c.face.box, s.face) > 0.5 for c, s in zip(results, scenes))
            misses = sum(bool(c.face) and iou(c.face.box, s.face) == 0 for c, s in zip(results, scenes))
            print(f"| {name} | {selection} | {hits / len(scenes):.2f} | {misses / len(scenes):.2f} | "
                  f"{len(scenes) / seconds:.1f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny settings: checks that the script runs")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    compare_detectors(args.smoke)


if __name__ == "__main__":
    main()

"""Face detectors compared, and `bench prepare`'s speed per stage at 720p, with a projection for FF++ c23.

    python benchmarks/face_prepare.py            # ~2 minutes on one core
    python benchmarks/face_prepare.py --smoke    # seconds: checks that the script runs

Part 1 (detectors): frames with scikit-image's astronaut and distractors that the Haar cascade fires on, larger than
the face (benchmarks/face_scenes.py), at several face sizes and positions. Per detector and face choice: recall
(the kept box overlaps the true face, IoU > 0.5), false-positive crops (the kept box misses the face entirely), and
frames/s per core (frames / CPU seconds of this process, one OpenCV / torch thread).

Part 2 (preparation): a 720p H.264 clip (x264, keyframe every 250 frames, as x264's default), the face ~180 px
drifting over a textured background with the distractors. 32 evenly spaced frames are decoded, searched and
encoded as `bench prepare` does; CPU seconds per stage give frames/s per core for decode / detection / encode.
"Before" is the former path (the largest face, a full-frame search on every frame); "after" is the default
(face track: full search on every 8th sampled frame, region search between). Crop quality: IoU of each "after" box
with a full-resolution search of the same frame (the face, found without downscaling).
"""

from __future__ import annotations

import argparse
import time

import cv2
import numpy as np
import torch

from bench.faces import crop_box, iou, square_crop
from bench.faces.haar import HaarConfig, HaarFaceDetector
from bench.faces.track import select_faces
from face_scenes import scene

FFPP_C23_VIDEOS = 5000  # 1,000 real + 4 methods x 1,000 fakes


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


def clip_720p(path: str, n: int) -> list:
    from bench.video import write_video

    frames = [scene(face_xy=(200 + 2 * i, 120 + i % 7), face_scale=1.5, size=(720, 1280), seed=i).frame for i in range(n)]
    write_video(path, frames, gop=250, crf=23)
    return frames


def prepare_speed(smoke: bool) -> None:
    import tempfile

    from bench.video import VideoReader, even_indices

    n_frames, keep = (40, 8) if smoke else (300, 32)
    det = HaarFaceDetector(HaarConfig())
    full_res = HaarFaceDetector(HaarConfig(max_side=10_000))
    with tempfile.TemporaryDirectory() as tmp:
        path = f"{tmp}/clip.mp4"
        clip_720p(path, n_frames)

        def decode():
            with VideoReader(path, threads=1) as reader:
                return [img for _, img in reader.read(even_indices(len(reader), keep))]

        frames, t_decode = cpu(decode)
        before, t_before = cpu(lambda: select_faces(frames, det, selection="largest", detect_every=1).choices)
        after, t_after = cpu(lambda: select_faces(frames, det, selection="track", detect_every=8).choices)
        reference = select_faces(frames, full_res, selection="best").choices

        def encode():
            from bench.crops import encode_image

            for img, c in zip(frames, after):
                if c.face is not None:
                    encode_image(square_crop(img, crop_box(c.face.box, 1.3, img.shape[1], img.shape[0]), 256), "jpg", 95)

        _, t_encode = cpu(encode)
    ious = [iou(a.face.box, r.face.box) for a, r in zip(after, reference) if a.face and r.face]
    rate = lambda t: keep / t if t > 0 else float("inf")  # noqa: E731
    total_before, total_after = t_decode + t_before + t_encode, t_decode + t_after + t_encode
    print(f"\n## Preparation at 720p: {keep} of {n_frames} frames (H.264, keyframe interval 250), one core\n")
    print("| stage | frames/s per core |")
    print("|---|---:|")
    print(f"| decode (seek + decode to each wanted frame) | {rate(t_decode):.1f} |")
    print(f"| detect, before (largest face, full search of every frame) | {rate(t_before):.1f} |")
    print(f"| detect, after (face track, full search every 8th frame) | {rate(t_after):.1f} |")
    print(f"| encode (crop + JPEG q95) | {rate(t_encode):.1f} |")
    print(f"| **whole path, before** | {rate(total_before):.1f} |")
    print(f"| **whole path, after** | {rate(total_after):.1f} |")
    print(f"\nspeed-up of the whole path: {total_before / total_after:.1f}x; crop quality: box IoU with a full-resolution "
          f"search min {min(ious):.2f}, mean {np.mean(ious):.2f} over {len(ious)} frames; "
          f"faces kept: before {sum(bool(c.face) for c in before)}, after {sum(bool(c.face) for c in after)} of {keep}")
    frames_total = FFPP_C23_VIDEOS * 32
    for label, per_core in (("before", rate(total_before)), ("after", rate(total_after))):
        print(f"FF++ c23 ({FFPP_C23_VIDEOS} videos x 32 frames), {label}: {frames_total / per_core / 16 / 3600:.2f} h on "
              f"16 cores, {frames_total / per_core / 64 / 3600:.2f} h on a 4-node cluster of 16 cores each")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny settings: checks that the script runs")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    compare_detectors(args.smoke)
    prepare_speed(args.smoke)


if __name__ == "__main__":
    main()

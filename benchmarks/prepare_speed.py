"""`bench prepare`'s speed per stage at 720p, before and after, its crop quality, and FF++ c23 projected.

    python benchmarks/prepare_speed.py                # ~2 minutes on one core
    python benchmarks/prepare_speed.py --smoke        # seconds: checks that the script runs

The clip: 300 frames of 1280x720 H.264 (x264, crf 23, a keyframe every 250 frames as x264's default, B-frames),
scikit-image's astronaut (face ~140 px) drifting over a noisy background with coin distractors beside her
(benchmarks/face_scenes.py). 32 evenly spaced frames are kept, as `bench prepare` does.

- before: the path of `bench prepare` when issue 10 was filed: seek to each wanted frame's keyframe and decode
  every frame up to it; the Haar cascade on every kept frame (downscaled to 640 px), no eye check; the largest box
  (`OriginalHaar` below is that detector's code as it was).
- after: today's defaults: the same seeks, but unwanted frames that no other frame refers to are not decoded; one
  face track per video (bench/faces/track.py); Haar with its eye check.

Stages are timed in CPU seconds of this process with one thread (cv2.setNumThreads(1), one decoder thread), so
frames / CPU second is frames/s per core. Both paths run `--repeat` times, interleaved, and each stage's median is
reported: other jobs on a shared machine slow single runs down. Crop quality: each "after" box against a
full-resolution search of the same frame (the cascade on 1280x720, its best face): IoU, and whether it is the face
the scene was drawn with (IoU > 0.5) rather than a coin.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections import Counter
from dataclasses import dataclass

import cv2
import numpy as np

from bench.config import PrepareConfig
from bench.crops import encode_image
from bench.faces import Face, FaceDetector, crop_box, iou, square_crop
from bench.faces.haar import HaarConfig, HaarFaceDetector
from bench.faces.track import FaceChoice, select_faces
from bench.video import VideoReader, even_indices, write_video
from face_scenes import scene

FFPP_C23_VIDEOS = 5000  # 1,000 real + 4 methods x 1,000 fakes
STAGES = ("decode", "detect", "encode")


class OriginalHaar(FaceDetector):
    """The default detector when issue 10 was filed: `detectMultiScale` on the frame downscaled to 640 px."""

    name = "haar_original"

    def __init__(self) -> None:
        super().__init__(HaarConfig())
        self._cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")

    def detect(self, image: np.ndarray) -> list[Face]:
        h, w = image.shape[:2]
        scale = min(1.0, 640 / max(h, w))
        gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        if scale < 1.0:
            gray = cv2.resize(gray, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
        found = self._cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5, minSize=(24, 24))
        return [Face((round(x / scale), round(y / scale), round((x + bw) / scale), round((y + bh) / scale)), 1.0)
                for x, y, bw, bh in np.asarray(found).reshape(-1, 4).tolist()]


@dataclass
class Variant:
    name: str
    skip_unwanted: bool  # VideoReader's skip of unwanted non-reference frames
    detector: FaceDetector
    selection: str
    detect_every: int


def clip_720p(path: str, n: int) -> list[tuple[int, int, int, int]]:
    """Write the clip; return the true face box of every frame."""
    scenes = [scene(face_xy=(200 + 2 * i, 120 + i % 7), face_scale=1.5, size=(720, 1280), seed=i) for i in range(n)]
    write_video(path, [s.frame for s in scenes], gop=250, crf=23)
    return [s.face for s in scenes]


def cpu(fn):
    t = time.process_time()
    out = fn()
    return out, time.process_time() - t


def run_path(p: Variant, video: str, keep: int, cfg: PrepareConfig) -> tuple[dict[str, float], list[FaceChoice], list, int]:
    """One pass of `bench prepare`'s work on one video: CPU seconds per stage, the choices, the frames, frames decoded."""
    def decode():
        with VideoReader(video, threads=1, skip_unwanted=p.skip_unwanted) as reader:
            return [img for _, img in reader.read(even_indices(len(reader), keep))], reader.decoded

    (frames, decoded), t_decode = cpu(decode)
    choices, t_detect = cpu(lambda: select_faces(frames, p.detector, selection=p.selection,
                                                 detect_every=p.detect_every).choices)

    def encode():
        for img, c in zip(frames, choices):
            if c.face is not None:
                box = crop_box(c.face.box, cfg.margin, img.shape[1], img.shape[0])
                encode_image(square_crop(img, box, cfg.size), cfg.format, cfg.quality)

    _, t_encode = cpu(encode)
    return {"decode": t_decode, "detect": t_detect, "encode": t_encode}, choices, frames, decoded


def decode_options(video: str, keep: int, repeat: int) -> None:
    """CPU and wall time per kept frame of the ways to decode them (median of `repeat`)."""
    print(f"\n## Decoding {keep} frames of the clip\n")
    print("| decoding | frames decoded | CPU ms per kept frame | wall ms per kept frame |")
    print("|---|---:|---:|---:|")
    for label, skip, threads in (("seek to the keyframe, decode every frame up to each wanted one (before)", False, 1),
                                 ("same, unwanted non-reference frames skipped (after)", True, 1),
                                 ("same, with FFmpeg's decoder threads (a single-process run)", True, 0)):
        cpus, walls = [], []
        for _ in range(repeat):
            w, c = time.perf_counter(), time.process_time()
            with VideoReader(video, threads=threads, skip_unwanted=skip) as reader:
                list(reader.read(even_indices(len(reader), keep)))
            cpus.append(time.process_time() - c)
            walls.append(time.perf_counter() - w)
        print(f"| {label} | {reader.decoded} | {1000 * statistics.median(cpus) / keep:.1f} | "
              f"{1000 * statistics.median(walls) / keep:.1f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny settings: checks that the script runs")
    parser.add_argument("--repeat", type=int, default=5, help="interleaved runs of each path (the median is reported)")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    n_frames, keep, repeat = (40, 8, 1) if args.smoke else (300, 32, args.repeat)
    cfg = PrepareConfig()
    paths = [Variant("before", False, OriginalHaar(), "largest", 1),
             Variant("after", True, HaarFaceDetector(HaarConfig()), cfg.selection, cfg.detect_every)]
    with tempfile.TemporaryDirectory() as tmp:
        video = f"{tmp}/clip.mp4"
        truth = clip_720p(video, n_frames)
        for p in paths:  # warm-up: imports and first-call costs are not a stage's
            run_path(p, video, keep, cfg)
        times: dict[str, dict[str, list[float]]] = {p.name: {s: [] for s in (*STAGES, "total")} for p in paths}
        for _ in range(repeat):
            for p in paths:
                t, choices, frames, decoded = run_path(p, video, keep, cfg)
                for s in STAGES:
                    times[p.name][s].append(t[s])
                times[p.name]["total"].append(sum(t.values()))
                if p.name == "after":
                    after, after_decoded = choices, decoded
                else:
                    before, before_decoded = choices, decoded
        reference = select_faces(frames, HaarFaceDetector(HaarConfig(max_side=10_000)), selection="best").choices
        decode_options(video, keep, repeat)
    wanted = [truth[i] for i in even_indices(n_frames, keep)]
    rate = {name: {s: keep / statistics.median(v) for s, v in stages.items()} for name, stages in times.items()}

    print(f"\n## Preparation at 720p: {keep} of {n_frames} frames, one core, median of {repeat} interleaved runs\n")
    print("| stage | before, frames/s per core | after, frames/s per core | after / before |")
    print("|---|---:|---:|---:|")
    for s in (*STAGES, "total"):
        label = "**whole path**" if s == "total" else s
        print(f"| {label} | {rate['before'][s]:.1f} | {rate['after'][s]:.1f} | {rate['after'][s] / rate['before'][s]:.1f}x |")
    print(f"\nframes decoded: before {before_decoded}, after {after_decoded}; after's searches: "
          f"{dict(Counter(c.source for c in after))} (anchor = full-frame search, tracked = near the track)")
    print(f"speed-up of the whole path (after / before, same run): {rate['after']['total'] / rate['before']['total']:.1f}x")
    for name, choices in (("before", before), ("after", after)):
        ious = [iou(c.face.box, r.face.box) for c, r in zip(choices, reference) if c.face and r.face]
        right = sum(bool(c.face) and iou(c.face.box, t) > 0.5 for c, t in zip(choices, wanted))
        print(f"crop quality, {name}: the drawn face in {right} of {keep} frames; box IoU with a full-resolution search "
              f"min {min(ious):.2f}, median {np.median(ious):.2f}, mean {np.mean(ious):.2f} over {len(ious)} frames")
    frames_total = FFPP_C23_VIDEOS * 32  # at this clip's cost per video; longer videos decode more reference frames
    for name in ("before", "after"):
        core_hours = frames_total / rate[name]["total"] / 3600
        print(f"FF++ c23 ({FFPP_C23_VIDEOS:,} videos x 32 frames), {name}: {core_hours:.1f} core-hours = "
              f"{60 * core_hours / 16:.0f} min on 16 cores, {60 * core_hours / 64:.1f} min on a 4-node cluster of 16 cores "
              f"each (processes scaling linearly)")


if __name__ == "__main__":
    main()

"""Peak memory and time of the AUC bootstrap at test-set scale: does it stay O(N) in the number of scores?

    python benchmarks/bootstrap_memory.py [--scores 1000000] [--resamples 1000] [--frames-per-video 32]

Scores N frames (`--frames-per-video` per video, so N / that many videos) and computes `--resamples` stratified
bootstrap AUCs twice: resampling frames, and resampling whole videos (the interval `bench.metrics.evaluate` logs).
Prints, for each, the wall time and the peak of memory allocated during the call (tracemalloc, which numpy
reports to), beside the size of one float64 array of N scores. Each mode also runs in a child process (so earlier
allocations do not count) and reports its peak resident set size (ru_maxrss) for the whole interpreter.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import time
import tracemalloc

import numpy as np

from bench.stats import bootstrap_auc


def make(n: int, frames: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    video = np.arange(n) // frames
    video_label = rng.integers(0, 2, video[-1] + 1)
    labels = video_label[video]
    scores = rng.normal(labels * 1.0, 1.0) + rng.normal(0, 0.5, video_label.size)[video]
    return labels, scores, video.astype(str).astype(object)


def measure(n: int, resamples: int, frames: int, mode: str) -> tuple[float, float, float]:
    """(seconds, traced peak MiB during the call, peak RSS MiB of this process) for one bootstrap."""
    labels, scores, videos = make(n, frames)
    tracemalloc.start()
    start = time.perf_counter()
    bootstrap_auc(labels, scores, resamples, groups=videos if mode == "videos" else None)
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    return seconds, peak, rss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scores", type=int, default=1_000_000)
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--frames-per-video", type=int, default=32)
    parser.add_argument("--child", choices=["frames", "videos"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(*measure(args.scores, args.resamples, args.frames_per_video, args.child))
        return
    print(f"{args.scores:,} scores ({args.scores // args.frames_per_video:,} videos of {args.frames_per_video} "
          f"frames), {args.resamples:,} resamples; one float64 array of the scores = {args.scores * 8 / 2**20:.1f} MiB")
    print(f"{'resampling':<12}{'time (s)':>10}{'peak in call (MiB)':>20}{'process peak RSS (MiB)':>25}")
    for mode in ("frames", "videos"):
        out = subprocess.run([sys.executable, __file__, "--scores", str(args.scores), "--resamples",
                              str(args.resamples), "--frames-per-video", str(args.frames_per_video), "--child", mode],
                             capture_output=True, text=True, check=True).stdout.split()
        seconds, peak, rss = map(float, out)
        print(f"{mode:<12}{seconds:>10.1f}{peak:>20.0f}{rss:>25.0f}")


if __name__ == "__main__":
    main()

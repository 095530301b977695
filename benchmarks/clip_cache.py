"""What does a training epoch of `clip_probe` cost once its features are cached? (issue 14: <= 0.10 of an uncached one)

    python benchmarks/clip_cache.py [--epochs 4] [--arch ViT-Tiny-test] [--videos 40] [--smoke]

Trains `clip_probe` on the synthetic demo benchmark twice through the real runner (tracking off), with
`detector.cache_features=true` and `=false`, and times every training epoch (`bench.engine.train_one_epoch`).
Epoch 1 of the cached run fills the cache; from then on, once every training sample's embedding is cached, the
runner gives the detector batches of indices and no image is read or transformed (`Detector.needs_images`). With
the default tiny tower, reading and transforming images is most of an uncached epoch: the hardest case for the
ratio. `--arch ViT-B-16 --input 224` measures the paper's backbone (random weights; slow on a CPU).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

from tabulate import tabulate

import bench.runner
from bench.compose import compose_run


def epoch_times(overrides: list[str]) -> list[float]:
    """Wall time of each training epoch of one run."""
    times: list[float] = []
    inner = bench.runner.train_one_epoch

    def timed(*args, **kwargs):
        t0 = time.perf_counter()
        out = inner(*args, **kwargs)
        times.append(time.perf_counter() - t0)
        return out

    bench.runner.train_one_epoch = timed
    try:
        bench.runner.run(compose_run(overrides))
    finally:
        bench.runner.train_one_epoch = inner
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--arch", default="ViT-Tiny-test")
    parser.add_argument("--input", type=int, default=64, help="input size (the tower's own: 64 tiny, 224 ViT-B-16)")
    parser.add_argument("--videos", type=int, default=40, help="fake training videos per family (real: twice that)")
    parser.add_argument("--smoke", action="store_true", help="a few seconds: check that the script runs")
    args = parser.parse_args()
    epochs, videos = (2, 4) if args.smoke else (args.epochs, args.videos)
    with tempfile.TemporaryDirectory() as out:
        common = [
            "detector=clip_probe", "scale=tiny", f"detector.backbone.arch={args.arch}", f"detector.input_size={args.input}",
            f"datasets.synthetic.fake_videos.train={videos}", f"datasets.synthetic.real_videos.train={2 * videos}",
            "datasets.synthetic.fake_videos.val=2", "datasets.synthetic.real_videos.val=4",
            "datasets.synthetic.fake_videos.test=2", "datasets.synthetic.real_videos.test=4",
            f"trainer.epochs={epochs}", "trainer.batch_size=16", "trainer.bootstrap=0", "trainer.progress=false",
            "tracking.enabled=false", f"paths.output={out}",
        ]  # batch 16 divides the 4 frames x 12 x videos training frames: epoch 1 caches every one of them
        cached = epoch_times([*common, "detector.cache_features=true"])
        uncached = epoch_times([*common, "detector.cache_features=false"])
    rows = [[e + 1, f"{c:.2f}", f"{u:.2f}"] for e, (c, u) in enumerate(zip(cached, uncached))]
    print(tabulate(rows, headers=["epoch", "cached run s", "uncached run s"]))
    ratio = statistics.mean(cached[1:]) / statistics.mean(uncached)
    print(f"ratio cached epoch (2..{epochs}) / uncached epoch: {ratio:.3f} (target <= 0.10)")


if __name__ == "__main__":
    main()

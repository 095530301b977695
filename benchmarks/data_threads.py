"""Per-image transforms with `trainer.num_workers=0`, while another process holds a core (issue 14: oversubscription).

    python benchmarks/data_threads.py [--images 128] [--repeat 2] [--no-busy] [--smoke]

Feeds in-memory 256x256 crops through a detector's training transform (resize + DeepfakeBench's augmentations)
in the main process, batch by batch, as the runner does with `num_workers=0`: once with a plain torch DataLoader
while torch keeps all its intra-op threads (the old data path), once with `bench.data.make_loader`, whose data path
runs on one thread (`bench.data.single_threaded`) and gives the threads back for the training math. A busy-loop
process holds one core meanwhile (`--no-busy` to skip), as another job on a shared machine would. Prints images/s
(best of --repeat, interleaved) and the ratio new / old.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

import numpy as np
import torch
from torch.utils.data import DataLoader

from bench.data import FrameDataset, collate, make_loader
from bench.detector_config import AugmentConfig
from bench.records import Sample
from bench.transforms import build_transform


def images_per_second(loader) -> float:
    t0, n = time.perf_counter(), 0
    for batch in loader:
        n += batch.labels.numel()
    return n / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=128)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--no-busy", action="store_true", help="do not hold a core with a busy loop")
    parser.add_argument("--smoke", action="store_true", help="a few seconds: check that the script runs")
    args = parser.parse_args()
    n, repeat = (16, 1) if args.smoke else (args.images, args.repeat)
    rng = np.random.default_rng(0)
    samples = [Sample("bench", "train", "real", i % 2, f"v{i}", 0, array=rng.integers(0, 256, (256, 256, 3), np.uint8))
               for i in range(n)]
    augment = AugmentConfig(hflip=0.5, blur=0.5, color=0.5, jpeg=0.5)  # DeepfakeBench's, as xception trains
    dataset = FrameDataset(samples, build_transform(256, (0.5,) * 3, (0.5,) * 3, augment))
    threads = os.cpu_count() or 1
    torch.set_num_threads(threads)
    busy = None if args.no_busy else subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        old, new = [], []
        for _ in range(repeat):
            old.append(images_per_second(DataLoader(dataset, batch_size=32, collate_fn=collate)))
            new.append(images_per_second(make_loader(dataset, batch_size=32, train=False)))
    finally:
        if busy is not None:
            busy.kill()
    print(f"{n} images, torch threads {threads}, {'one core busy' if busy else 'idle'}, best of {repeat}")
    print(f"plain DataLoader (data path on {threads} torch threads): {max(old):7.1f} images/s")
    print(f"bench.data.make_loader (data path single-threaded):    {max(new):7.1f} images/s")
    print(f"ratio single-threaded / multi-threaded: {max(new) / max(old):.2f}")


if __name__ == "__main__":
    main()

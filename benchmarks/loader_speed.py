"""How many training images per second can the loader feed a GPU, per CPU core? (issue 13: a loop that keeps a GPU busy)

    python benchmarks/loader_speed.py [--images 512] [--size 224] [--batch 64] [--workers 0,1,2] [--smoke]

Writes `--images` 256x256 JPEG crops (q95, as `bench prepare` writes them; random crops of scikit-image's bundled
photographs) to a temporary folder and reads them as training reads them (`bench.data.make_loader`, the runner's
settings: uint8 batches normalised on the device, pinned memory when there is a GPU, persistent workers).
Prints, in one run, with the machine:
  - the CPU cost per image of each stage, on one thread: JPEG decode (`bench.dataset.load_image`), resize to
    `--size` without and with DeepfakeBench's augmentations (flip, blur, colour, JPEG; as Xception trains),
    and the float normalisation that now runs on the device instead (per image, as it cost on the CPU before);
  - loader images/s for each worker count, and images/s per core (the figure that says how many cores a GPU needs);
  - bytes copied to the device per image: uint8 now, float32 before.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import cv2
import torch
from torchvision.transforms import v2

from bench.data import FrameDataset, make_loader, split_transform, to_device
from bench.dataset import load_image
from bench.detector_config import AugmentConfig
from bench.records import Sample
from bench.transforms import GaussianBlur, build_transform
from crop_loading import make_crops

AUGMENT = AugmentConfig(hflip=0.5, blur=0.5, color=0.5, jpeg=0.5)  # DeepfakeBench's, as `xception` trains
AUGMENTATIONS = {  # the ops of bench.transforms.build_transform, each always applied
    "flip": v2.RandomHorizontalFlip(p=1.0), "blur (OpenCV, now)": GaussianBlur(5, (0.1, 2.0)),
    "blur (torchvision, before)": v2.GaussianBlur(5, (0.1, 2.0)),
    "brightness/contrast": v2.ColorJitter(brightness=0.2, contrast=0.2),
    "hue/saturation": v2.ColorJitter(hue=0.05, saturation=0.2), "JPEG 40-100": v2.JPEG(quality=(40, 100)),
}
CLIP_MEAN, CLIP_STD = (0.481, 0.458, 0.408), (0.269, 0.261, 0.276)


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else platform.processor()
    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU"
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return f"{cpu}, {os.cpu_count()} cores, {gpu}, load average {load:.1f}, torch {torch.__version__}"


def per_image_ms(fn, items: list, repeat: int = 2) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        for item in items:
            fn(item)
        best = min(best, time.perf_counter() - t0)
    return 1000 * best / len(items)


def jpeg_samples(n: int, folder: str) -> list[Sample]:
    """n 256x256 JPEG crops (q95, as `bench prepare` writes them) in `folder`, as training samples."""
    samples = []
    for i, crop in enumerate(make_crops(n, 256)):
        path = Path(folder, f"{i:05d}.jpg")
        cv2.imwrite(str(path), cv2.cvtColor(crop, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95])
        samples.append(Sample("bench", "train", "real", i % 2, f"v{i}", 0, path=str(path)))
    return samples


def loader_ips(samples: list[Sample], transform, batch: int, workers: int, device: torch.device) -> float:
    loader = make_loader(FrameDataset(samples, transform), batch_size=batch, train=True, num_workers=workers,
                         device_stage=True)
    for b in loader:  # warm-up epoch: starts the (persistent) workers and fills the page cache
        to_device(loader, b, device)
    t0, n = time.perf_counter(), 0
    for b in loader:
        n += to_device(loader, b, device).images.shape[0]
    if device.type == "cuda":
        torch.cuda.synchronize()
    return n / (time.perf_counter() - t0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--images", type=int, default=512)
    p.add_argument("--size", type=int, default=224, help="the detector's input size (CLIP ViT-B/16: 224)")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--workers", default=None, help="comma-separated worker counts (default: 0, 1 and every core)")
    p.add_argument("--smoke", action="store_true", help="a few seconds: check that the script runs")
    args = p.parse_args()
    if args.smoke:
        args.images, args.batch, args.workers = 32, 16, "0,1"
    cores = os.cpu_count() or 1
    workers = [int(w) for w in args.workers.split(",")] if args.workers else sorted({0, 1, cores})
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    cv2.setNumThreads(1)
    torch.set_num_threads(1)  # per-image costs on one thread, as a loader worker runs them

    with tempfile.TemporaryDirectory() as tmp:
        samples = jpeg_samples(args.images, tmp)
        images = [load_image(s) for s in samples]
        plain = build_transform(args.size, CLIP_MEAN, CLIP_STD, None)
        augmented = build_transform(args.size, CLIP_MEAN, CLIP_STD, AUGMENT)
        plain_cpu, normalise = split_transform(plain)
        augmented_cpu, _ = split_transform(augmented)
        resized = [plain_cpu(img) for img in images]
        costs = {
            "decode JPEG 256x256 (load_image)": per_image_ms(load_image, samples),
            f"resize to {args.size} (uint8)": per_image_ms(plain_cpu, images),
            f"resize to {args.size} + augmentations (uint8)": per_image_ms(augmented_cpu, images),
            **{f"  one augmentation, always applied: {name}": per_image_ms(op, resized) for name, op in AUGMENTATIONS.items()},
            "normalise to float (now on the device, per batch)": per_image_ms(lambda x: normalise(x[None]), resized),
        }
        torch.set_num_threads(cores)
        throughput = {w: loader_ips(samples, augmented, args.batch, w, device) for w in workers}

    print(f"loader: {args.images} JPEG crops -> {args.size}px, batch {args.batch} | {machine()}")
    print(f"{'per image, one thread':<60}{'ms':>8}")
    for what, ms in costs.items():
        print(f"{what:<60}{ms:>8.3f}")
    decode_aug = costs["decode JPEG 256x256 (load_image)"] + costs[f"resize to {args.size} + augmentations (uint8)"]
    print(f"{'decode + resize + augmentations (p=0.5 each)':<60}{decode_aug:>8.3f}  (= {1000 / decode_aug:.0f} images/s per core)")
    print(f"{'loader (augmented, uint8 to the device)':<44}{'images/s':>12}{'per core':>12}")
    for w, ips in throughput.items():
        print(f"{f'num_workers={w}':<44}{ips:>12.1f}{ips / max(1, w):>12.1f}")
    print(f"bytes per image to the device: {3 * args.size**2:,} (uint8) instead of {4 * 3 * args.size**2:,} (float32)")
    print(f"ratio loader images/s per core (best worker count) / 6,000 images/s over 16 cores: "
          f"{max(ips / max(1, w) for w, ips in throughput.items()) / (6000 / 16):.2f}")


if __name__ == "__main__":
    main()

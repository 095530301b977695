"""How fast can training load cached 256x256 face crops, per cache format? (single core, warm page cache)

    OMP_NUM_THREADS=1 python benchmarks/crop_loading.py [--images 512] [--repeat 3] [--size 256]

Writes the same crops (random square crops of scikit-image's bundled photographs, so JPEG/PNG sizes are those
of natural images, not of noise) in each candidate format to a temporary folder, then times decoding every file
into an (H, W, 3) uint8 array in a shuffled order, the way a training loader reads them. Prints images/s per
format and the bytes each image takes on disk. Disk reads are not measured (the files sit in the page cache):
this is the CPU cost per image, which is what bounds a loader worker.
"""

from __future__ import annotations

import argparse
import io
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import skimage.data
import torch
import torchvision.io
from PIL import Image
from tabulate import tabulate

from bench.dataset import load_image
from bench.records import Sample

PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "cat")  # bundled with scikit-image (no download)
FRAMES_PER_VIDEO = 32  # the per-video memmap stores this many crops per file, as `bench prepare` samples


def make_crops(n: int, size: int, seed: int = 0) -> np.ndarray:
    """(n, size, size, 3) uint8 crops at random positions and scales of real photographs."""
    rng = np.random.default_rng(seed)
    photos = [getattr(skimage.data, name)() for name in PHOTOS]
    out = np.empty((n, size, size, 3), np.uint8)
    for i in range(n):
        img = photos[i % len(photos)]
        if img.ndim == 2:
            img = np.stack([img] * 3, axis=-1)
        h, w = img.shape[:2]
        side = int(rng.integers(min(h, w) // 3, min(h, w)))
        y, x = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
        out[i] = cv2.resize(img[y:y + side, x:x + side, :3], (size, size), interpolation=cv2.INTER_AREA)
    return out


def _encode_pil(fmt: str, **kw) -> Callable[[np.ndarray], bytes]:
    def encode(crop: np.ndarray) -> bytes:
        buf = io.BytesIO()
        Image.fromarray(crop).save(buf, format=fmt, **kw)
        return buf.getvalue()

    return encode


def _encode_npy(crop: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, crop)
    return buf.getvalue()


def load_bench(path: str) -> np.ndarray:
    """The project's own loader, as the training data pipeline calls it."""
    return load_image(Sample(dataset="bench", split="train", domain="real", label=0, video="v", frame=0, path=path))


def load_imread(path: str) -> np.ndarray:
    """cv2.imread with no completeness check: what load_image did before it learnt to refuse truncated files."""
    return cv2.cvtColor(cv2.imread(path, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def load_pil(path: str) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def load_torchvision(path: str) -> np.ndarray:
    return torchvision.io.decode_jpeg(torchvision.io.read_file(path)).permute(1, 2, 0).numpy()  # (3, H, W) -> (H, W, 3)


def load_npy(path: str) -> np.ndarray:
    return np.load(path)


# name -> (file suffix, encoder, loader)
PER_FILE = {
    "png (cv2: bench.dataset.load_image)": (".png", _encode_pil("PNG"), load_bench),
    "jpeg q95 (cv2: bench.dataset.load_image)": (".jpg", _encode_pil("JPEG", quality=95), load_bench),
    "jpeg q95 (cv2.imread, unchecked)": (".jpg", _encode_pil("JPEG", quality=95), load_imread),
    "jpeg q95 (PIL)": (".jpg", _encode_pil("JPEG", quality=95), load_pil),
    "jpeg q95 (torchvision.io.decode_jpeg)": (".jpg", _encode_pil("JPEG", quality=95), load_torchvision),
    "raw .npy per crop": (".npy", _encode_npy, load_npy),
}


def one_pass(load: Callable[[int], np.ndarray], order: np.ndarray) -> float:
    """images/s of loading every item once, in `order`."""
    t0 = time.perf_counter()
    for i in order:
        img = load(int(i))
        assert img.shape[-1] == 3
    return len(order) / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=512)
    parser.add_argument("--repeat", type=int, default=5, help="passes per format; the best one is reported")
    parser.add_argument("--size", type=int, default=256)
    args = parser.parse_args()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    crops = make_crops(args.images, args.size)
    order = np.random.default_rng(1).permutation(len(crops))
    loaders: dict[str, Callable[[int], np.ndarray]] = {}
    kib: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, (suffix, encode, loader) in PER_FILE.items():
            folder = Path(tmp, suffix.lstrip("."))
            folder.mkdir(exist_ok=True)
            paths = [str(folder / f"{i:06d}{suffix}") for i in range(len(crops))]
            if not os.path.exists(paths[-1]):  # the JPEG loaders share one set of files
                for path, crop in zip(paths, crops):
                    Path(path).write_bytes(encode(crop))
            loaders[name] = lambda i, paths=paths, loader=loader: loader(paths[i])
            kib[name] = sum(os.path.getsize(p) for p in paths) / len(paths) / 1024
        # One (T, H, W, 3) .npy per video, memory-mapped: a training read copies one frame out of it.
        maps = []
        for v in range(0, len(crops), FRAMES_PER_VIDEO):
            np.save(Path(tmp, f"video{v:06d}.npy"), crops[v:v + FRAMES_PER_VIDEO])
            maps.append(np.load(Path(tmp, f"video{v:06d}.npy"), mmap_mode="r"))
        name = "raw per-video .npy memmap"
        loaders[name] = lambda i: np.array(maps[i // FRAMES_PER_VIDEO][i % FRAMES_PER_VIDEO])
        kib[name] = sum(os.path.getsize(p) for p in Path(tmp).glob("video*.npy")) / len(crops) / 1024

        best = dict.fromkeys(loaders, 0.0)
        for name, load in loaders.items():
            load(0)  # warm-up: lazy imports, page cache
        # Formats take turns within each round, so a load spike from other jobs hits all of them alike.
        for _ in range(args.repeat):
            for name, load in loaders.items():
                best[name] = max(best[name], one_pass(load, order))
    print(f"{args.images} crops of {args.size}x{args.size}, best of {args.repeat} shuffled passes, 1 thread, "
          f"{os.cpu_count()} CPU(s) visible")
    rows = [[name, f"{best[name]:,.0f}", f"{kib[name]:.1f}"] for name in loaders]
    print(tabulate(rows, headers=["format (loader)", "images/s", "KiB/image"], colalign=("left", "right", "right")))


if __name__ == "__main__":
    main()

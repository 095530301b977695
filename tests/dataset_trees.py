"""Fixture trees of the real datasets, laid out and named exactly as published, for tests (import from here).

Each ``make_<dataset>(root, ...)`` writes a small tree with the release's own label files and returns a `Tree`:
its root, the Hydra overrides that point the dataset's config at it, and the number of videos (or images) per
split and domain that the layout implies, computed from the generator's arguments (not by the adapter under test).

Videos are tiny H.264 clips of a real face photograph shipped with scikit-image (the astronaut, 128x128, drifting
a few pixels per frame), so `bench prepare`'s face detector finds a face. All clips of a tree share one encoding
(encoded once, then copied), which keeps trees of dozens of videos fast to write. ``video=False`` writes zero-byte
placeholders instead, for tests that only list files (FF++ at its official size: 5,000 files in well under a second).
"""

from __future__ import annotations

import csv
import functools
import io
import json
import random
import string
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bench.records import REAL_DOMAIN as REAL
FFPP_METHODS = ("Deepfakes", "Face2Face", "FaceSwap", "NeuralTextures")
FFPP_OFFICIAL_PAIRS = (360, 70, 70)  # pairs in the official train.json / val.json / test.json
SPLITS = ("train", "val", "test")


@dataclass
class Tree:
    root: Path
    overrides: list[str]  # e.g. ["datasets.ffpp.root=/tmp/x", "datasets.ffpp.splits_dir=/tmp/x/splits"]
    # split -> domain -> number of videos (images for DiFF); "train+val" where the adapter draws val by hash
    expected: dict[str, Counter] = field(default_factory=dict)


# ---- media -----------------------------------------------------------------------------------------------------
def face_frames(n: int = 8, size: int = 128) -> list[np.ndarray]:
    """`n` RGB frames (size, size, 3) uint8 of the astronaut's face, the crop window drifting 3 px per frame."""
    import cv2
    from skimage import data

    photo = data.astronaut()  # (512, 512, 3); the face is near (x 180..275, y 65..160)
    frames = []
    for i in range(n):
        dx, dy = 3 * i, 2 * (i % 3)
        crop = photo[dy:320 + dy, 96 + dx:416 + dx]
        frames.append(np.ascontiguousarray(cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)))
    return frames


@functools.lru_cache(maxsize=8)
def clip_bytes(frames: int = 8, size: int = 128, fps: int = 25) -> bytes:
    """An H.264 MP4 of `face_frames` (encoded once per argument set)."""
    import av

    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": "18"}
        for img in face_frames(frames, size):
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buf.getvalue()


@functools.lru_cache(maxsize=8)
def image_bytes(size: int = 64, suffix: str = ".png") -> bytes:
    import cv2

    ok, enc = cv2.imencode(suffix, cv2.cvtColor(face_frames(1, size)[0], cv2.COLOR_RGB2BGR))
    assert ok
    return enc.tobytes()


def write_video(path: Path, video: bool = True) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(clip_bytes() if video else b"")
    return path


def write_image(path: Path, image: bool = True) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(image_bytes(suffix=path.suffix.lower()) if image else b"")
    return path


def _name(rng: random.Random, n: int, alphabet: str = string.ascii_lowercase) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


# ---- FaceForensics++ and DFD --------------------------------------------------------------------------------------
def make_ffpp(root: Path, pairs: Sequence[int] = (2, 1, 1), methods: Sequence[str] = FFPP_METHODS,
              compression: str = "c23", video: bool = True, splits_dir: Path | None = None, seed: int = 0) -> Tree:
    """FF++ with `pairs` = (train, val, test) pairs and split files in the official format (ids like "953")."""
    splits_dir = splits_dir or root / "splits"
    ids = [f"{i:03d}" for i in range(2 * sum(pairs))]
    random.Random(seed).shuffle(ids)  # official pairs are not consecutive ids
    expected, start = {}, 0
    splits_dir.mkdir(parents=True, exist_ok=True)
    for split, n in zip(SPLITS, pairs):
        chunk = [[ids[start + 2 * k], ids[start + 2 * k + 1]] for k in range(n)]
        start += 2 * n
        (splits_dir / f"{split}.json").write_text(json.dumps(chunk))
        for a, b in chunk:
            for i in (a, b):
                write_video(root / "original_sequences" / "youtube" / compression / "videos" / f"{i}.mp4", video)
            for m in methods:
                for stem in (f"{a}_{b}", f"{b}_{a}"):
                    write_video(root / "manipulated_sequences" / m / compression / "videos" / f"{stem}.mp4", video)
        expected[split] = Counter({REAL: 2 * n, **{m: 2 * n for m in methods}})
    overrides = [f"datasets.ffpp.root={root}", f"datasets.ffpp.splits_dir={splits_dir}",
                 f"datasets.ffpp.compression={compression}", f"datasets.ffpp.methods=[{','.join(methods)}]"]
    return Tree(root, overrides, expected)


def make_dfd(root: Path, actors: int = 3, scenes: Sequence[str] = ("exit_phone_room", "kitchen_pan"),
             compression: str = "c23", video: bool = True, seed: int = 0) -> Tree:
    """DFD inside an FF++ tree: every actor films every scene; each actor is swapped with the next one per scene."""
    rng = random.Random(seed)
    for a in range(1, actors + 1):
        for scene in scenes:
            write_video(root / "original_sequences" / "actors" / compression / "videos" / f"{a:02d}__{scene}.mp4", video)
            s = a % actors + 1
            uid = _name(rng, 8, string.ascii_uppercase + string.digits)
            write_video(root / "manipulated_sequences" / "DeepFakeDetection" / compression / "videos"
                        / f"{a:02d}_{s:02d}__{scene}__{uid}.mp4", video)
    n = actors * len(scenes)
    return Tree(root, [f"datasets.dfd.root={root}", f"datasets.dfd.compression={compression}"],
                {"test": Counter({REAL: n, "DeepFakeDetection": n}), "train": Counter(), "val": Counter()})


# ---- Celeb-DF ---------------------------------------------------------------------------------------------------
def make_celebdf(root: Path, name: str = "celebdf_v2", identities: int = 3, clips: int = 3, youtube: int = 3,
                 video: bool = True) -> Tree:
    """Celeb-DF: `clips` real clips per identity, one fake per real clip (face of the next identity), `youtube`
    YouTube clips; the last clip of every identity (real and fake) and the first YouTube clip are on the test list,
    written in the release's convention (1 = real, 0 = fake)."""
    lines = []
    for i in range(identities):
        for c in range(clips):
            real = write_video(root / "Celeb-real" / f"id{i}_{c:04d}.mp4", video)
            fake = write_video(root / "Celeb-synthesis" / f"id{i}_id{(i + 1) % identities}_{c:04d}.mp4", video)
            if c == clips - 1:
                lines += [f"1 Celeb-real/{real.name}", f"0 Celeb-synthesis/{fake.name}"]
    for y in range(youtube):
        clip = write_video(root / "YouTube-real" / f"{y:05d}.mp4", video)
        if y == 0:
            lines.append(f"1 YouTube-real/{clip.name}")
    (root / "List_of_testing_videos.txt").write_text("\n".join(lines) + "\n")
    test = Counter({REAL: identities + min(youtube, 1), "Celeb-synthesis": identities})
    counts = Counter({REAL: identities * clips + youtube, "Celeb-synthesis": identities * clips})
    return Tree(root, [f"datasets.{name}.root={root}"], {"test": test, "train+val": counts - test})


# ---- DFDC and DFDC-Preview --------------------------------------------------------------------------------------
def make_dfdc(root: Path, test: tuple[int, int] = (3, 3), parts: Sequence[tuple[int, int]] = (),
              videos_subdir: bool = True, video: bool = True, seed: int = 0) -> Tree:
    """DFDC: a test set of (real, fake) videos with labels.csv (1 = fake), and training parts of (real, fake) videos
    with metadata.json, each fake made from one of its part's real videos."""
    rng = random.Random(seed)
    test_dir = root / "test"
    rows = [(f"{_name(rng, 10)}.mp4", label) for label, n in ((0, test[0]), (1, test[1])) for _ in range(n)]
    rng.shuffle(rows)
    for filename, _ in rows:
        write_video((test_dir / "videos" if videos_subdir else test_dir) / filename, video)
    test_dir.mkdir(parents=True, exist_ok=True)
    with (test_dir / "labels.csv").open("w", newline="") as f:
        csv.writer(f).writerows([("filename", "label"), *rows])
    expected = {"test": Counter({REAL: test[0], "fake": test[1]})}
    for p, (n_real, n_fake) in enumerate(parts):
        part = root / f"dfdc_train_part_{p}"
        reals = [f"{_name(rng, 10)}.mp4" for _ in range(n_real)]
        meta = {r: {"label": "REAL", "split": "train", "original": None} for r in reals}
        meta |= {f"{_name(rng, 10)}.mp4": {"label": "FAKE", "split": "train", "original": reals[k % n_real]}
                 for k in range(n_fake)}
        for filename in meta:
            write_video(part / filename, video)
        (part / "metadata.json").write_text(json.dumps(meta))
    if parts:
        expected["train+val"] = Counter({REAL: sum(r for r, _ in parts), "fake": sum(f for _, f in parts)})
    return Tree(root, [f"datasets.dfdc.root={root}"], expected)


def make_dfdcp(root: Path, identities: int = 4, clips: int = 2, test_identities: int = 2, video: bool = True) -> Tree:
    """DFDC-Preview: per identity `clips` real clips and one method_A and one method_B fake per clip, indexed by
    dataset.json; the last `test_identities` identities form set "test"."""
    index, expected = {}, {"test": Counter(), "train+val": Counter()}
    for i in range(identities):
        ident = f"{1000000 + 7 * i}"
        src = f"{2000000 + 7 * i}"
        split = "test" if i >= identities - test_identities else "train"
        for c in range(1, clips + 1):
            paths = {f"original_videos/{ident}/{ident}_A_{c:03d}.mp4": ("real", REAL)}
            for m in ("A", "B"):
                paths[f"method_{m}/{ident}/{ident}_{m}/{src}_{ident}_{m}_{c:03d}.mp4"] = ("fake", f"method_{m}")
            for rel, (label, domain) in paths.items():
                write_video(root / rel, video)
                index[rel] = {"label": label, "set": split}
                expected["test" if split == "test" else "train+val"][domain] += 1
    (root / "dataset.json").write_text(json.dumps(index))
    return Tree(root, [f"datasets.dfdcp.root={root}"], expected)


# ---- image datasets ---------------------------------------------------------------------------------------------
DIFF_FOLDERS = {"real": "Real", "t2i": "T2I", "i2i": "i2i", "fs": "FS", "fe": "Fe"}  # mixed case on purpose


def make_diff(root: Path, per_subset: int = 2, methods: int = 2, folders: dict[str, str] | None = None,
              split_folders: Sequence[str] = SPLITS, image: bool = True) -> Tree:
    """DiFF: `<split>/<subset folder>/...`: real images flat, each forgery subset nested one folder per generation
    method (`methods` of them, `per_subset` images each)."""
    folders = folders or DIFF_FOLDERS
    expected = {}
    for split_folder, split in zip(split_folders, SPLITS):
        counts = Counter()
        for subset, folder in folders.items():
            if subset == REAL:
                for k in range(per_subset * methods):
                    write_image(root / split_folder / folder / f"{k:05d}.png", image)
            else:
                for m in range(methods):
                    for k in range(per_subset):
                        write_image(root / split_folder / folder / f"method{m}" / f"{k:05d}.jpg", image)
            counts[subset] = per_subset * methods
        expected[split] = counts
    return Tree(root, [f"datasets.diff.root={root}"], expected)


def make_deepfakebench(root: Path, videos: Sequence[int] = (2, 1, 1), frames: int = 3, compression: str | None = "c23",
                       labels: Sequence[str] = ("FF-real", "FF-DF"), dataset: str = "FaceForensics++",
                       path_prefix: str = "", image: bool = True) -> Tree:
    """A DeepfakeBench JSON `<root>/dataset_json/<dataset>.json` with (train, val, test) `videos` per label and
    `frames` PNG crops per video named by frame index (0, 10, 20, ...), paths written relative to `root` behind
    `path_prefix` (e.g. an author's absolute path, as in some published JSONs). `expected` counts videos per
    DeepfakeBench label name."""
    tree: dict = {}
    expected = {s: Counter() for s in SPLITS}
    for label in labels:
        tree[label] = {}
        for split, n in zip(SPLITS, videos):
            vids = {}
            for v in range(n):
                name = f"{label}_{split}_{v:03d}"
                rel = [f"{dataset}/{label}/frames/{name}/{10 * k:03d}.png" for k in range(frames)]
                for r in rel:
                    write_image(root / r, image)
                vids[name] = {"label": label, "frames": [path_prefix + r for r in rel]}
            tree[label][split] = {compression: vids} if compression else vids
            expected[split][label] = n
    json_file = root / "dataset_json" / f"{dataset}.json"
    json_file.parent.mkdir(parents=True, exist_ok=True)
    json_file.write_text(json.dumps({dataset: tree}))
    overrides = [f"datasets.deepfakebench.root={root}", f"datasets.deepfakebench.json_file={json_file}"]
    if path_prefix:
        overrides.append(f"datasets.deepfakebench.strip_prefix={path_prefix}")
    return Tree(root, overrides, expected)

"""`synthetic`: an embedded forgery benchmark, generated from a seed on first use (no data, no download).

It exists so that `bench run` works on a fresh machine and so that tests exercise real cross-domain behaviour:
each forgery family below is its own domain, with train/val/test splits, and a detector trained on some families
can be tested on a held-out one. It is a *stand-in*, not a face-forgery dataset: numbers on it say that the
pipeline works and that generalisation gaps show up, not how a detector fares on real deepfakes.

"Real" videos. Each video starts from one source image: mostly a procedural face-like scene (a shaded skin
ellipse with hair, eyes and mouth over a background whose texture has the 1/f amplitude spectrum of natural
images), sometimes (`photo_fraction`) a crop of one of the photographs shipped inside scikit-image (random
scale, flip, colour and gamma; each split crops a disjoint region of every photograph). Frames are crops of the
source that drift by a pixel or so, with a small exposure change and fresh camera noise (a per-video level),
and every frame is saved as JPEG (quality drawn per video), as published videos are.

Fake videos. Each is made from its *own* source image, drawn exactly like a real one and never shown as real.
Every frame is manipulated with its own draw of the family's parameters (per-frame pipelines flicker, which is
why averaging scores over a video helps on real benchmarks too), then saved as JPEG exactly like real frames.
  blend         A colour-shifted, resized (softer), slightly rescaled/shifted copy of the frame pasted back under
                a soft elliptical face mask: the blending boundary and inside/outside inconsistency that Face
                X-ray (Li et al., CVPR 2020) detects, generated as self-blended images are (SBI; Shiohara &
                Yamasaki, CVPR 2022): a frame blended with an altered copy of itself.
  gan_upsample  Re-rendered from half resolution by a stride-2 transposed convolution whose phases have slightly
                unequal gain (checkerboard), keeping only part of the lost detail: the periodic spectral peaks
                and high-frequency deficit of up-convolution generators (Durall et al., CVPR 2020).
  diffusion     The low band of the spectrum kept, the high band replaced by re-synthesised power-law noise of
                lower energy: the mismatched fine-scale spectrum Corvi et al. (ICASSP 2023) find in diffusion
                images. Our choice: no periodic peaks (Corvi et al. also see them for some models), so the
                family shares no artifact with `gan_upsample` and can serve as the held-out domain.
  warp          The face region magnified and bent by a smooth field that fades out at the mask's edge, sampled
                from a lower-resolution render with bilinear interpolation: the warp-and-paste of reenactment
                pipelines and its resampling traces (Popescu & Farid, IEEE TSP 2005).
  double_jpeg   A first, lower-quality JPEG compression on an 8x8 grid shifted against the final one: the
                non-aligned double-compression traces of re-saved, spliced images (Bianchi & Piva, IEEE TIFS 2012).
The resampling families also wipe the camera noise where they act, a classic forensic cue of its own.

Difficulty. `strength.<family>` scales each artifact: 0 = none, 1 = the default, calibrated so that the `demo`
protocol (the `dummy` detector, 4 epochs at 64 px, trained on blend, gan_upsample, warp and double_jpeg) scores
about 0.8-0.95 frame AUC in-domain and 0.5-0.7 on the held-out `diffusion`, with a spread of about +-0.1 across
seeds. The tiny CNN needs the ~5k training frames of the default sizes to learn the local families at all (with
a third of them it stays near chance on blend and warp). These numbers show that training, selection,
evaluation and the cross-domain gap work end to end; they say nothing about real deepfakes.

Video keys are `synthetic/<domain>/<split>_<index>` (`synthetic/real/...` for real ones); frames are 0..F-1.
Generated splits are cached as `<cache_dir>/synthetic-<hash>/<split>.npz`, where the hash covers every config
field and the generator version, so changing the config regenerates and a stale cache is never read.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from bench.dataset import SPLITS, DatasetAdapter, DatasetConfig
from bench.errors import BenchError
from bench.records import FAKE, REAL, REAL_DOMAIN, Sample
from bench.synthetic_ops import FAMILIES, jpeg, photo_crop, procedural_scene

GENERATOR_VERSION = 2  # bump whenever generated pixels change for the same config
JITTER = 3  # pixels a frame's crop may drift from the centre of its source image


@dataclass
class SplitSizes:
    train: int = 0
    val: int = 0
    test: int = 0


@dataclass
class Strengths:
    """Artifact strength per family: 0 = none, 1 = the calibrated default (see the module docstring), at most 2."""

    blend: float = 1.0
    gan_upsample: float = 1.0
    diffusion: float = 1.0
    warp: float = 1.0
    double_jpeg: float = 1.0


@dataclass
class SyntheticConfig(DatasetConfig):
    needs_root: ClassVar[bool] = False

    name: str = "synthetic"
    root: str | None = None  # unused: the data is generated into the cache folder
    seed: int = 0
    image_size: int = 64  # a multiple of 8 (whole JPEG blocks)
    frames_per_video: int = 4
    fake_videos: SplitSizes = field(default_factory=lambda: SplitSizes(train=200, val=20, test=25))  # per family
    # Twice the per-family count: a test set (one family + all real videos) is 1:2 fake:real, and training on four
    # families is 2:1, the imbalance of real benchmarks. ~5k training frames: about the least the demo's CNN
    # learns the local families from.
    real_videos: SplitSizes = field(default_factory=lambda: SplitSizes(train=400, val=40, test=50))
    photo_fraction: float = 0.2  # share of source images cropped from photographs (the rest are procedural)
    final_jpeg: tuple[int, int] = (80, 95)  # quality range of the JPEG every frame is saved with
    sensor_noise: tuple[float, float] = (2.0, 6.0)  # std range (in 8-bit levels) of the camera noise of a video
    strength: Strengths = field(default_factory=Strengths)


class Synthetic(DatasetAdapter):
    name = "synthetic"
    description = "embedded synthetic forgery benchmark: 5 forgery families, generated from a seed (no data needed)"
    config_class = SyntheticConfig

    def __init__(self, cfg: Any, cache_dir: str | Path) -> None:
        super().__init__(cfg, cache_dir)  # stores cfg as a SyntheticConfig
        self.cfg: SyntheticConfig
        _validate(self.cfg, self.name)
        self._samples: dict[str, list[Sample]] = {}

    def domains(self) -> list[str]:
        return list(FAMILIES)

    def samples(self, split: str) -> list[Sample]:
        if split not in SPLITS:
            raise BenchError(f"dataset {self.name!r} has splits {list(SPLITS)}, not {split!r}", key="protocol")
        if split not in self._samples:
            arrays = self._load_or_generate(split)
            self._samples[split] = [
                Sample(dataset=self.name, split=split, domain=str(d), label=REAL if d == REAL_DOMAIN else FAKE,
                       video=str(v), frame=int(f), array=img)
                for img, d, v, f in zip(arrays["images"], arrays["domains"], arrays["videos"], arrays["frames"])
            ]
        return self._samples[split]

    def real_videos(self, split: str) -> np.ndarray:
        """(V, F, S, S, 3) uint8: the real videos of `split`, the same pixels `samples(split)` holds, generated
        without the forged ones (what the demo's tiny tower is pretrained on, `bench.tiny_tower`)."""
        c = self.cfg
        n, size = getattr(c.real_videos, split), c.image_size
        if not n:
            return np.zeros((0, c.frames_per_video, size, size, 3), np.uint8)
        return np.stack([self._video(split, REAL_DOMAIN, i) for i in range(n)])

    # ---- cache ------------------------------------------------------------------------------------------------
    def cache_path(self, split: str) -> Path:
        fields = dataclasses.asdict(self.cfg)
        for unused in ("name", "root"):  # neither changes the pixels
            fields.pop(unused)
        blob = json.dumps({"generator": GENERATOR_VERSION, **fields}, sort_keys=True)
        return self.cache_dir / f"synthetic-{hashlib.sha256(blob.encode()).hexdigest()[:16]}" / f"{split}.npz"

    def _load_or_generate(self, split: str) -> dict[str, np.ndarray]:
        path = self.cache_path(split)
        if path.is_file():
            with np.load(path, allow_pickle=False) as npz:
                return {k: npz[k] for k in npz.files}
        arrays = self._generate(split)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Write-then-rename: a crash or a concurrent run never leaves a half-written file under the final name.
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, **arrays)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return arrays

    # ---- generation -------------------------------------------------------------------------------------------
    def _generate(self, split: str) -> dict[str, np.ndarray]:
        """Every frame of `split`: real videos first, then each family in `domains()` order."""
        c = self.cfg
        plan = [(REAL_DOMAIN, i) for i in range(getattr(c.real_videos, split))]
        plan += [(d, i) for d in FAMILIES for i in range(getattr(c.fake_videos, split))]
        images, domains, videos, frames = [], [], [], []
        for domain, index in plan:
            clip = self._video(split, domain, index)  # (F, S, S, 3) uint8
            images.append(clip)
            domains += [domain] * len(clip)
            videos += [f"{self.name}/{domain}/{split}_{index:04d}"] * len(clip)
            frames += range(len(clip))
        size = c.image_size
        return {"images": np.concatenate(images) if images else np.zeros((0, size, size, 3), np.uint8),
                "domains": np.array(domains, dtype=str), "videos": np.array(videos, dtype=str),
                "frames": np.array(frames, dtype=np.int64)}

    def _video(self, split: str, domain: str, index: int) -> np.ndarray:
        """(F, S, S, 3) uint8 frames of one video; depends only on (seed, split, domain, index) and the config."""
        c, size = self.cfg, self.cfg.image_size
        domain_id = 0 if domain == REAL_DOMAIN else 1 + list(FAMILIES).index(domain)
        rng = np.random.default_rng([c.seed, SPLITS.index(split), domain_id, index])
        forge_seed = int(rng.integers(2**63))
        base_size = size + 2 * JITTER
        if rng.random() < c.photo_fraction:
            base = photo_crop(rng, base_size, split)
        else:
            base = procedural_scene(rng, base_size)
        quality = int(rng.integers(c.final_jpeg[0], c.final_jpeg[1] + 1))
        noise = rng.uniform(*c.sensor_noise) / 255
        y, x = JITTER, JITTER
        clip = []
        for t in range(c.frames_per_video):
            frame = base[y:y + size, x:x + size] * (1 + 0.01 * rng.standard_normal())  # exposure flicker
            frame = np.clip(frame + noise * rng.standard_normal(frame.shape), 0, 1).astype(np.float32)
            if domain != REAL_DOMAIN:
                # Parameters are drawn per frame: per-frame forgery pipelines flicker, which is why video-level
                # scores (averaged over frames) beat frame-level ones on real benchmarks too.
                frame, _ = FAMILIES[domain](frame, np.random.default_rng([forge_seed, t]), getattr(c.strength, domain))
            clip.append(np.rint(jpeg(frame, quality) * 255).astype(np.uint8))
            y, x = np.clip(np.array([y, x]) + rng.integers(-1, 2, 2), 0, 2 * JITTER)  # camera / tracker drift
        return np.stack(clip)


def _validate(c: SyntheticConfig, name: str) -> None:
    def fail(key: str, why: str) -> None:
        raise BenchError(f"dataset {name!r}: {key} {why}", key=f"datasets.{name}.{key}")

    if c.image_size < 32 or c.image_size % 8:
        fail("image_size", f"must be a multiple of 8 and at least 32, got {c.image_size}")
    if c.frames_per_video < 1:
        fail("frames_per_video", f"must be at least 1, got {c.frames_per_video}")
    for group in ("fake_videos", "real_videos"):
        for split in SPLITS:
            if getattr(getattr(c, group), split) < 0:
                fail(f"{group}.{split}", "must not be negative")
    if not 0.0 <= c.photo_fraction <= 1.0:
        fail("photo_fraction", f"must be in [0, 1], got {c.photo_fraction}")
    lo, hi = c.final_jpeg
    if not 1 <= lo <= hi <= 100:
        fail("final_jpeg", f"must be [low, high] with 1 <= low <= high <= 100, got {list(c.final_jpeg)}")
    lo, hi = c.sensor_noise
    if not 0 <= lo <= hi:
        fail("sensor_noise", f"must be [low, high] with 0 <= low <= high, got {list(c.sensor_noise)}")
    for family in FAMILIES:
        if not 0.0 <= getattr(c.strength, family) <= 2.0:
            fail(f"strength.{family}", f"must be in [0, 2], got {getattr(c.strength, family)}")

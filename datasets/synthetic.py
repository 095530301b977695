"""`synthetic`: an embedded forgery benchmark, generated from a seed on first use (no data, no download).

It exists so that `bench run` works on a fresh machine and so that tests exercise real cross-domain behaviour:
each forgery family below is its own domain, with train/val/test splits, and a detector trained on some families
can be tested on a held-out one. It is a *stand-in*, not a face-forgery dataset: numbers on it say that the
pipeline works and that generalisation gaps show up, not how a detector fares on real deepfakes.

"Real" videos. Each video starts from one source image: either a procedural face-like scene (a shaded skin
ellipse with hair, eyes and mouth over a background whose texture has the 1/f amplitude spectrum of natural
images) or a crop of one of the photographs shipped inside scikit-image (random scale, flip, colour and gamma;
each split crops a disjoint region of every photograph). Frames are crops of the source that drift by a pixel
or so, with fresh sensor noise and a small exposure change, and every frame is finally saved as JPEG (quality
drawn per video), as published videos are.

Fake videos. Each is made from its *own* source image (drawn like a real one, never shown as real), manipulated
frame by frame with the same per-video parameters, then saved as JPEG exactly like the real ones. Families:
  blend         A colour-shifted, re-blurred or sharpened, slightly rescaled/shifted copy of the face pasted back
                under a soft elliptical mask: the blending boundary and the inside/outside inconsistency that
                Face X-ray (Li et al., CVPR 2020) detects, generated as in self-blended images (SBI; Shiohara &
                Yamasaki, CVPR 2022), which blend an image with an altered copy of itself.
  gan_upsample  Re-rendering from half resolution through a stride-2 transposed convolution whose two phases have
                unequal gain (a checkerboard), keeping only part of the original detail: the periodic spectral
                peaks and high-frequency deficit of up-convolution generators (Durall et al., CVPR 2020).
  diffusion     The low band of the spectrum kept, the high band replaced by re-synthesised power-law noise of
                matched energy: the mismatched fine-scale statistics that Corvi et al. (ICASSP 2023) find in the
                spectra of diffusion images. Our choice: no periodic peaks (which Corvi et al. also see for some
                models), so the family stays distinct from `gan_upsample` and works as a held-out domain.
  warp          A smooth local displacement field over the face region, resampled with bilinear interpolation:
                the geometric warp of face-reenactment pipelines and its interpolation blur (resampling traces,
                Popescu & Farid, IEEE TSP 2005).
  double_jpeg   A first, lower-quality JPEG compression on an 8x8 grid shifted against the final one: the
                non-aligned double-compression traces of spliced/re-saved images (Bianchi & Piva, IEEE TIFS 2012).
`strength.<family>` (0..1) scales each artifact; the defaults are tuned so that the `demo` protocol with the
`dummy` detector scores clearly better in-domain than on held-out `diffusion`, with neither at chance nor perfect.

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
from typing import Any

import numpy as np
from omegaconf import OmegaConf

from bench.dataset import SPLITS, DatasetAdapter, DatasetConfig
from bench.errors import BenchError
from bench.records import FAKE, REAL, REAL_DOMAIN, Sample
from bench.synthetic_ops import FAMILIES, jpeg, photo_crop, procedural_scene

GENERATOR_VERSION = 1  # bump whenever generated pixels change for the same config
JITTER = 3  # pixels a frame's crop may drift from the centre of its source image


@dataclass
class SplitSizes:
    train: int = 0
    val: int = 0
    test: int = 0


@dataclass
class Strengths:
    """Artifact strength per family, 0 (invisible) .. 1 (obvious)."""

    blend: float = 0.5
    gan_upsample: float = 0.5
    diffusion: float = 0.5
    warp: float = 0.5
    double_jpeg: float = 0.5


@dataclass
class SyntheticConfig(DatasetConfig):
    name: str = "synthetic"
    root: str | None = None  # unused: the data is generated into the cache folder
    seed: int = 0
    image_size: int = 64  # a multiple of 8 (whole JPEG blocks)
    frames_per_video: int = 4
    fake_videos: SplitSizes = field(default_factory=lambda: SplitSizes(train=40, val=10, test=20))  # per family
    # Twice the per-family count: a test set (one family + all real videos) is 1:2 fake:real, and training on four
    # families is 2:1 - the imbalance real benchmarks have, small enough for a 4-epoch demo.
    real_videos: SplitSizes = field(default_factory=lambda: SplitSizes(train=80, val=20, test=40))
    photo_fraction: float = 0.5  # share of source images cropped from photographs (the rest are procedural)
    final_jpeg: tuple[int, int] = (80, 95)  # quality range of the JPEG every frame is saved with
    sensor_noise: tuple[float, float] = (2.0, 6.0)  # std range (in 8-bit levels) of the camera noise of a video
    strength: Strengths = field(default_factory=Strengths)


class Synthetic(DatasetAdapter):
    name = "synthetic"
    description = "embedded synthetic forgery benchmark: 5 forgery families, generated from a seed (no data needed)"
    config_class = SyntheticConfig
    needs_root = False

    def __init__(self, cfg: Any, cache_dir: str | Path) -> None:
        super().__init__(_typed(cfg), cache_dir)
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
        forge_seed = int(rng.integers(2**63))  # one draw per video: every frame is forged with the same parameters
        base_size = size + 2 * JITTER
        if rng.random() < c.photo_fraction:
            base = photo_crop(rng, base_size, split)
        else:
            base = procedural_scene(rng, base_size)
        quality = int(rng.integers(c.final_jpeg[0], c.final_jpeg[1] + 1))
        noise = rng.uniform(*c.sensor_noise) / 255
        y, x = JITTER, JITTER
        clip = []
        for _ in range(c.frames_per_video):
            frame = base[y:y + size, x:x + size] * (1 + 0.01 * rng.standard_normal())  # exposure flicker
            frame = np.clip(frame + noise * rng.standard_normal(frame.shape), 0, 1).astype(np.float32)
            if domain != REAL_DOMAIN:
                frame, _ = FAMILIES[domain](frame, np.random.default_rng(forge_seed), getattr(c.strength, domain))
            clip.append(np.rint(jpeg(frame, quality) * 255).astype(np.uint8))
            y, x = np.clip(np.array([y, x]) + rng.integers(-1, 2, 2), 0, 2 * JITTER)  # camera / tracker drift
        return np.stack(clip)


def _typed(cfg: Any) -> SyntheticConfig:
    """Accept the dataclass, an OmegaConf node (as composed by Hydra) or None (defaults)."""
    if isinstance(cfg, SyntheticConfig):
        return cfg
    schema = OmegaConf.structured(SyntheticConfig)
    return OmegaConf.to_object(OmegaConf.merge(schema, cfg) if cfg is not None else schema)


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
    for family in FAMILIES:
        if not 0.0 <= getattr(c.strength, family) <= 1.0:
            fail(f"strength.{family}", f"must be in [0, 1], got {getattr(c.strength, family)}")

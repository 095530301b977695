"""The demo's "CLIP": the tiny ViT tower pretrained once, self-supervised, on the synthetic benchmark's real images.

A frozen random tower gives the frozen-backbone detectors (`clip_probe`, `moa_clip`) nothing to read: on the demo
they scored at or below chance. CLIP's own pretraining (400M image-text pairs) cannot run here, so the demo's
stand-in learns what CLIP's features are known to carry and forgery detectors lean on: low-level image quality
(CLIP's embedding predicts perceived quality, Wang et al., "Exploring CLIP for Assessing the Look and Feel of
Images", AAAI 2023). The pretext is the synthetic-distortion one of quality-aware self-supervised learning
(CONTRIQUE, Madhusudana et al., IEEE TIP 2022): every real frame is degraded in one of `DISTORTIONS` ways (or not)
and the tower, with a small head discarded afterwards, classifies which. Only real images are used; no forgery
family and no real/fake label is ever seen. The distortions are generic (blur, resampling, JPEG, noise), applied to
the whole frame or, for half of the frames, inside a random soft ellipse (`localise`): classifying them then needs
features that notice a region whose statistics differ from the rest, as a pasted face's do. The forgery families are
parameterised differently, and the held-out `diffusion` family replaces the high band with synthetic noise, which no
distortion does. (Measured with a logistic-regression probe on the embedding, 600 steps: local regions lift blend
and warp from 0.69/0.57 to 0.80/0.73 AUC; README, "The demo".)

Deterministic: seeded generators and a fixed sample order; the weights are cached as a weights-only state dict of the
image tower beside the synthetic data (`<cache>/synthetic/tiny-tower-<hash>.pt`, `<cache>` = $BENCH_CACHE, default
~/.cache/forgerybench), keyed by a hash of the recipe, this module's version, the data generator's version and the
tower's architecture, so a changed recipe retrains and a stale file is never read. `bench.openclip` resolves the
tag `synthetic` of the tiny arch (`detector.backbone.pretrained=synthetic`) to this file, training it on first use.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

RECIPE_VERSION = 4  # bump whenever the training code changes the weights for the same recipe
# The pretext's classes: the frame as it is (0), or one generic degradation of the whole frame, (kind, level).
DISTORTIONS = (("none", 0.0), ("blur", 0.6), ("blur", 1.2), ("resample", 0.7), ("resample", 0.5),
               ("jpeg", 60), ("jpeg", 30), ("noise", 4.0), ("noise", 8.0))


@dataclass(frozen=True)
class TowerRecipe:
    """How the tiny tower is pretrained (the demo's defaults; the README gives the time they take)."""

    seed: int = 0
    data_seed: int = 0  # the synthetic benchmark's seed (default config otherwise): its real training videos,
    videos: int = 400  # the first `videos` of them (400 = all of the default config's)
    steps: int = 800  # ~2 minutes on 2 idle CPU cores (README)
    batch: int = 128
    lr: float = 2e-3
    weight_decay: float = 0.05
    warmup_steps: int = 50
    head_hidden: int = 0  # the pretext head (0 = linear), discarded after pretraining
    local: float = 0.5  # share of degraded frames degraded only inside a random soft ellipse (the rest: whole frame)


DEFAULT_RECIPE = TowerRecipe()


def cache_dir() -> Path:
    """Where the synthetic data lives: `paths.cache`'s default (bench.config.PathsConfig, resolved here) + /synthetic."""
    from omegaconf import OmegaConf

    from bench.config import PathsConfig

    return Path(OmegaConf.structured(PathsConfig).cache).expanduser() / "synthetic"


def tower_path(recipe: TowerRecipe, arch: str, model_cfg: dict) -> Path:
    from bench.datasets.synthetic import GENERATOR_VERSION

    blob = json.dumps({"recipe": dataclasses.asdict(recipe), "version": RECIPE_VERSION, "arch": arch,
                       "model_cfg": model_cfg, "generator": GENERATOR_VERSION}, sort_keys=True)
    return cache_dir() / f"tiny-tower-{hashlib.sha256(blob.encode()).hexdigest()[:16]}.pt"


def pretrained_tower(arch: str, model_cfg: dict, build_visual: Callable[[], nn.Module]) -> str:
    """Path of the pretrained tower's state dict (`DEFAULT_RECIPE`), training and caching it first if needed.

    `build_visual()` returns a fresh, randomly initialised tower of `arch` (bench.openclip builds it)."""
    recipe = DEFAULT_RECIPE
    path = tower_path(recipe, arch, model_cfg)
    if path.is_file():
        return str(path)
    from filelock import FileLock

    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(f"{path}.lock"):  # runs started together (a sweep, DDP ranks) train it once; the others wait
        if path.is_file():
            return str(path)
        start = time.perf_counter()
        print(f"pretraining the demo's tiny CLIP tower once ({recipe.steps} steps, about 2 minutes on 2 CPU cores; "
              f"cached in {path.parent}) ...", flush=True)
        state = pretrain(build_visual, recipe)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")  # write-then-rename: never a half-written file
        try:
            with os.fdopen(fd, "wb") as f:
                torch.save(state, f)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        print(f"pretrained the tiny tower in {time.perf_counter() - start:.0f} s: {path}", flush=True)
    return str(path)


def real_frames(recipe: TowerRecipe) -> Tensor:
    """(N, 3, S, S) uint8: every frame of the synthetic benchmark's first `recipe.videos` real training videos (its
    default config otherwise; a video's pixels do not depend on how many others there are)."""
    from bench.datasets.synthetic import SplitSizes, Synthetic, SyntheticConfig

    cfg = SyntheticConfig(seed=recipe.data_seed, real_videos=SplitSizes(train=recipe.videos))
    videos = Synthetic(cfg, cache_dir()).real_videos("train")  # (V, F, S, S, 3)
    return torch.from_numpy(videos.reshape(-1, *videos.shape[2:])).permute(0, 3, 1, 2).contiguous()


def jpeg(image: Tensor, quality: int) -> Tensor:
    """(3, S, S) uint8 -> the same image after JPEG at `quality` (OpenCV: torchvision's codec is deprecated)."""
    import cv2

    bgr = np.ascontiguousarray(image.permute(1, 2, 0).numpy()[..., ::-1])  # (S, S, 3)
    _, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
    return torch.from_numpy(np.ascontiguousarray(cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1])).permute(2, 0, 1)


def distort(images: Tensor, kind: str, level: float, gen: torch.Generator) -> Tensor:
    """One of `DISTORTIONS` on a batch of frames: (N, 3, S, S) uint8 -> (N, 3, S, S) uint8."""
    from torchvision.transforms.v2.functional import gaussian_blur

    if kind == "none":
        return images.clone()
    if kind == "jpeg":
        return torch.stack([jpeg(img, int(level)) for img in images])
    x = images.float()
    if kind == "blur":
        x = gaussian_blur(x, kernel_size=5, sigma=[level])
    elif kind == "resample":  # down (area) and back up (bilinear): the softness of a resized, re-rendered image
        size = images.shape[-1]
        x = F.interpolate(F.interpolate(x, size=round(size * level), mode="area"), size=size, mode="bilinear")
    elif kind == "noise":
        x = x + level * torch.randn(x.shape, generator=gen)
    return x.round().clamp(0, 255).to(torch.uint8)


def localise(images: Tensor, degraded: Tensor, share: float, gen: torch.Generator) -> Tensor:
    """Keep `degraded` only inside a random soft-edged ellipse (a quarter to three quarters of the side across) for
    a `share` of the frames; the others keep it whole. (N, 3, S, S) uint8 each -> (N, 3, S, S) uint8."""
    n, size = len(images), images.shape[-1]
    grid = torch.arange(size, dtype=torch.float32)
    centre = (torch.rand(2, n, 1, 1, generator=gen) * 0.5 + 0.25) * size  # (2, N, 1, 1): y, x
    radius = (torch.rand(2, n, 1, 1, generator=gen) * 0.3 + 0.15) * size
    d = ((grid.view(1, -1, 1) - centre[0]) / radius[0]) ** 2 + ((grid.view(1, 1, -1) - centre[1]) / radius[1]) ** 2
    mask = (1.5 - d).clamp(0, 1)  # (N, S, S): 1 inside, a soft edge, 0 outside
    whole = torch.rand(n, generator=gen) >= share
    mask = torch.where(whole.view(-1, 1, 1), torch.ones_like(mask), mask).unsqueeze(1)  # (N, 1, S, S)
    return (mask * degraded.float() + (1 - mask) * images.float()).round().clamp(0, 255).to(torch.uint8)


def pretrain(build_visual: Callable[[], nn.Module], recipe: TowerRecipe) -> dict[str, Tensor]:
    """Train a fresh tower to classify the distortion of real frames; returns the tower's state dict."""
    from open_clip.constants import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD

    gen = torch.Generator().manual_seed(recipe.seed)
    frames = real_frames(recipe)  # (N, 3, S, S)
    pool = torch.stack([localise(frames, distort(frames, kind, level, gen), recipe.local, gen) if kind != "none"
                        else frames for kind, level in DISTORTIONS])  # (K, N, 3, S, S)
    torch.manual_seed(recipe.seed)
    visual = build_visual()
    embed_dim = visual(torch.zeros(1, *frames.shape[1:])).shape[-1]
    head = (nn.Sequential(nn.Linear(embed_dim, recipe.head_hidden), nn.GELU(), nn.Linear(recipe.head_hidden, len(pool)))
            if recipe.head_hidden else nn.Linear(embed_dim, len(pool)))
    opt = torch.optim.AdamW([*visual.parameters(), *head.parameters()], lr=recipe.lr, weight_decay=recipe.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / recipe.warmup_steps)
                                              * 0.5 * (1 + np.cos(np.pi * s / recipe.steps)))
    mean = torch.tensor(OPENAI_DATASET_MEAN).view(1, 3, 1, 1)  # the tag's preprocessing (bench.openclip)
    std = torch.tensor(OPENAI_DATASET_STD).view(1, 3, 1, 1)
    visual.train()
    from tqdm.auto import tqdm

    for _ in tqdm(range(recipe.steps), desc="pretrain tiny tower", leave=False, disable=None):  # None: a terminal only
        kind = torch.randint(len(pool), (recipe.batch,), generator=gen)
        x = pool[kind, torch.randint(pool.shape[1], (recipe.batch,), generator=gen)]  # (B, 3, S, S) uint8
        flip = torch.rand(recipe.batch, generator=gen) < 0.5
        x = torch.where(flip.view(-1, 1, 1, 1), x.flip(-1), x).float() / 255
        loss = F.cross_entropy(head(visual((x - mean) / std)), kind)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    return {k: v.detach().clone() for k, v in visual.eval().state_dict().items()}

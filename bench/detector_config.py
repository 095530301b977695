"""Detector config schemas, importable without torch, torchvision, timm or open_clip.

Composing a run config (`bench run --cfg`, every config error, `bench list`) only needs these dataclasses, so they
live apart from the model code: importing torch and friends costs seconds, composing costs a fraction of one.
A detector's config class also carries what composition needs from the detector as ClassVars: its published
training `recipe` and its `tiny` variant (see docs/plugins.md, "Why configs live apart from models").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from omegaconf import MISSING

from bench.checks import Check, at_least, between, length

# open_clip.constants.OPENAI_DATASET_MEAN/STD, copied because importing open_clip imports torch (a test checks them)
OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)
TINY_ARCH = "ViT-Tiny-test"  # a CPU-sized open_clip tower registered by bench/openclip.py (demo and tests)


@dataclass
class AugmentConfig:
    checks: ClassVar[dict[str, Check]] = {
        "hflip": between(0, 1), "blur": between(0, 1), "color": between(0, 1), "jpeg": between(0, 1),
        "blur_sigma": length(2), "jpeg_quality": length(2),
    }

    hflip: float = 0.0  # probability of a horizontal flip
    blur: float = 0.0  # probability of a Gaussian blur
    blur_sigma: tuple[float, float] = (0.1, 2.0)
    color: float = 0.0  # probability of brightness/contrast OR hue/saturation jitter (one of the two, at random)
    jpeg: float = 0.0  # probability of a JPEG re-compression
    jpeg_quality: tuple[int, int] = (40, 100)

    @property
    def enabled(self) -> bool:
        return any(p > 0 for p in (self.hflip, self.blur, self.color, self.jpeg))


@dataclass
class BackboneConfig:
    """An open_clip image tower (built by `bench.openclip.build_image_tower`)."""

    arch: str = "ViT-B-16"  # open_clip model name (ViT-B-32, ViT-B-16, ViT-L-14, ...) or TINY_ARCH
    pretrained: str | None = "openai"  # tag of open_clip's table, local checkpoint file, or null = random init
    quick_gelu: bool | None = None  # null = the tag's setting; OpenAI's (True) for a file or random init
    mean: tuple[float, float, float] | None = None  # null = the tag's; OpenAI's for a file or random init
    std: tuple[float, float, float] | None = None


@dataclass
class DetectorConfig:
    """Fields every detector config has; subclasses add their own (with published defaults).

    ClassVars (not config fields) a subclass sets:
      recipe: trainer overrides for its published training recipe (fields of `bench.config.TrainerConfig`).
      tiny: detector-config overrides that make it train in seconds on a CPU (`scale=tiny`: the demo, the tests).
      checks: field name -> value rule (`bench.checks`), applied when the config is composed; extend the base's
        with `checks = {**DetectorConfig.checks, "width": at_least(1)}`.
    """

    recipe: ClassVar[dict[str, Any]] = {}
    tiny: ClassVar[dict[str, Any]] = {}
    checks: ClassVar[dict[str, Check]] = {"input_size": at_least(1)}  # value rules, see bench/checks.py

    name: str = MISSING  # registry name; selects the class (never a free import path)
    input_size: int = 224
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    std: tuple[float, float, float] = (0.5, 0.5, 0.5)
    augment: AugmentConfig = field(default_factory=AugmentConfig)

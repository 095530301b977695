"""Config schemas of the built-in detectors: defaults, published training recipe and tiny variant.

They live here, not in the model files, so that composing a config never imports torch, timm or open_clip
(docs/plugins.md explains the split). Each model file's docstring says where its defaults come from.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from bench.checks import Check, one_of
from bench.detector_config import OPENAI_MEAN, OPENAI_STD, TINY_ARCH, AugmentConfig, BackboneConfig, DetectorConfig

# DeepfakeBench's xception.yaml and f3net.yaml (Yan et al., NeurIPS 2023 D&B) train both with the same recipe:
# Adam(0.9, 0.999) lr 2e-4, weight decay 5e-4, batch 32, 10 epochs, 32 frames per video.
DEEPFAKEBENCH_RECIPE = {
    "optimizer": "adam", "lr": 2e-4, "weight_decay": 5e-4, "batch_size": 32, "epochs": 10, "frames_per_video": 32
}


@dataclass
class DummyConfig(DetectorConfig):
    recipe: ClassVar[dict[str, Any]] = {"optimizer": "adam", "lr": 1e-3, "weight_decay": 1e-4, "batch_size": 32, "epochs": 5}
    tiny: ClassVar[dict[str, Any]] = {"width": 8}

    name: str = "dummy"
    input_size: int = 64
    width: int = 16  # channels of the first stage; doubled at each of the `depth` stages
    depth: int = 3
    augment: AugmentConfig = field(default_factory=lambda: AugmentConfig(hflip=0.5))


@dataclass
class ClipProbeConfig(DetectorConfig):
    # Our choice (a linear head converges fast; the cache makes extra epochs nearly free).
    recipe: ClassVar[dict[str, Any]] = {"optimizer": "adam", "lr": 1e-3, "weight_decay": 0.0, "batch_size": 64, "epochs": 10}
    # the demo's pretrained tiny tower (bench.tiny_tower): a random tower gives a probe nothing to read
    tiny: ClassVar[dict[str, Any]] = {"backbone": {"arch": TINY_ARCH, "pretrained": "synthetic"}, "input_size": 64}

    name: str = "clip_probe"
    backbone: BackboneConfig = field(default_factory=BackboneConfig)  # ViT-B-16, OpenAI weights
    input_size: int = 224  # must equal the tower's native size (ViT-B-16: 224); checked at build
    # Normalisation follows the backbone's weights (detector.backbone.mean/std); these stay null.
    mean: tuple[float, float, float] | None = None
    std: tuple[float, float, float] | None = None
    cache_features: bool = True  # train the head on cached embeddings when there is no augmentation


@dataclass
class XceptionConfig(DetectorConfig):
    recipe: ClassVar[dict[str, Any]] = DEEPFAKEBENCH_RECIPE
    tiny: ClassVar[dict[str, Any]] = {"input_size": 64, "pretrained": None, "width_mult": 0.125, "middle_blocks": 1}

    name: str = "xception"
    input_size: int = 256  # DeepfakeBench's resolution; Xception was pretrained at 299 but pools globally
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    std: tuple[float, float, float] = (0.5, 0.5, 0.5)
    augment: AugmentConfig = field(
        default_factory=lambda: AugmentConfig(hflip=0.5, blur=0.5, color=0.5, jpeg=0.5, jpeg_quality=(40, 100))
    )
    # timm tag (needs internet), local weights file, or null = random init. The tag's weights fit width_mult=1 only.
    pretrained: str | None = "tf_in1k"
    drop_rate: float = 0.0  # dropout before the classifier; DeepfakeBench uses none
    width_mult: float = 1.0  # channel scale of every stage; 1.0 = timm's legacy_xception
    middle_blocks: int = 8  # middle-flow blocks; 8 = timm's legacy_xception


@dataclass
class F3NetConfig(DetectorConfig):
    recipe: ClassVar[dict[str, Any]] = DEEPFAKEBENCH_RECIPE  # f3net.yaml's recipe equals xception.yaml's
    tiny: ClassVar[dict[str, Any]] = {"input_size": 64, "pretrained": None, "width_mult": 0.125, "middle_blocks": 1}

    name: str = "f3net"
    input_size: int = 299  # the paper's; the FAD DCT is built for exactly this size
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    std: tuple[float, float, float] = (0.5, 0.5, 0.5)
    augment: AugmentConfig = field(default_factory=AugmentConfig)  # none, as DeepfakeBench's f3net.yaml
    streams: str = "both"  # both = FAD + LFS + MixBlocks (the paper); fad = DeepfakeBench's FAD-only F3Net
    pretrained: str | None = "tf_in1k"  # ImageNet Xception for both streams: timm tag, local file, or null
    lfs_window: int = 10
    lfs_stride: int = 2
    lfs_padding: int = 4  # 299 -> 149×149, the size the reference code asserts
    lfs_bands: int = 6  # M
    mix_reduction: int = 8  # MixBlock query/key channels = C / mix_reduction
    dropout: float = 0.5
    width_mult: float = 1.0  # stream widths; 1.0 = legacy_xception (see detectors/xception.py)
    middle_blocks: int = 8


MOA_CHOICES = {  # MoA-CLIP's categorical fields -> their values (checked when composed and when built)
    "adapter_input": ("ffn_input", "residual"),
    "router_input": ("cls", "mean", "token"),
    "schedule": ("iteration", "epoch", "sequential"),
    "sim_pairs": ("all", "same_label"),
    "cac_prototypes": ("domain", "domain_label"),
    "ablate": ("none", "att", "cac", "sim"),
}


@dataclass
class MoAClipConfig(DetectorConfig):
    checks: ClassVar[dict[str, Check]] = {**DetectorConfig.checks, **{k: one_of(*v) for k, v in MOA_CHOICES.items()}}
    recipe: ClassVar[dict[str, Any]] = {
        "optimizer": "adamw", "lr": 5e-4, "weight_decay": 0.01, "scheduler": "cosine", "warmup_steps": 500,
        "min_lr": 1e-6, "grad_clip": 1.0, "batch_size": 64, "epochs": 50, "sampler": "domain_balanced"}
    # adapter_dim stays 128 at tiny scale, so the ablation tables pivot on the same values at both scales
    tiny: ClassVar[dict[str, Any]] = {"backbone": {"arch": TINY_ARCH, "pretrained": "synthetic"}, "input_size": 64,
                                      "router_hidden": 16, "head_hidden": 16, "adapter_epochs": 2}

    name: str = "moa_clip"
    backbone: BackboneConfig = field(default_factory=BackboneConfig)  # ViT-B-16, openai weights
    input_size: int = 224  # must equal the tower's image size (checked)
    # not read: the transforms use the tower's mean/std, which follow its weights (set backbone.mean/std to change)
    mean: tuple[float, float, float] = OPENAI_MEAN
    std: tuple[float, float, float] = OPENAI_STD
    # MoA
    adapter_dim: int = 128  # d_a. Section 5.1 says 256, but Table 1's numbers are Table 5's 128 row
    adapter_input: str = "ffn_input"  # h_in: "ffn_input" = ln_2(x) | "residual" = x (block stream after attention)
    router_hidden: int = 128
    router_input: str = "cls"  # "cls" | "mean" (one alpha per image) | "token" (per token)
    head_hidden: int = 256
    # two-step schedule
    schedule: str = "iteration"  # "iteration" | "epoch" | "sequential"
    phase_period: int = 1  # steps ("iteration") or epochs ("epoch") per phase before switching
    adapter_epochs: int = 25  # "sequential": epochs of step 1 (adapters) before step 2 (router)
    # losses (Eq. 12)
    beta_cls: float = 1.0
    beta_att: float = 1.0
    beta_cac: float = 0.5
    beta_sim: float = 0.1
    ablate: str = "none"  # "none" | "att" | "cac" | "sim": zero that beta (Table 3 ablation as one sweep key)
    att_layers: list[int] = field(default_factory=lambda: [-1])  # blocks whose attention L_att aligns
    att_head_mean: bool = True  # average heads into one (T, T) map (else align per head)
    cac_rate: float = 0.1  # lambda of Eq. 9 (not given in the paper)
    # Defaults below depart from the paper's literal text, measured in the README ("MoA-CLIP: losses that train");
    # feature_norm=false, cac_prototypes=domain, sim_pairs=all are the literal paper.
    feature_norm: bool = True  # L2-normalise f(x) for L_cac/L_sim: raw CLIP embeddings make them outweigh L_cls 100x
    cac_prototypes: str = "domain_label"  # one prototype per "domain" (paper) | per (domain, label)
    sim_pairs: str = "same_label"  # "all" cross-domain pairs (paper) | "same_label" (never pulls real to fake)


@dataclass
class ClipFtConfig(DetectorConfig):
    recipe: ClassVar[dict[str, Any]] = DEEPFAKEBENCH_RECIPE  # DeepfakeBench's clip.yaml trains as xception.yaml
    tiny: ClassVar[dict[str, Any]] = {"backbone": {"arch": TINY_ARCH, "pretrained": "synthetic", "mean": None, "std": None},
                                      "input_size": 64}

    name: str = "clip_ft"
    # DeepfakeBench normalises with 0.5 / 0.5, not CLIP's own mean/std; null backbone.mean/std = the weights' own
    backbone: BackboneConfig = field(default_factory=lambda: BackboneConfig(mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5)))
    input_size: int = 224  # must equal the tower's native size; checked at build
    # Normalisation follows detector.backbone.mean/std; these stay null.
    mean: tuple[float, float, float] | None = None
    std: tuple[float, float, float] | None = None
    augment: AugmentConfig = field(
        default_factory=lambda: AugmentConfig(hflip=0.5, blur=0.5, color=0.5, jpeg=0.5, jpeg_quality=(40, 100)))

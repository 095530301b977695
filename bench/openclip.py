"""Shared loader for open_clip image towers (the CLIP linear probe and MoA-CLIP build on it).

Only the image tower is built (`open_clip.model._build_vision_tower`, the function CLIP itself uses for `.visual`),
so no text tower is allocated. Written against open_clip_torch 3.3.0: `_build_vision_tower` is private and the
block layout below changes between releases, so keep the version pinned.

Weights (`BackboneConfig.pretrained`), resolved like timm's `pretrained_cfg`, never a path in code:
  - a tag of open_clip's pretrained table for `arch` (e.g. "openai"): downloaded where there is internet (or found in
    the Hugging Face cache); offline, a `BenchError` says to pass a local file instead. huggingface_hub retries for
    about a minute before giving up; `HF_HUB_OFFLINE=1` makes it use the cache only and fail at once;
  - a local checkpoint file: an open_clip / OpenAI-format CLIP state dict (only its `visual.*` keys are used) or a
    bare image-tower state dict (`torch.save(tower.visual.state_dict(), path)`); keys that do not fit fail, named;
  - null: random init (demo and tests), recorded as `weights="random"`.

Preprocessing and activation follow the weights, not the architecture: open_clip gives a raw checkpoint path the
architecture's default preprocessing, and warns (only) when QuickGELU does not match a tag. Here, unless set
explicitly in the config, mean/std/quick_gelu come from the tag's pretrained config, and for a local file or random
init they are OpenAI CLIP's (OPENAI_DATASET_MEAN/STD, QuickGELU) - our choice, because the default backbone is
OpenAI's and a local copy of it is the usual offline case. Set `mean`/`std`/`quick_gelu` for other files.

Tower structure (open_clip 3.3.0 `VisionTransformer`, what MoA-CLIP hooks into):
  images (B, 3, S, S) -> conv1 (patchify) -> [cls] + patches + positional_embedding -> patch_dropout -> ln_pre
  -> transformer.resblocks (nn.ModuleList of `ResidualAttentionBlock`, tokens batch-first (B, 1 + N, width))
  -> ln_post on the cls token -> @ proj -> (B, embed_dim).
  `Transformer.forward` calls each block as `block(x, attn_mask=attn_mask)` (with grad checkpointing on:
  `checkpoint(block, x, None, None, attn_mask)`, i.e. `forward(q_x, k_x=None, v_x=None, attn_mask=None)`), so a
  wrapper replacing `resblocks[i]` must keep that signature. A default `ResidualAttentionBlock` computes
      x = x + ls_1(attention(ln_1(x)))    # attn: nn.MultiheadAttention(batch_first=True), need_weights=False
      x = x + ls_2(mlp(ln_2(x)))          # mlp: Sequential(c_fc, gelu (QuickGELU for OpenAI weights), c_proj)
  ls_1/ls_2 are LayerScale, or nn.Identity when the config has no ls_init_value (all OpenAI towers). Since the block
  discards the attention probabilities, getting them means calling `block.attn(h, h, h, need_weights=True,
  average_attn_weights=False)` on `h = block.ln_1(x)` yourself. Configs with qk_norm, scaled_cosine_attn, ... use
  `CustomResidualAttentionBlock` instead (another attention module).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from bench.detector_config import TINY_ARCH, BackboneConfig
from bench.errors import BenchError

if TYPE_CHECKING:
    import types

# Architectures registered by this module (not open_clip's table): CPU-sized towers for the demo and the tests.
# Same schema as open_clip's model_configs/*.json; kept here rather than written into site-packages.
_LOCAL_ARCHS: dict[str, dict[str, Any]] = {
    TINY_ARCH: {
        "embed_dim": 32,
        "vision_cfg": {"image_size": 64, "patch_size": 8, "width": 64, "layers": 2, "head_width": 32, "mlp_ratio": 4.0},
    },
}


# Tags of the local archs: "synthetic" = pretrained self-supervised on the synthetic benchmark's real videos
# (bench.tiny_tower), the demo's stand-in for CLIP's weights; OpenAI's preprocessing (the default) and QuickGELU.
_LOCAL_TAGS: dict[str, dict[str, Any]] = {"synthetic": {"local": True, "quick_gelu": True}}


@dataclass
class ImageTower:
    """A built image tower and the facts a detector needs about it."""

    visual: nn.Module  # open_clip VisionTransformer: (B, 3, S, S) -> (B, embed_dim)
    arch: str
    embed_dim: int  # dimension of the projected image embedding
    width: int  # transformer width (token dimension inside the blocks)
    image_size: int  # the input size the positional embedding was built for
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    weights: str  # what was loaded: "random", the tag (e.g. "openai"), or the file path

    @property
    def blocks(self) -> nn.ModuleList:
        """The transformer blocks, in order (see the module docstring for their structure)."""
        return resblocks(self.visual)

    def transform(self, augment: Any = None) -> Any:
        """The preprocessing the weights expect (size, mean, std), with `augment` (an AugmentConfig) if given."""
        from bench.transforms import build_transform

        return build_transform(self.image_size, self.mean, self.std, augment)

    def facts(self) -> dict[str, Any]:
        """What to record with a run about this tower (a detector's `describe()`)."""
        return {"arch": self.arch, "weights": self.weights, "input_size": self.image_size, "mean": list(self.mean),
                "std": list(self.std)}


def detector_tower(cfg: Any, own_mean_std: bool = True) -> ImageTower:
    """The tower of a CLIP-based detector's config (`cfg.backbone`, checked against `cfg.input_size`).

    With `own_mean_std`, the detector-level `mean`/`std` must stay null: normalisation follows the weights (set
    `detector.backbone.mean/std` to change it)."""
    if own_mean_std and (cfg.mean is not None or cfg.std is not None):
        raise BenchError(f"{cfg.name} normalises with its backbone's mean/std: set detector.backbone.mean/std instead",
                         "detector.mean")
    tower = build_image_tower(cfg.backbone, key="detector.backbone")
    if cfg.input_size != tower.image_size:
        raise BenchError(f"{tower.arch} takes {tower.image_size}px input, got detector.input_size={cfg.input_size}",
                         "detector.input_size")
    return tower


def _open_clip() -> types.ModuleType:
    """open_clip, imported on first use: the CLI imports every detector module for its config class, and
    open_clip's import costs seconds."""
    import open_clip

    return open_clip


def resblocks(visual: nn.Module) -> nn.ModuleList:
    """`visual.transformer.resblocks`; a clear error for towers without it (timm- or ResNet-based archs)."""
    transformer = getattr(visual, "transformer", None)
    if transformer is None or not hasattr(transformer, "resblocks"):
        raise BenchError(f"{type(visual).__name__} has no transformer blocks: choose a ViT arch",
                         "detector.backbone.arch")
    return transformer.resblocks


def freeze(module: nn.Module) -> nn.Module:
    """Stop gradients through `module` and put it in eval mode. Note: a later `.train()` on a parent undoes the
    eval mode (not the requires_grad), so owners re-apply `.eval()` in their own `train()`."""
    module.requires_grad_(False)
    return module.eval()


def available_archs() -> list[str]:
    return [*_LOCAL_ARCHS, *_open_clip().list_models()]


def build_image_tower(cfg: BackboneConfig, key: str = "detector.backbone") -> ImageTower:
    """Build the image tower of `cfg.arch` and load `cfg.pretrained` into it (fp32, CPU).

    `key` is the config path of `cfg`, used in error messages (e.g. "detector.backbone").
    Raises BenchError for an unknown arch/tag, a failed download (offline) or a checkpoint whose keys do not fit.
    """
    open_clip = _open_clip()
    model_cfg = _model_config(cfg.arch, key)
    tag_cfg = _tag_config(cfg, key)
    quick_gelu = cfg.quick_gelu
    if quick_gelu is None:
        # a tag knows how its weights were trained; files and random init default to OpenAI's QuickGELU
        quick_gelu = bool(tag_cfg.get("quick_gelu", False) or model_cfg.get("quick_gelu", False)) if tag_cfg else True
    vision_cfg = open_clip.model.CLIPVisionCfg(**model_cfg["vision_cfg"])
    if vision_cfg.timm_model_name or isinstance(vision_cfg.layers, (tuple, list)):
        raise BenchError(f"{cfg.arch} is not an open_clip ViT (timm or ResNet tower): choose a ViT arch", f"{key}.arch")
    def build() -> nn.Module:
        return open_clip.model._build_vision_tower(model_cfg["embed_dim"], vision_cfg, quick_gelu=quick_gelu)

    if tag_cfg.get("local"):  # a tag of this module's own archs: trained here on first use, then cached
        from bench import tiny_tower

        path = tiny_tower.pretrained_tower(cfg.arch, model_cfg, build)
    else:
        path = _download(cfg, tag_cfg, key) if tag_cfg else cfg.pretrained  # before building: fail fast offline
    visual = build()
    if path is not None:
        _load_visual(visual, path, key)

    mean = cfg.mean if cfg.mean is not None else tag_cfg.get("mean", open_clip.constants.OPENAI_DATASET_MEAN)
    std = cfg.std if cfg.std is not None else tag_cfg.get("std", open_clip.constants.OPENAI_DATASET_STD)
    size = vision_cfg.image_size
    return ImageTower(
        visual=visual,
        arch=cfg.arch,
        embed_dim=int(model_cfg["embed_dim"]),
        width=int(vision_cfg.width),
        image_size=int(size if isinstance(size, int) else size[0]),
        mean=tuple(float(m) for m in mean),  # type: ignore[arg-type]
        std=tuple(float(s) for s in std),  # type: ignore[arg-type]
        weights="random" if cfg.pretrained is None else cfg.pretrained,  # the tag, or the file path
    )


def _model_config(arch: str, key: str) -> dict[str, Any]:
    if arch in _LOCAL_ARCHS:
        return dict(_LOCAL_ARCHS[arch])
    model_cfg = _open_clip().get_model_config(arch)
    if model_cfg is None:
        vits = [a for a in available_archs() if a.startswith("ViT")]
        raise BenchError(f"unknown open_clip arch {arch!r}; ViT archs include: {', '.join(vits[:12])}, ...",
                         f"{key}.arch")
    return model_cfg


def _tag_config(cfg: BackboneConfig, key: str) -> dict[str, Any]:
    """open_clip's pretrained config when `pretrained` is a tag of `arch`, {} when it is null or an existing file."""
    if cfg.pretrained is None:
        return {}
    if cfg.arch in _LOCAL_ARCHS and cfg.pretrained in _LOCAL_TAGS:
        return dict(_LOCAL_TAGS[cfg.pretrained])
    open_clip = _open_clip()
    tag_cfg = open_clip.pretrained.get_pretrained_cfg(cfg.arch, cfg.pretrained)
    if tag_cfg:
        return tag_cfg
    if os.path.isfile(cfg.pretrained):
        return {}
    tags = [*open_clip.list_pretrained_tags_by_model(cfg.arch), *(_LOCAL_TAGS if cfg.arch in _LOCAL_ARCHS else ())]
    raise BenchError(
        f"{cfg.pretrained!r} is neither a pretrained tag of {cfg.arch} (tags: {', '.join(tags) or 'none'}) "
        "nor an existing file",
        f"{key}.pretrained",
    )


def _download(cfg: BackboneConfig, tag_cfg: dict[str, Any], key: str) -> str:
    try:
        return _open_clip().pretrained.download_pretrained(tag_cfg)
    except Exception as e:  # offline: URLError, huggingface_hub errors, ... all mean "no weights from the net"
        reason = f"{type(e).__name__}: {e}"
        reason = reason if len(reason) <= 160 else reason[:157] + "..."
        raise BenchError(
            f"could not download open_clip weights {cfg.arch}:{cfg.pretrained} ({reason}). Without internet, pass a "
            f"local checkpoint file via {key}.pretrained=/path/to/file (HF_HUB_OFFLINE=1 skips the download retries)",
            f"{key}.pretrained",
        ) from e


def read_checkpoint(path: str, key: str = "detector.backbone") -> dict[str, Any]:
    """The tensors of a weights file, never unpickling arbitrary objects: an OpenAI TorchScript archive
    (`ViT-B-16.pt` from OpenAI's CLIP release; read by `bench.torchscript`), a `torch.save` state dict (loaded
    weights-only) or a .safetensors file (both through open_clip's loader). Anything else is one BenchError."""
    from bench.torchscript import is_torchscript, state_dict_from_torchscript

    hint = ("expected a state dict saved with torch.save, a .safetensors file or an OpenAI TorchScript "
            "ViT-*.pt archive")
    try:
        if is_torchscript(path):
            return state_dict_from_torchscript(path)
        return _open_clip().factory.load_state_dict(path, device="cpu", weights_only=True)
    except Exception as e:  # e.g. KeyError: 101 or "Unsupported operand" from a file that is no checkpoint at all
        refused = [line.strip() for line in str(e).splitlines() if "Unsupported global" in line or "refusing" in line]
        if refused:  # a pickle that would build other objects than tensors: name the first one
            raise BenchError(f"cannot read checkpoint {path}: it holds objects other than tensors "
                             f"({refused[0][:160]}); {hint}", f"{key}.pretrained") from e
        raise BenchError(f"cannot read checkpoint {path}: not a weights file ({type(e).__name__}); {hint}",
                         f"{key}.pretrained") from e


def _load_visual(visual: nn.Module, path: str, key: str) -> None:
    """Load the image-tower part of a checkpoint file into `visual`, weights only; mismatches name the keys."""
    state = read_checkpoint(path, key)
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise BenchError(f"checkpoint {path} is not a state dict of tensors", f"{key}.pretrained")
    if any(k.startswith("visual.") for k in state):  # full CLIP checkpoint: drop the text tower
        state = {k.removeprefix("visual."): v for k, v in state.items() if k.startswith("visual.")}
    own = visual.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong_shape = sorted(k for k in set(own) & set(state) if tuple(own[k].shape) != tuple(state[k].shape))
    if missing or unexpected or wrong_shape:
        def show(keys: list[str]) -> str:
            return f"{len(keys)} ({', '.join(keys[:5])}{', ...' if len(keys) > 5 else ''})"

        raise BenchError(
            f"checkpoint {path} does not fit the image tower: missing keys {show(missing)}, unexpected keys "
            f"{show(unexpected)}, shape mismatches {show(wrong_shape)}",
            f"{key}.pretrained",
        )
    visual.load_state_dict(state)

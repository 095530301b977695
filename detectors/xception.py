"""`xception`: Xception (Chollet, CVPR 2017) fine-tuned end to end as a binary real/fake classifier.

The standard face-forgery baseline since FaceForensics++ (Rössler et al., ICCV 2019). Defaults follow DeepfakeBench
(Yan et al., NeurIPS 2023 Datasets & Benchmarks), `training/config/detector/xception.yaml`:
  - input 256 (not Xception's ImageNet 299), mean = std = 0.5, ImageNet-pretrained weights;
  - training augmentation: horizontal flip p=0.5, Gaussian blur p=0.5, brightness/contrast jitter p=0.5,
    JPEG quality 40-100 p=0.5 (bench.transforms draws brightness/contrast *or* hue/saturation for the colour step);
    test: resize only;
  - Adam lr 2e-4 (betas 0.9/0.999), weight decay 5e-4, batch 32, 10 epochs, 32 frames per training video;
  - no dropout before the classifier (`backbone_config.dropout: false`).

Faithful: the network is timm's `legacy_xception` (the Keras-ported ImageNet model DeepfakeBench also loads),
its head replaced by a 2-way linear layer.

Our choices:
  - Weights (`pretrained`) resolve like timm's `pretrained_cfg`: a timm tag (`tf_in1k`, downloaded where there is
    internet), a local file loaded through timm's own `pretrained_cfg_overlay=dict(file=...)` (timm drops a head of
    another class count and adapts the first conv to other input channels), or null for random init. Files load
    weights-only, and a file whose keys do not fit fails naming the missing / unexpected / mis-shaped keys.
  - The tiny variant: timm's Xception has fixed widths, so `XceptionNet` below rebuilds the same layout from timm's
    own `Block` / `SeparableConv2d` with widths scaled by `width_mult` and `middle_blocks` middle-flow blocks.
    It keeps timm's module names, so at width_mult=1, middle_blocks=8 its state_dict is legacy_xception's
    (tested); the detector still uses timm's class for that case.

F3Net (detectors/f3net.py) builds its two streams with `create_xception` and `entry_middle_flow` / `exit_flow`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import timm
import torch
from timm.layers import create_classifier
from timm.models import build_model_with_cfg, load_state_dict
from timm.models.xception import Block, SeparableConv2d
from torch import nn
from torch.nn import functional as F

from bench.checkpoint import load_weights
from bench.detector import Detector
from bench.detectors.configs import XceptionConfig
from bench.errors import BenchError

ARCH = "legacy_xception"  # timm's name for the Keras-ported Xception
WEIGHTS_KEY = "detector.pretrained"
HEAD_KEYS = frozenset({"fc.weight", "fc.bias"})


# ---- building blocks -----------------------------------------------------------------------------------


class XceptionNet(nn.Module):
    """timm's legacy Xception layout with scalable widths and middle-flow depth (the tiny variant).

    Same module names as `timm.models.xception.Xception` (conv1, bn1, block1..blockN, conv3, bn3, conv4, bn4, fc)
    so timm's weight loading (first-conv and head adaptation) and `entry_middle_flow` / `exit_flow` work on both.
    """

    def __init__(
        self,
        num_classes: int = 1000,
        in_chans: int = 3,
        width_mult: float = 1.0,
        middle_blocks: int = 8,
        drop_rate: float = 0.0,
        global_pool: str = "avg",
    ) -> None:
        super().__init__()

        def w(c: int) -> int:
            return max(8, round(c * width_mult))

        self.num_classes, self.in_chans, self.drop_rate = num_classes, in_chans, drop_rate
        self.conv1 = nn.Conv2d(in_chans, w(32), 3, 2, 0, bias=False)
        self.bn1 = nn.BatchNorm2d(w(32))
        self.act1 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(w(32), w(64), 3, bias=False)
        self.bn2 = nn.BatchNorm2d(w(64))
        self.act2 = nn.ReLU(inplace=True)
        blocks = [  # entry flow, middle flow, the exit flow's residual block
            Block(w(64), w(128), 2, 2, start_with_relu=False),
            Block(w(128), w(256), 2, 2),
            Block(w(256), w(728), 2, 2),
            *(Block(w(728), w(728), 3, 1) for _ in range(middle_blocks)),
            Block(w(728), w(1024), 2, 2, grow_first=False),
        ]
        for i, block in enumerate(blocks, start=1):
            self.add_module(f"block{i}", block)  # timm's names, so state_dicts are interchangeable
        self.conv3 = SeparableConv2d(w(1024), w(1536), 3, 1, 1)
        self.bn3 = nn.BatchNorm2d(w(1536))
        self.act3 = nn.ReLU(inplace=True)
        self.num_features = w(2048)
        self.conv4 = SeparableConv2d(w(1536), self.num_features, 3, 1, 1)
        self.bn4 = nn.BatchNorm2d(self.num_features)
        self.act4 = nn.ReLU(inplace=True)
        self.global_pool, self.fc = create_classifier(self.num_features, num_classes, pool_type=global_pool)
        for m in self.modules():  # timm's init
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.global_pool(exit_flow(self, entry_middle_flow(self, x)))  # (B, C)
        return self.fc(F.dropout(x, self.drop_rate, self.training))


def xception_blocks(net: nn.Module) -> list[nn.Module]:
    """block1..blockN of a timm-layout Xception, in order (the last one opens the exit flow)."""
    return [m for name, m in net.named_children() if name.startswith("block")]


def entry_middle_flow(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Stem, entry and middle flows: (B, C_in, S, S) -> (B, 728*w, ~S/16, ~S/16)."""
    x = net.act1(net.bn1(net.conv1(x)))
    x = net.act2(net.bn2(net.conv2(x)))
    for block in xception_blocks(net)[:-1]:
        x = block(x)
    return x


def flow_channels(net: nn.Module) -> tuple[int, int]:
    """Channels after the middle flow and after the exit flow (728 and 2048 at width_mult=1)."""
    return xception_blocks(net)[-1].skip.in_channels, net.num_features


def exit_flow(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Exit flow up to the last activation: (B, 728*w, h, h) -> (B, 2048*w, ~h/2, ~h/2)."""
    x = xception_blocks(net)[-1](x)
    x = net.act3(net.bn3(net.conv3(x)))
    return net.act4(net.bn4(net.conv4(x)))


# ---- the detector --------------------------------------------------------------------------------------


class Xception(Detector):
    name = "xception"
    description = "Xception fine-tuned end to end (FaceForensics++ / DeepfakeBench baseline)"
    config_class = XceptionConfig

    def __init__(self, cfg: XceptionConfig, domains) -> None:
        super().__init__(cfg, domains)
        self.backbone = create_xception(
            cfg.pretrained, num_classes=2, width_mult=cfg.width_mult, middle_blocks=cfg.middle_blocks,
            drop_rate=cfg.drop_rate,
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.backbone(images)  # (B, 2)

    def describe(self) -> dict[str, Any]:
        c = self.cfg
        arch = ARCH if is_reference(c.width_mult, c.middle_blocks) else f"xception_w{c.width_mult}_m{c.middle_blocks}"
        return {**super().describe(), "arch": arch, "weights": weights_label(c.pretrained), "input_size": c.input_size}


# ---- weight loading ------------------------------------------------------------------------------------


def is_reference(width_mult: float, middle_blocks: int) -> bool:
    """True when the shape is timm's legacy_xception (the only one ImageNet weights exist for)."""
    return width_mult == 1.0 and middle_blocks == 8


def weights_label(pretrained: str | None) -> str:
    return "random" if pretrained is None else pretrained


def create_xception(
    pretrained: str | None,
    *,
    num_classes: int,
    in_chans: int = 3,
    width_mult: float = 1.0,
    middle_blocks: int = 8,
    drop_rate: float = 0.0,
) -> nn.Module:
    """An Xception with `pretrained` weights (tag / file / None), head sized `num_classes` (0 = features only).

    timm adapts a 3-channel first conv to `in_chans` (repeat over the new channels, rescale by 3/in_chans so
    activations keep their scale) and discards a file's head when its class count differs from `num_classes`.
    """
    kwargs: dict[str, Any] = {"num_classes": num_classes, "in_chans": in_chans, "drop_rate": drop_rate}
    reference = is_reference(width_mult, middle_blocks)
    if not reference:
        kwargs |= {"width_mult": width_mult, "middle_blocks": middle_blocks}
    if pretrained is None:
        return _build(reference, ARCH, False, kwargs)
    if _looks_like_file(pretrained):
        path = Path(pretrained).expanduser()
        if not path.is_file():
            raise BenchError(f"weights file {str(path)!r} does not exist", WEIGHTS_KEY)
        if path.suffix != ".safetensors":  # refuse pickled objects in one line before timm's loader sees the file
            load_weights(path, WEIGHTS_KEY)
        head = load_state_dict(str(path), weights_only=True).get("fc.weight")
        # Telling timm the file's class count makes it keep a head that fits and drop one that does not.
        overlay = {"file": str(path), "num_classes": 0 if head is None else head.shape[0]}
        return _build(reference, ARCH, True, kwargs, pretrained_cfg_overlay=overlay, pretrained_filter_fn=_check_keys)

    known = [name.split(".", 1)[1] for name in timm.list_pretrained(f"{ARCH}.*")]
    if pretrained not in known:
        raise BenchError(f"unknown {ARCH} tag {pretrained!r}; known: {', '.join(known)}, a file, or null", WEIGHTS_KEY)
    if not reference:
        raise BenchError(f"{ARCH}.{pretrained} fits only width_mult=1.0, middle_blocks=8; use null", WEIGHTS_KEY)
    try:
        return _build(reference, f"{ARCH}.{pretrained}", True, kwargs)
    except OSError as e:  # URLError and hub errors are OSErrors
        raise BenchError(
            f"could not download {ARCH}.{pretrained} weights ({e}); offline, fetch the file elsewhere and pass its "
            "path: detector.pretrained=/path/to/xception.pth (or null for random init)",
            WEIGHTS_KEY,
        ) from e


def _build(reference: bool, variant: str, pretrained: bool, kwargs: dict[str, Any], **extra: Any) -> nn.Module:
    """timm's own builder either way, so pretrained_cfg handling is identical for the full and reduced nets."""
    if reference:
        return timm.create_model(variant, pretrained=pretrained, **kwargs, **extra)
    return build_model_with_cfg(XceptionNet, variant, pretrained, **kwargs, **extra)


def _looks_like_file(pretrained: str) -> bool:
    """timm tags are bare identifiers (`tf_in1k`); anything with a path separator or suffix is a file."""
    return Path(pretrained).expanduser().exists() or not pretrained.isidentifier()


def _check_keys(state_dict: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """timm `pretrained_filter_fn`: fail naming every key that does not fit, before timm loads non-strictly.

    The head and the first conv's input channels are exempt: timm adapts them right after this filter.
    """
    # Cadene's pretrainedmodels file (the one DeepfakeBench ships) stores pointwise convs as 2-D matrices.
    state_dict = {k: v[..., None, None] if k.endswith("pointwise.weight") and v.ndim == 2 else v
                  for k, v in state_dict.items()}
    expected = model.state_dict()
    ours, theirs = expected.keys() - HEAD_KEYS, state_dict.keys() - HEAD_KEYS
    missing = sorted(k for k in ours - theirs if not k.endswith("num_batches_tracked"))  # torch fills these in
    unexpected = sorted(theirs - ours)
    wrong = []
    for k in sorted(ours & theirs):
        got, want = state_dict[k].shape, expected[k].shape
        if k == "conv1.weight":  # timm spreads 3 input channels over in_chans; the other dims must match
            got, want = got[:1] + got[2:], want[:1] + want[2:]
        if got != want:
            wrong.append(f"{k} {tuple(state_dict[k].shape)} vs {tuple(expected[k].shape)}")
    problems = [f"{label} ({len(keys)}): {', '.join(keys[:8])}{' ...' if len(keys) > 8 else ''}"
                for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong)) if keys]
    if problems:
        raise BenchError(f"weights file does not fit the network; {'; '.join(problems)}", WEIGHTS_KEY)
    return state_dict

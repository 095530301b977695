"""`clip_ft`: CLIP's ViT image encoder fine-tuned end to end with a linear real/fake head.

The "CLIP" baseline of the field's benchmark: DeepfakeBench's `clip` detector (Yan et al., NeurIPS 2023 D&B;
`training/detectors/clip_detector.py` and `training/config/detector/clip.yaml` in github.com/SCLBD/DeepfakeBench),
which the MoA-CLIP paper's "CLIP" rows most plausibly are: they reach 0.982 AUC in-domain on FF++ (its Table 6),
far above what a frozen linear probe (`clip_probe`) does. What we take from DeepfakeBench:
  - backbone: the image encoder of OpenAI's CLIP ViT-B/16 (`openai/clip-vit-base-patch16`), every weight trained;
  - features: the encoder's pooled output, i.e. the layer-normed CLS token *before* CLIP's projection (768-d for
    B/16; HF's `pooler_output`), fed to one Linear(width, 2);
  - input 224, mean = std = 0.5 (DeepfakeBench normalises every detector this way, CLIP included);
  - training augmentation: horizontal flip, Gaussian blur, brightness/contrast, JPEG quality 40-100, each p = 0.5;
  - the xception/f3net recipe (`DEEPFAKEBENCH_RECIPE`): Adam lr 2e-4, weight decay 5e-4, no scheduler, batch 32,
    10 epochs, 32 frames per training video; cross-entropy.

Our choices: the encoder is open_clip's (`bench.openclip`; same architecture and weights as HF's, OpenAI's QuickGELU),
so the `detector.backbone.*` keys work as for the other CLIP detectors. DeepfakeBench's rotation (p = 0.5, +-10
degrees) is not among bench.transforms' augmentations and is left out. Tiny variant: the demo's pretrained tiny tower
(`bench.tiny_tower`) with its own preprocessing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from bench.detector import Detector, Transform
from bench.detectors.configs import ClipFtConfig
from bench.openclip import detector_tower


class ClipFt(Detector):
    name = "clip_ft"
    description = "CLIP ViT image encoder fine-tuned end to end + linear head (DeepfakeBench's `clip`)"
    config_class = ClipFtConfig

    def __init__(self, cfg: ClipFtConfig, domains: Sequence[str]) -> None:
        super().__init__(cfg, domains)
        self.tower_info = detector_tower(cfg)
        self.backbone = self.tower_info.visual
        self.backbone.proj = None  # the pooled CLS token before CLIP's projection, as DeepfakeBench's pooler_output
        self.head = nn.Linear(self.tower_info.width, 2)

    def train_transform(self) -> Transform:
        return self.tower_info.transform(self.cfg.augment)

    def eval_transform(self) -> Transform:
        return self.tower_info.transform()

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(images))  # (B, 3, S, S) -> (B, width) -> (B, 2)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), **self.tower_info.facts()}

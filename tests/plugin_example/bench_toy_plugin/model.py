"""The example detector (torch is imported only when a run uses it)."""

from __future__ import annotations

import torch
from torch import nn

from bench.detector import Detector
from bench_toy_plugin.config import ToyColorConfig


class ToyColor(Detector):
    """Per-channel statistics (mean, std, mean absolute Laplacian) -> small MLP. Deliberately simple."""

    name = "toy_color"
    description = "example plugin detector: colour and high-pass statistics + MLP"
    config_class = ToyColorConfig

    def __init__(self, cfg: ToyColorConfig, domains) -> None:
        super().__init__(cfg, domains)
        self.mlp = nn.Sequential(nn.Linear(9, cfg.hidden), nn.ReLU(), nn.Linear(cfg.hidden, 2))
        kernel = torch.tensor([[0.0, 1, 0], [1, -4, 1], [0, 1, 0]]).expand(3, 1, 3, 3).clone()
        self.register_buffer("laplacian", kernel)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        high = nn.functional.conv2d(images, self.laplacian, groups=3).abs()  # (B, 3, H-2, W-2)
        stats = torch.cat([images.mean((2, 3)), images.std((2, 3)), high.mean((2, 3))], dim=1)  # (B, 9)
        return self.mlp(stats)

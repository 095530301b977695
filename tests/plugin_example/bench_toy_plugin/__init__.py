"""An example ForgeryBench plugin: a detector that lives entirely outside the ForgeryBench repository.

Installing this distribution is all it takes: its entry point (group `bench`) points at this module, whose hook
registers the detector; `bench run detector=toy_color` then works and `bench list` names this distribution.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

import bench
from bench.detector import Detector, DetectorConfig


@dataclass
class ToyColorConfig(DetectorConfig):
    recipe: ClassVar[dict[str, Any]] = {"optimizer": "adam", "lr": 1e-2, "epochs": 2}

    name: str = "toy_color"
    input_size: int = 32
    hidden: int = 16


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


@bench.hookimpl
def bench_register_detectors(register) -> None:
    register("toy_color", ToyColor)  # a class target: its `description` is used


@bench.hookimpl
def bench_register_configs(store) -> None:
    from bench.config import ProtocolConfig, SplitSpec

    store("protocol", "toy_blend_only", ProtocolConfig(
        name="toy_blend_only", version=1, scale="tiny",
        description="example plugin protocol: train on the synthetic blend family, test on warp",
        train=SplitSpec(dataset="synthetic", split="train", domains=["blend"]),
        test={"warp": SplitSpec(dataset="synthetic", domains=["warp"])}))

"""`dummy`: a tiny CNN trained end to end. The default detector of the demo and the workhorse of the tests.

Not a published model. Small enough to train on the synthetic benchmark on a laptop CPU in a minute, and
shaped like a real forensic detector (a stride-1 stem keeps high-frequency traces that early pooling would erase).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from bench.detector import Detector, DetectorConfig
from bench.transforms import AugmentConfig


@dataclass
class DummyConfig(DetectorConfig):
    name: str = "dummy"
    input_size: int = 64
    width: int = 16  # channels of the first stage; doubled at each of the `depth` stages
    depth: int = 3
    augment: AugmentConfig = field(default_factory=lambda: AugmentConfig(hflip=0.5))


class Dummy(Detector):
    name = "dummy"
    description = "tiny CNN for tests and the default demo (not a published model)"
    config_class = DummyConfig
    recipe = {"optimizer": "adam", "lr": 1e-3, "weight_decay": 1e-4, "batch_size": 32, "epochs": 5}
    tiny = {"width": 8}

    def __init__(self, cfg: DummyConfig, domains) -> None:
        super().__init__(cfg, domains)
        layers: list[nn.Module] = [nn.Conv2d(3, cfg.width, 3, padding=1), nn.BatchNorm2d(cfg.width), nn.ReLU()]
        ch = cfg.width
        for _ in range(cfg.depth):
            layers += [nn.Conv2d(ch, ch * 2, 3, stride=2, padding=1), nn.BatchNorm2d(ch * 2), nn.ReLU()]
            ch *= 2
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())  # (B, C)
        self.head = nn.Linear(ch, 2)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(images))  # (B, 2)

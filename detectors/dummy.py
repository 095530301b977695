"""`dummy`: a tiny CNN trained end to end. The default detector of the demo and the workhorse of the tests.

Not a published model. Small enough to train on the synthetic benchmark on a laptop CPU in a minute, and
shaped like a real forensic detector (a stride-1 stem keeps high-frequency traces that early pooling would erase).
"""

from __future__ import annotations

import torch
from torch import nn

from bench.detector import Detector
from bench.detectors.configs import DummyConfig


class Dummy(Detector):
    name = "dummy"
    description = "tiny CNN for tests and the default demo (not a published model)"
    config_class = DummyConfig

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

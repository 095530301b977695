"""bench.testing: the one-call checks for plugin authors pass on built-ins and catch what they claim to catch."""

from __future__ import annotations

import pytest
import torch

from bench.detectors.dummy import Dummy
from bench.plugins import get_plugins
from bench.testing import check_dataset, check_detector


def test_check_detector_passes_on_a_builtin_and_runs_the_demo(tmp_path):
    report = check_detector("dummy", workdir=tmp_path)
    assert report.params_trainable > 0 and len(report.losses) == 2
    assert set(report.demo_auc) == {"blend", "gan_upsample", "warp", "double_jpeg", "diffusion_heldout"}


class ForgetfulDummy(Dummy):
    """Learns a value that lives outside its state dict: a checkpoint cannot restore it."""

    def __init__(self, cfg, domains) -> None:
        super().__init__(cfg, domains)
        self.offset = torch.zeros(2)  # a plain attribute, not a buffer

    def training_loss(self, batch):
        self.offset = self.offset + torch.tensor([0.0, 1.0])  # shifts the fake logit only
        return super().training_loss(batch)

    def forward(self, images):
        return super().forward(images) + self.offset


class FrozenDummy(Dummy):
    def trainable_parameters(self):
        return [self.head.bias.detach().requires_grad_(True)]  # a copy: optimising it changes nothing in the model


@pytest.mark.parametrize("cls, message", [
    (ForgetfulDummy, "predictions differ after a checkpoint round trip"),
    (FrozenDummy, "two training steps changed no parameter"),
])
def test_check_detector_catches_what_it_claims(cls, message, tmp_path, monkeypatch):
    monkeypatch.setattr(get_plugins().detectors.entry("dummy"), "_obj", cls)
    with pytest.raises(AssertionError, match=message):
        check_detector("dummy", workdir=tmp_path, demo=False)


def test_check_dataset_lists_loads_and_trains_on_the_synthetic_dataset(tmp_path):
    report = check_dataset("synthetic", workdir=tmp_path)
    assert report.samples["train"] > 0 and "blend" in report.domains

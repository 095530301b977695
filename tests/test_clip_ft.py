"""clip_ft: DeepfakeBench's fully fine-tuned CLIP baseline (the tiny tower, CPU)."""

from __future__ import annotations

import pytest
import torch

from bench.detectors.clip_ft import ClipFt
from bench.detectors.configs import DEEPFAKEBENCH_RECIPE
from bench.errors import BenchError
from bench.openclip import TINY_ARCH, build_image_tower
from tests.tiny import learnable_batch, tiny_cfg, train_steps


def make(**overrides) -> ClipFt:
    torch.manual_seed(0)
    overrides.setdefault("backbone", {"arch": TINY_ARCH, "pretrained": None, "mean": None, "std": None})
    return ClipFt(tiny_cfg(ClipFt, **overrides), domains=["fake"])


def test_published_settings():
    cfg = ClipFt.config_class()
    assert (cfg.backbone.arch, cfg.backbone.pretrained, cfg.input_size) == ("ViT-B-16", "openai", 224)
    assert cfg.backbone.mean == cfg.backbone.std == (0.5, 0.5, 0.5)  # DeepfakeBench's normalisation, not CLIP's
    assert (cfg.augment.hflip, cfg.augment.blur, cfg.augment.color, cfg.augment.jpeg) == (0.5, 0.5, 0.5, 0.5)
    assert ClipFt.config_class.recipe == DEEPFAKEBENCH_RECIPE and ClipFt.config_class.recipe["lr"] == 2e-4 and ClipFt.config_class.recipe["epochs"] == 10


def test_head_reads_the_pooled_token_before_clips_projection():
    model = make().eval()
    tower = model.tower_info
    assert model.head.in_features == tower.width != tower.embed_dim
    assert "backbone.proj" not in model.state_dict()
    torch.manual_seed(0)
    reference = build_image_tower(model.cfg.backbone).visual.eval()  # same seed: the same random weights
    x = learnable_batch(4).images
    with torch.no_grad():  # CLIP's embedding is the pooled token times the projection clip_ft drops
        assert torch.allclose(model.backbone(x) @ reference.proj, reference(x), atol=1e-5)


def test_every_weight_trains():
    model = make().train()
    assert model.frozen_keys() == set()
    params = model.trainable_parameters()
    assert len(params) == len(list(model.parameters()))  # backbone included: fine-tuned end to end
    before = [p.detach().clone() for p in model.backbone.parameters()]
    losses = train_steps(model, learnable_batch(8), steps=25, check_grads_at=0)
    assert losses[-1] < losses[0]
    assert all(not torch.equal(b, p) for b, p in zip(before, model.backbone.parameters()))


def test_detector_level_mean_is_refused():
    with pytest.raises(BenchError, match="detector.backbone.mean") as err:
        make(mean=[0.1, 0.1, 0.1])
    assert err.value.key == "detector.mean"

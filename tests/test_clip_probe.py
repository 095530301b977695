"""clip_probe: frozen tower, learning head, feature cache, configuration checks (the tiny tower of the tiny scale,
pretrained once per test session by bench.tiny_tower, CPU)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from bench.detectors.clip_probe import ClipProbe, ClipProbeConfig
from bench.errors import BenchError
from bench.records import Batch


def tiny_cfg(**overrides) -> ClipProbeConfig:
    """The class's own `tiny` overrides merged like `scale=tiny` does, plus the test's."""
    node = OmegaConf.merge(OmegaConf.structured(ClipProbeConfig()), ClipProbe.config_class.tiny, overrides)
    return OmegaConf.to_object(node)


def make_probe(seed: int = 0, **overrides) -> ClipProbe:
    torch.manual_seed(seed)
    return ClipProbe(tiny_cfg(**overrides), domains=["fake"])


def make_batches(n_batches: int = 2, size: int = 8, seed: int = 0) -> list[Batch]:
    """Real images are smooth, fakes carry high-frequency noise: a cue a linear probe can use."""
    g = torch.Generator().manual_seed(seed)
    batches = []
    for b in range(n_batches):
        labels = torch.arange(size) % 2
        smooth = torch.nn.functional.interpolate(torch.randn(size, 3, 8, 8, generator=g), size=64, mode="bilinear")
        noise = torch.randn(size, 3, 64, 64, generator=g)
        images = smooth + 3.0 * labels.view(-1, 1, 1, 1) * noise  # (B, 3, 64, 64)
        index = torch.arange(b * size, (b + 1) * size)
        batches.append(Batch(images=images, labels=labels, domains=torch.zeros(size, dtype=torch.long), index=index))
    return batches


def count_backbone_images(model: ClipProbe) -> list[int]:
    seen: list[int] = []
    model.backbone.register_forward_hook(lambda mod, args, out: seen.append(args[0].shape[0]))
    return seen


def test_tiny_config_builds_and_predicts():
    model = make_probe()
    assert model.describe()["weights"] == "synthetic"  # the demo's pretrained tiny tower (bench.tiny_tower)
    assert model.describe()["input_size"] == 64
    probs = model.eval().predict_proba(make_batches(1)[0].images)
    assert probs.shape == (8,) and ((probs >= 0) & (probs <= 1)).all()


def test_backbone_frozen_and_unchanged_by_a_step():
    model = make_probe()
    assert all(not p.requires_grad for p in model.backbone.parameters())
    assert model.trainable_parameters() == list(model.head.parameters())
    before = {k: v.clone() for k, v in model.state_dict().items()}
    opt = torch.optim.Adam(model.trainable_parameters(), lr=1e-2)
    model.train()
    assert not model.backbone.training  # train() keeps the frozen tower in eval mode
    model.training_loss(make_batches(1)[0]).total.backward()
    opt.step()
    after = model.state_dict()
    for k, v in before.items():
        assert torch.equal(v, after[k]) != k.startswith("head."), k  # head moved, backbone did not


def test_head_learns():
    model = make_probe().train()
    batches = make_batches(n_batches=4, size=16)
    opt = torch.optim.Adam(model.trainable_parameters(), lr=1e-2)
    first = None
    for _ in range(60):
        for batch in batches:
            out = model.training_loss(batch)
            first = out.total.item() if first is None else first
            opt.zero_grad()
            out.total.backward()
            opt.step()
    model.eval()
    images, labels = torch.cat([b.images for b in batches]), torch.cat([b.labels for b in batches])
    accuracy = ((model.predict_proba(images) > 0.5).long() == labels).float().mean().item()
    assert out.total.item() < 0.5 * first
    assert accuracy > 0.9


def test_feature_cache_skips_backbone_and_matches_uncached_loss():
    cached, plain = make_probe(), make_probe(cache_features=False)
    plain.load_state_dict(cached.state_dict())
    calls = count_backbone_images(cached)
    batches = make_batches()
    cached.train(), plain.train()
    for batch in batches:  # epoch 1 fills the cache
        cached.training_loss(batch)
    assert sum(calls) == 16 and cached.cache_misses == 16
    for batch in reversed(batches):  # epoch 2, other order: no backbone call, same loss
        loss_cached = cached.training_loss(batch).total
        torch.testing.assert_close(loss_cached, plain.training_loss(batch).total)
    assert sum(calls) == 16
    info = cached.describe()
    assert info["feature_cache"] is True and info["feature_cache_hits"] == 16
    assert plain.describe()["feature_cache"] is False and plain.cache_hits == 0


def test_cache_not_used_outside_training_and_not_checkpointed():
    model = make_probe()
    calls = count_backbone_images(model)
    batch = make_batches(1)[0]
    model.train().training_loss(batch)
    model.eval()
    model.training_loss(batch)  # validation loss: same indices, other split -> must run the tower
    assert sum(calls) == 16 and model.cache_hits == 0
    assert len(model.feature_cache) == 8
    assert not any("cache" in k for k in model.state_dict())


def test_augmentation_disables_cache():
    model = make_probe(augment={"hflip": 0.5})
    calls = count_backbone_images(model)
    batch = make_batches(1)[0]
    model.train()
    model.training_loss(batch)
    model.training_loss(batch)
    assert sum(calls) == 16 and not model.feature_cache
    assert model.describe()["feature_cache"] is False


def test_transforms_use_the_towers_size_and_normalisation():
    model = make_probe()
    t = model.tower_info
    pixel = np.round(np.array(t.mean) * 255).astype(np.uint8)
    image = np.broadcast_to(pixel, (20, 30, 3)).copy()  # the mean colour -> ~0 after normalisation
    for transform in (model.train_transform(), model.eval_transform()):
        out = transform(image)
        assert out.shape == (3, t.image_size, t.image_size)
        assert out.abs().max() < 0.02


def test_config_mistakes_name_the_key():
    with pytest.raises(BenchError) as e:
        make_probe(input_size=32)
    assert e.value.key == "detector.input_size"
    with pytest.raises(BenchError, match="detector.backbone.mean") as e:
        make_probe(mean=[0.5, 0.5, 0.5])
    assert e.value.key == "detector.mean"

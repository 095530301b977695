"""Every registered detector, at its tiny scale: builds from its config, trains a step, predicts (like timm's tests)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from bench.compose import compose_run
from bench.data import FrameDataset, collate
from bench.detector import Detector
from bench.plugins import get_plugins

DETECTORS = get_plugins().detectors.names()
DOMAINS = ["blend", "gan_upsample", "warp", "double_jpeg"]


def build(name: str) -> Detector:
    cfg = compose_run([f"detector={name}", "scale=tiny"])
    return get_plugins().detectors.get(name)(OmegaConf.to_object(cfg.detector), DOMAINS)


def batch_for(model: Detector, n: int = 8, train: bool = True):
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (80, 72, 3), dtype=np.uint8) for _ in range(n)]  # odd size: transforms resize
    transform = model.train_transform() if train else model.eval_transform()
    items = [(transform(img), i % 2, i % len(DOMAINS), i) for i, img in enumerate(images)]
    return collate(items)


@pytest.mark.parametrize("name", DETECTORS)
def test_registered_detector_trains_a_step_and_predicts(name):
    torch.manual_seed(0)
    model = build(name)
    assert isinstance(model, Detector) and model.name == name
    params = model.trainable_parameters()
    assert params, f"{name} has nothing to train"
    before = [p.detach().clone() for p in params]
    opt = torch.optim.Adam(params, lr=1e-2)
    model.train()
    for step in range(2):  # two steps: some detectors gate parts of the graph shut at step 0 by design
        model.training_phase(epoch=0, step=step)
        out = model.training_loss(batch_for(model))
        assert out.logits.shape == (8, 2) and torch.isfinite(out.total)
        opt.zero_grad(set_to_none=True)
        out.total.backward()
        opt.step()
    assert any(not torch.equal(b, p) for b, p in zip(before, params)), f"{name}: no parameter changed"

    model.eval()
    probs = model.predict_proba(batch_for(model, train=False).images)
    assert probs.shape == (8,) and bool(((probs >= 0) & (probs <= 1)).all())
    info = model.describe()
    assert info["params_trainable"] > 0


@pytest.mark.parametrize("name", DETECTORS)
def test_registered_detector_state_round_trips_weights_only(name, tmp_path):
    model = build(name).eval()
    torch.save(model.state_dict(), tmp_path / "m.pt")
    clone = build(name).eval()
    clone.load_state_dict(torch.load(tmp_path / "m.pt", weights_only=True))
    x = batch_for(model, train=False).images
    assert torch.allclose(model.predict_proba(x), clone.predict_proba(x), atol=1e-6)


def test_frame_dataset_feeds_detector_transforms():
    model = build("dummy")
    from bench.records import Sample

    s = Sample("t", "train", "real", 0, "t/real/0", 0, array=np.zeros((20, 30, 3), np.uint8))
    x, label, domain, index = FrameDataset([s], model.eval_transform())[0]
    assert x.shape == (3, model.cfg.input_size, model.cfg.input_size) and (label, domain, index) == (0, -1, 0)


@pytest.mark.parametrize("name", DETECTORS)
def test_checkpoint_skips_frozen_weights_and_restores_exactly(name, tmp_path):
    from bench import checkpoint
    from bench.errors import BenchError

    torch.manual_seed(0)
    model = build(name)
    opt = torch.optim.Adam(model.trainable_parameters())
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0)
    checkpoint.save(tmp_path / "c.pt", model=model, optimizer=opt, scheduler=sched, state=checkpoint.TrainState(epoch=1))
    payload = checkpoint.load(tmp_path / "c.pt")
    assert not set(payload["model"]) & model.frozen_keys()  # frozen backbones are not written

    torch.manual_seed(0)  # the runner seeds before building, so random frozen towers are rebuilt identically
    clone = build(name)
    assert checkpoint.restore(payload, model=clone).epoch == 1
    x = batch_for(model, train=False).images
    assert torch.allclose(model.eval().predict_proba(x), clone.eval().predict_proba(x), atol=1e-6)
    if model.frozen_keys():  # other backbone weights than the checkpoint was trained on: refused
        other = build(name)
        with torch.no_grad():  # (a tiny tower may be pretrained, hence the same whatever the seed: alter it)
            next(t for k, t in other.state_dict().items() if k in other.frozen_keys()).add_(1.0)
        with pytest.raises(BenchError, match="other frozen backbone weights"):
            checkpoint.restore(payload, model=other)

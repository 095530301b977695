"""f3net: DCT and band masks, FAD / LFS heads, MixBlock, both stream modes, weight loading (random init, CPU)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import scipy.fft
import torch
from timm.models.xception import Xception as TimmXception

from bench.config import TrainerConfig
from bench.detectors.f3net import (
    FAD,
    LFS,
    F3Net,
    F3NetConfig,
    MixBlock,
    dct_matrix,
    fad_base_masks,
    lfs_base_masks,
)
from bench.detectors.xception import XceptionNet
from bench.errors import BenchError
from bench.records import Batch

import tiny


def tiny_cfg(**overrides) -> F3NetConfig:
    return tiny.tiny_cfg(F3Net, **overrides)


def make_model(seed: int = 0, **overrides) -> F3Net:
    torch.manual_seed(seed)
    return F3Net(tiny_cfg(**overrides), domains=["fake"])


def make_batch(size: int = 8, seed: int = 0) -> Batch:
    return tiny.learnable_batch(size, seed)


# ---- frequency building blocks -------------------------------------------------------------------------


@pytest.mark.parametrize("n", [10, 64, 299])
def test_dct_matrix_is_orthonormal_dct_ii(n):
    d = dct_matrix(n).double()
    assert torch.allclose(d @ d.T, torch.eye(n, dtype=torch.float64), atol=1e-5)
    x = np.random.default_rng(n).standard_normal(n)
    assert np.allclose(d.numpy() @ x, scipy.fft.dct(x, norm="ortho"), atol=1e-5)


@pytest.mark.parametrize("size", [64, 256, 299])
def test_fad_base_masks_partition_the_spectrum(size):
    masks = fad_base_masks(size)  # (4, S, S): low, mid, high, all
    low, mid, high, all_pass = masks
    assert set(masks.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(low + mid + high, torch.ones(size, size))  # binary and summing to 1: disjoint and covering
    assert torch.equal(all_pass, torch.ones(size, size))
    assert low[0, 0] == 1 and high[-1, -1] == 1  # DC is low, the top corner high
    n = size * size  # the paper's fractions: 1/16 low, next 1/16 middle, last 7/8 high (to the discrete grid)
    assert abs(low.sum() / n - 1 / 16) < 2 / size
    assert abs((low + mid).sum() / n - 1 / 8) < 2 / size


def test_lfs_base_masks_partition_the_window():
    masks = lfs_base_masks(10, 6)
    assert masks.shape == (6, 10, 10)
    assert torch.equal(masks.sum(0), torch.ones(10, 10)) and set(masks.unique().tolist()) <= {0.0, 1.0}
    assert (masks.sum((1, 2)) > 0).all()  # no empty band


def test_fad_bands_reconstruct_the_image_when_filters_are_the_base_masks():
    fad = FAD(32)
    with torch.no_grad():
        fad.weight.zero_()  # σ(0) = 0: the filters are exactly the base masks
    x = torch.randn(2, 3, 32, 32)
    bands = fad(x).view(2, 4, 3, 32, 32)  # band-major channels
    assert torch.allclose(bands[:, :3].sum(1), x, atol=1e-4)  # low + mid + high = the image
    assert torch.allclose(bands[:, 3], x, atol=1e-4)  # the all-pass band


@pytest.mark.parametrize("size, padding", [(64, 0), (64, 4), (299, 0), (299, 4)])
def test_lfs_output_shape_follows_the_sliding_window_formula(size, padding):
    lfs = LFS(tiny_cfg(lfs_padding=padding))
    side = (size + 2 * padding - 10) // 2 + 1  # windows per side; 299 with padding 4 -> 149
    out = lfs(torch.rand(2, 3, size, size) * 2 - 1)
    assert out.shape == (2, 6, side, side) and torch.isfinite(out).all()


def test_gradients_reach_the_learnable_filters():
    model = make_model().train()
    model.training_loss(make_batch()).total.backward()
    for param in (model.fad.weight, model.lfs.weight):
        assert param.grad is not None and param.grad.abs().sum() > 0


def test_mixblock_starts_as_identity_and_handles_unequal_grids():
    block = MixBlock(16, reduction=2).eval()
    fad, lfs = torch.randn(2, 16, 5, 5), torch.randn(2, 16, 4, 4)
    out_fad, out_lfs = block(fad, lfs)
    assert torch.equal(out_fad, fad) and torch.equal(out_lfs, lfs)  # gates are 0 at init
    with torch.no_grad():
        block.fad_gate.fill_(1.0)
        block.lfs_gate.fill_(1.0)
    out_fad, out_lfs = block(fad, lfs)
    assert out_fad.shape == fad.shape and out_lfs.shape == lfs.shape
    assert not torch.allclose(out_fad, fad) and not torch.allclose(out_lfs, lfs)


# ---- the detector --------------------------------------------------------------------------------------


def test_tiny_trains_every_parameter_and_loss_decreases():
    model, batch = make_model().train(), make_batch()
    losses = tiny.train_steps(model, batch, steps=6, check_grads_at=1)  # MixBlock gates start closed; after one step they are open and everything learns
    assert losses[-1] < losses[0]


def test_predict_proba_and_describe():
    model = make_model().eval()
    probs = model.predict_proba(make_batch(5).images)
    assert probs.shape == (5,) and ((probs >= 0) & (probs <= 1)).all()
    facts = model.describe()
    assert facts["weights"] == "random" and facts["streams"] == "both"
    assert facts["lfs_map"] == "6x32x32"  # (64 + 8 - 10) // 2 + 1


def test_fad_only_has_no_lfs_or_mixblock_parameters():
    both, fad_only = make_model(), make_model(streams="fad")
    names = [n for n, _ in fad_only.named_parameters()]
    assert not [n for n in names if n.startswith(("lfs", "mix"))]
    assert any(n.startswith(("lfs", "mix")) for n, _ in both.named_parameters())
    assert fad_only.describe()["params_total"] < both.describe()["params_total"]
    assert fad_only.eval().predict_proba(make_batch(3).images).shape == (3,)


def test_bad_streams_and_input_size_fail():
    with pytest.raises(BenchError) as err:
        make_model(streams="lfs")
    assert err.value.key == "detector.streams"
    with pytest.raises(ValueError, match="64"):
        make_model()(torch.randn(1, 3, 48, 48))


def test_full_size_defaults_carry_the_published_settings():
    cfg = F3NetConfig()
    assert (cfg.input_size, cfg.streams, cfg.pretrained) == (299, "both", "tf_in1k")
    assert (cfg.lfs_window, cfg.lfs_stride, cfg.lfs_bands) == (10, 2, 6)
    assert (tuple(cfg.mean), tuple(cfg.std), cfg.augment.enabled) == ((0.5,) * 3, (0.5,) * 3, False)
    assert (cfg.width_mult, cfg.middle_blocks, cfg.dropout) == (1.0, 8, 0.5)
    assert F3Net.config_class.recipe == {
        "optimizer": "adam", "lr": 2e-4, "weight_decay": 5e-4, "batch_size": 32, "epochs": 10, "frames_per_video": 32
    }
    assert set(F3Net.config_class.recipe) <= {f.name for f in dataclasses.fields(TrainerConfig)}
    assert set(F3Net.config_class.tiny) <= {f.name for f in dataclasses.fields(F3NetConfig)}


def test_full_size_builds_and_runs():
    torch.manual_seed(0)
    model = F3Net(F3NetConfig(pretrained=None), domains=["fake"]).eval()
    assert isinstance(model.fad_stream, TimmXception) and isinstance(model.lfs_stream, TimmXception)
    assert model.fad_stream.conv1.in_channels == 12 and model.lfs_stream.conv1.in_channels == 6
    assert model.lfs_stream.conv1.stride == (1, 1)
    assert model.describe()["lfs_map"] == "6x149x149"
    with torch.no_grad():
        assert model(torch.randn(1, 3, 299, 299)).shape == (1, 2)


def test_imagenet_file_initialises_both_streams(tmp_path):
    """A 3-channel Xception file (with a 1000-class head) fills both streams; conv1 is spread over the new channels."""
    torch.manual_seed(5)
    imagenet = XceptionNet(num_classes=1000, width_mult=0.125, middle_blocks=1)
    source = imagenet.state_dict()
    torch.save(source, tmp_path / "in1k.pth")
    model = make_model(pretrained=str(tmp_path / "in1k.pth"))
    assert model.describe()["weights"] == str(tmp_path / "in1k.pth")
    rgb = source["conv1.weight"]  # (32w, 3, 3, 3)
    for stream, chans in ((model.fad_stream, 12), (model.lfs_stream, 6)):
        assert torch.allclose(stream.conv1.weight, rgb.repeat(1, chans // 3, 1, 1) * 3 / chans)
        mine = stream.state_dict()
        for k, v in source.items():
            assert k.startswith("fc.") or k == "conv1.weight" or torch.equal(mine[k], v), k
    assert model.lfs_stream.conv1.stride == (1, 1)


def test_file_with_a_wrong_key_names_it(tmp_path):
    state = XceptionNet(num_classes=0, width_mult=0.125, middle_blocks=1).state_dict()
    state["block2.rep.1.pointwise.weight_typo"] = state.pop("block2.rep.1.pointwise.weight")
    torch.save(state, tmp_path / "bad.pth")
    with pytest.raises(BenchError, match="block2.rep.1.pointwise.weight_typo"):
        make_model(pretrained=str(tmp_path / "bad.pth"))


def test_detector_checkpoint_round_trip(tmp_path):
    source = make_model(seed=1).eval()
    torch.save(source.state_dict(), tmp_path / "f3net.pt")
    state = torch.load(tmp_path / "f3net.pt", weights_only=True)
    assert "fad.dct" not in state  # derived buffers are rebuilt from the config, not stored
    restored = make_model(seed=2)
    restored.load_state_dict(state)
    images = make_batch().images
    assert torch.allclose(restored.eval()(images), source(images))

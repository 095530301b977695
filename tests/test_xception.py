"""xception: tiny variant trains and predicts, published defaults, weight loading by file / tag (random init, CPU)."""

from __future__ import annotations

import dataclasses
import urllib.error

import pytest
import timm
import torch
from timm.models.xception import Xception as TimmXception

from bench.config import TrainerConfig
from bench.detectors.xception import Xception, XceptionConfig, XceptionNet
from bench.errors import BenchError
from bench.records import Batch

import tiny


def tiny_cfg(**overrides) -> XceptionConfig:
    return tiny.tiny_cfg(Xception, **overrides)


def make_model(seed: int = 0, **overrides) -> Xception:
    torch.manual_seed(seed)
    return Xception(tiny_cfg(**overrides), domains=["fake"])


def make_batch(size: int = 8, seed: int = 0) -> Batch:
    return tiny.learnable_batch(size, seed)


def test_tiny_trains_every_parameter_and_loss_decreases():
    model, batch = make_model().train(), make_batch()
    losses = tiny.train_steps(model, batch, steps=8, check_grads_at=0)
    assert losses[-1] < losses[0]


def test_predict_proba_and_describe():
    model = make_model().eval()
    probs = model.predict_proba(make_batch(5).images)
    assert probs.shape == (5,) and ((probs >= 0) & (probs <= 1)).all()
    facts = model.describe()
    assert facts["weights"] == "random" and facts["arch"] != "legacy_xception"
    assert facts["params_trainable"] == facts["params_total"] > 0


def test_full_size_defaults_are_deepfakebench():
    cfg = XceptionConfig()
    assert (cfg.input_size, tuple(cfg.mean), tuple(cfg.std)) == (256, (0.5,) * 3, (0.5,) * 3)
    a = cfg.augment
    assert (a.hflip, a.blur, a.color, a.jpeg, tuple(a.jpeg_quality)) == (0.5, 0.5, 0.5, 0.5, (40, 100))
    assert cfg.pretrained == "tf_in1k" and cfg.drop_rate == 0.0
    assert (cfg.width_mult, cfg.middle_blocks) == (1.0, 8)
    assert Xception.config_class.recipe == {
        "optimizer": "adam", "lr": 2e-4, "weight_decay": 5e-4, "batch_size": 32, "epochs": 10, "frames_per_video": 32
    }
    assert set(Xception.config_class.recipe) <= {f.name for f in dataclasses.fields(TrainerConfig)}
    assert set(Xception.config_class.tiny) <= {f.name for f in dataclasses.fields(XceptionConfig)}


def test_eval_transform_is_resize_only():
    model = make_model()
    image = torch.randint(0, 256, (80, 96, 3), dtype=torch.uint8).numpy()
    first, second = model.eval_transform()(image), model.eval_transform()(image)
    assert first.shape == (3, 64, 64) and torch.equal(first, second)  # deterministic: no augmentation


def test_reduced_net_at_full_width_is_legacy_xception():
    ours = {k: v.shape for k, v in XceptionNet(num_classes=1000).state_dict().items()}
    theirs = {k: v.shape for k, v in timm.create_model("legacy_xception").state_dict().items()}
    assert ours == theirs


def test_full_size_builds_and_runs():
    torch.manual_seed(0)
    model = Xception(XceptionConfig(pretrained=None), domains=["fake"]).eval()
    assert isinstance(model.backbone, TimmXception)
    assert model.describe()["arch"] == "legacy_xception"
    with torch.no_grad():
        assert model(torch.randn(2, 3, 256, 256)).shape == (2, 2)


def test_local_file_round_trip(tmp_path):
    source = make_model(seed=1).eval()
    path = tmp_path / "xception_tiny.pth"
    torch.save(source.backbone.state_dict(), path)
    loaded = make_model(seed=2, pretrained=str(path)).eval()
    images = make_batch().images
    assert torch.allclose(loaded(images), source(images))
    assert loaded.describe()["weights"] == str(path)


def test_imagenet_style_file_keeps_the_body_and_drops_the_1000_class_head(tmp_path):
    torch.manual_seed(3)
    imagenet = XceptionNet(num_classes=1000, width_mult=0.125, middle_blocks=1)
    torch.save(imagenet.state_dict(), tmp_path / "in1k.pth")
    model = make_model(pretrained=str(tmp_path / "in1k.pth"))
    mine = model.backbone.state_dict()
    assert mine["fc.weight"].shape == (2, imagenet.num_features)
    for k, v in imagenet.state_dict().items():
        assert k.startswith("fc.") or torch.equal(mine[k], v), k


def test_cadene_style_pointwise_matrices_load(tmp_path):
    """DeepfakeBench's xception file stores the 1x1 pointwise convs as 2-D matrices."""
    source = make_model(seed=1).eval()
    state = {k: v.flatten(1) if k.endswith("pointwise.weight") else v for k, v in source.backbone.state_dict().items()}
    torch.save(state, tmp_path / "cadene.pth")
    loaded = make_model(seed=2, pretrained=str(tmp_path / "cadene.pth")).eval()
    images = make_batch().images
    assert torch.allclose(loaded(images), source(images))


def test_file_with_wrong_keys_names_them(tmp_path):
    state = make_model().backbone.state_dict()
    state["block1.skip.renamed"] = state.pop("block1.skip.weight")
    state["conv2.weight"] = torch.zeros(3, 3, 3, 3)
    torch.save(state, tmp_path / "bad.pth")
    with pytest.raises(BenchError) as err:
        make_model(pretrained=str(tmp_path / "bad.pth"))
    msg = str(err.value)
    assert "block1.skip.weight" in msg and "block1.skip.renamed" in msg and "conv2.weight" in msg
    assert err.value.key == "detector.pretrained"


def test_missing_file_and_unknown_tag_fail_clearly(tmp_path):
    with pytest.raises(BenchError, match="does not exist"):
        make_model(pretrained=str(tmp_path / "nope.pth"))
    with pytest.raises(BenchError, match="tf_in1k"):  # the message lists the known tags
        make_model(pretrained="no_such_tag")
    with pytest.raises(BenchError, match="width_mult"):  # ImageNet weights do not fit the reduced net
        make_model(pretrained="tf_in1k")


def test_tag_without_internet_asks_for_a_local_file(monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(timm.models._builder, "load_state_dict_from_url", offline)
    with pytest.raises(BenchError, match="detector.pretrained=/path/to"):
        Xception(XceptionConfig(pretrained="tf_in1k"), domains=["fake"])


class _RunsCode:
    """Unpickling this touches a file: a weights loader must refuse it without running it."""

    def __init__(self, marker) -> None:
        self.marker = marker

    def __reduce__(self):
        return (type(self.marker).touch, (self.marker,))


@pytest.mark.parametrize("detector", ["xception", "f3net"])
def test_a_pickled_weights_file_is_refused_in_one_line_without_running_it(tmp_path, detector):
    from bench.detectors.f3net import F3Net

    cls = {"xception": Xception, "f3net": F3Net}[detector]
    marker, path = tmp_path / "payload-ran", tmp_path / "weights.pth"
    torch.save({"conv1.weight": _RunsCode(marker)}, path)
    with pytest.raises(BenchError, match="not a plain weights file") as err:
        cls(tiny.tiny_cfg(cls, pretrained=str(path), width_mult=1.0, middle_blocks=8), domains=["fake"])
    assert "weights_only=False" not in str(err.value) and err.value.key == "detector.pretrained"
    assert not marker.exists()

"""Hydra composition: typed schemas, protocol-dependent scale, detector recipes, sweeps, error messages."""

from __future__ import annotations

import pytest

from bench.compose import compose_config, compose_run, expand_sweep, group_options
from bench.errors import BenchError


def test_default_is_the_demo_at_tiny_scale():
    cfg = compose_run([])
    assert cfg.protocol.name == "demo" and cfg.meta.scale == "tiny"
    assert cfg.detector.name == "dummy" and cfg.detector.width == 8  # Dummy.tiny
    assert cfg.trainer.epochs == 4  # scale/tiny.yaml beats the detector recipe's 5
    assert cfg.trainer.lr == 1e-3  # the recipe still applies where the scale says nothing


def test_full_scale_protocol_keeps_the_published_recipe():
    cfg = compose_run(["protocol=ff_to_all", "detector=dummy"])
    assert cfg.meta.scale == "full" and cfg.detector.width == 16 and cfg.trainer.epochs == 5
    assert list(cfg.protocol.test) == ["FF", "CDF-v1", "CDF-v2", "DFDC", "DFDC-P", "DFD"]
    assert list(cfg.protocol.train.domains) == ["Deepfakes", "Face2Face", "FaceSwap", "NeuralTextures"]


def test_explicit_scale_and_command_line_win():
    cfg = compose_run(["scale=full", "trainer.epochs=2"])
    assert cfg.meta.scale == "full" and cfg.detector.width == 16 and cfg.trainer.epochs == 2
    assert cfg.meta.overrides == ["scale=full", "trainer.epochs=2"]


@pytest.mark.parametrize("name", group_options("protocol"))
def test_every_protocol_composes_with_a_version(name):
    cfg = compose_run([f"protocol={name}"])
    assert cfg.protocol.name == name and cfg.protocol.version >= 1 and cfg.protocol.test


def test_dataset_roots_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("BENCH_FFPP_ROOT", "/data/ffpp-from-env")
    cfg = compose_run(["protocol=ff_to_all"])
    assert cfg.datasets.ffpp.root == "/data/ffpp-from-env"
    assert compose_run(["datasets.ffpp.root=/elsewhere"]).datasets.ffpp.root == "/elsewhere"


@pytest.mark.parametrize("overrides, expected", [
    (["trainer.epoch=3"], "trainer.epoch: unknown key; did you mean 'epochs'? valid keys: epochs, batch_size"),
    (["+trainer.epoch=3"], "trainer.epoch: unknown key; did you mean 'epochs'?"),  # `+` cannot add to a schema
    (["+detector.widht=4"], "detector.widht: unknown key; did you mean 'width'?"),
    (["+datasets.ffpp.rooot=/x"], "datasets.ffpp.rooot: unknown key; did you mean 'root'?"),
    (["tracking.nope=1"], "tracking.nope: unknown key; valid keys: enabled, uri"),
    (["trainer.epochs=three"], "trainer.epochs: expected int, got 'three'"),
    (["trainer.lr=fast"], "trainer.lr: expected float, got 'fast'"),
    (["trainer.progress=maybe"], "trainer.progress: expected bool, got 'maybe'"),
    (["protocol.train.domains=5"], "protocol.train.domains: expected list[str] | None, got '5'"),
    (["trainer.epochs=0"], "trainer.epochs: 0 must be >= 1"),
    (["trainer.lr=-1e-3"], "trainer.lr: -0.001 must be > 0"),
    (["trainer.batch_size=0"], "trainer.batch_size: 0 must be >= 1"),
    (["trainer.bootstrap=-1"], "trainer.bootstrap: -1 must be >= 0"),
    (["trainer.optimizer=adagrad"], "trainer.optimizer: 'adagrad' must be one of adam, adamw, sgd"),
    (["trainer.device=gpu"], "trainer.device: 'gpu' must be auto, cpu, cuda or cuda:N"),
    (["trainer.betas=[0.9]"], "trainer.betas: [0.9] must have 2 values"),
    (["detector.augment.hflip=1.5"], "detector.augment.hflip: 1.5 must be between 0 and 1"),
    (["protocol.train.split=training"], "protocol.train.split: 'training' must be one of train, val, test"),
    (["protocol.real_domain=mixed"], "protocol.real_domain: 'mixed' must be one of balanced, separate"),
    (["protocol.train.dataset=nope"], "protocol.train.dataset: unknown dataset 'nope'; registered: celebdf_v1"),
    (["detector=nope"], "unknown detector 'nope'; available: clip_ft, clip_probe, dummy"),
    (["dataset=ffpp"], "`bench run` has no dataset choice: a protocol names its datasets"),
])
def test_config_errors_are_one_line_naming_the_key(overrides, expected):
    with pytest.raises(BenchError) as err:
        compose_run(overrides)
    assert expected in str(err.value) and "\n" not in str(err.value)


def test_every_value_problem_is_reported_at_once():
    with pytest.raises(BenchError) as err:
        compose_run(["trainer.epochs=0", "trainer.lr=0", "+trainer.epoch=3"])
    msg = str(err.value)
    assert "trainer.epochs: 0" in msg and "trainer.lr: 0.0 must be > 0" in msg and "trainer.epoch: unknown key" in msg


def test_prepare_config_is_checked_too():
    with pytest.raises(BenchError, match=r"prepare.quality: 150 must be between 1 and 100"):
        compose_config("prepare", ["prepare.quality=150"])
    assert compose_config("prepare", ["prepare.quality=90"]).prepare.quality == 90


def test_sweep_expansion_is_a_cartesian_product():
    combos = list(expand_sweep(["detector=clip_probe,dummy", "trainer.seed=0,1", "trainer.epochs=1"]))
    assert len(combos) == 4
    assert ["detector=clip_probe", "trainer.seed=0", "trainer.epochs=1"] in combos
    assert ["detector=dummy", "trainer.seed=1", "trainer.epochs=1"] in combos

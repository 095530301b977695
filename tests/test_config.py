"""Hydra composition: typed schemas, protocol-dependent scale, detector recipes, sweeps, error messages."""

from __future__ import annotations

import pytest
from hydra.errors import HydraException
from omegaconf.errors import OmegaConfBaseException

from bench.compose import compose_run, expand_sweep, friendly_error, group_options


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


@pytest.mark.parametrize("override, key", [
    ("trainer.epoch=3", "trainer.epoch"),  # typo: unknown key
    ("trainer.epochs=three", "trainer.epochs"),  # wrong type
    ("detector.widht=4", "detector.widht"),
])
def test_bad_keys_fail_naming_the_key(override, key):
    with pytest.raises((HydraException, OmegaConfBaseException)) as err:
        compose_run([override])
    assert key in friendly_error(err.value)


def test_unknown_detector_lists_the_options():
    with pytest.raises(HydraException) as err:
        compose_run(["detector=nope"])
    msg = friendly_error(err.value)
    assert "unknown detector 'nope'" in msg and "dummy" in msg and "clip_probe" in msg and "\n" not in msg


def test_sweep_expansion_is_a_cartesian_product():
    combos = list(expand_sweep(["detector=clip_probe,dummy", "trainer.seed=0,1", "trainer.epochs=1"]))
    assert len(combos) == 4
    assert ["detector=clip_probe", "trainer.seed=0", "trainer.epochs=1"] in combos
    assert ["detector=dummy", "trainer.seed=1", "trainer.epochs=1"] in combos

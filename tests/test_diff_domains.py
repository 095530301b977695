"""DiFF's generator folders as domains: a subset name stands for its generators, so a run trained on one subset
has several domains (what MoA-CLIP's adapters, router and cross-domain losses need)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from bench.data import assign_domains
from bench.datasets.diff import DiFF
from bench.errors import BenchError
from bench.records import REAL_DOMAIN
from tests.dataset_trees import make_diff, write_image

SUBSETS = ("t2i", "i2i", "fs", "fe")


def build(tmp_path: Path, **cfg) -> DiFF:
    return DiFF(OmegaConf.merge(OmegaConf.structured(DiFF.config_class), cfg), tmp_path / "cache")


@pytest.fixture
def tree(tmp_path, monkeypatch):
    monkeypatch.delenv(DiFF.config_class.root_env, raising=False)
    return make_diff(tmp_path / "diff", per_subset=2, methods=3, image=False)


def test_each_generator_folder_is_a_domain_and_a_subset_stands_for_its_generators(tree, tmp_path):
    diff = build(tmp_path, root=str(tree.root))
    generators = [f"method{m}" for m in range(3)]
    assert diff.domains() == [f"{s}/{g}" for s in SUBSETS for g in generators]
    assert diff.domain_groups() == {s: [f"{s}/{g}" for g in generators] for s in SUBSETS}
    counts = Counter(s.domain for s in diff.samples("train"))
    assert counts == Counter({REAL_DOMAIN: 6, **{d: 2 for d in diff.domains()}})

    # protocols keep naming subsets: training, validation and test sets select all of a subset's generators
    assert diff.expand_domains(["t2i"]) == ["t2i/method0", "t2i/method1", "t2i/method2"]
    assert diff.expand_domains(["fs", "t2i/method1"]) == ["fs/method0", "fs/method1", "fs/method2", "t2i/method1"]
    test_t2i = diff.select("test", ["t2i"])
    assert Counter(s.domain for s in test_t2i) == Counter({REAL_DOMAIN: 6, **{f"t2i/{g}": 2 for g in generators}})
    with pytest.raises(BenchError, match="no domain.*'t2x'") as err:
        diff.select("test", ["t2x"])
    assert "t2i" in str(err.value)

    # what the runner does with protocol diff_t2i: N = 3 domains, real images spread over them
    names, ids = assign_domains(diff.select("train", ["t2i"]), diff.expand_domains(["t2i"]), "balanced")
    assert len(names) == 3 and set(ids.tolist()) == {0, 1, 2}


def test_generators_mapping_renames_merges_and_skips(tree, tmp_path):
    generators = {"T2I/method0": "t2i/sd", "t2i/METHOD1": "t2i/sd", "t2i/method2": None}  # keys in any case
    diff = build(tmp_path, root=str(tree.root), generators=generators)
    assert diff.domain_groups()["t2i"] == ["t2i/sd"]
    counts = Counter(s.domain for s in diff.select("val", ["t2i"]))
    assert counts == Counter({REAL_DOMAIN: 6, "t2i/sd": 4})  # method2's images are skipped on purpose


def test_images_directly_in_a_subset_folder_take_the_subset_name(tree, tmp_path):
    write_image(tree.root / "train" / "FS" / "loose.png", False)
    diff = build(tmp_path, root=str(tree.root))
    assert diff.domain_groups()["fs"] == ["fs", "fs/method0", "fs/method1", "fs/method2"]
    assert Counter(s.domain for s in diff.samples("train"))["fs"] == 1


def test_subset_level_and_bad_level(tree, tmp_path):
    diff = build(tmp_path, root=str(tree.root), domain_level="subset")
    assert diff.domains() == list(SUBSETS) and diff.expand_domains(["t2i"]) == ["t2i"]
    with pytest.raises(BenchError) as err:
        build(tmp_path, root=str(tree.root), domain_level="method")
    assert err.value.key == "datasets.diff.domain_level"

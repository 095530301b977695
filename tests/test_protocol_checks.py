"""The runner refuses splits AUC cannot be computed on, before any training."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import pytest

from bench.config import SplitSpec
from bench.dataset import DatasetAdapter, DatasetConfig
from bench.errors import BenchError
from bench.records import Sample
from bench.runner import collect


class NoRootConfig(DatasetConfig):
    needs_root: ClassVar[bool] = False


class OnlyFakesInTest(DatasetAdapter):
    """Real images exist only in train (like a DiFF tree whose test/real folder is missing)."""

    name = "only_fakes"
    config_class = NoRootConfig

    def domains(self) -> list[str]:
        return ["t2i", "fs"]

    def samples(self, split: str) -> list[Sample]:
        out = [Sample(self.name, split, d, 1, f"{self.name}/{d}/{split}", 0, path="x.png") for d in self.domains()]
        if split == "train":
            out.append(Sample(self.name, split, "real", 0, f"{self.name}/real/{split}", 0, path="r.png"))
        return out


@pytest.fixture
def adapters(tmp_path: Path) -> dict[str, DatasetAdapter]:
    return {"only_fakes": OnlyFakesInTest(None, tmp_path)}


def test_a_test_set_of_fakes_alone_is_refused_with_the_reason(adapters):
    with pytest.raises(BenchError, match="only fake samples: AUC needs real and fake images"):
        collect(adapters, SplitSpec(dataset="only_fakes", split="test", domains=["t2i"]), "test set 'T2I'")
    train = collect(adapters, SplitSpec(dataset="only_fakes", split="train", domains=["t2i"]), "the training set")
    assert {s.domain for s in train} == {"t2i", "real"}  # the other fake domain is not used for training


def test_unknown_domain_names_the_available_ones(adapters):
    with pytest.raises(BenchError, match=r"no domain\(s\) \['i2i'\]; it has \['t2i', 'fs'\]"):
        collect(adapters, SplitSpec(dataset="only_fakes", split="train", domains=["i2i"]), "the training set")

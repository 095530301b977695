"""docs/plugins.md cannot drift from the code: every hook, and every public member of every interface a plugin
touches, has its entry (datasette's test_plugin_hooks_are_documented, extended to the interfaces)."""

from __future__ import annotations

import dataclasses
import inspect
import re
from pathlib import Path

import pytest

from bench import checks, hookspecs, testing
from bench.config import ProtocolConfig, SplitSpec
from bench.dataset import DatasetAdapter, DatasetConfig, VideoDatasetAdapter, VideoRecord, dataset_node
from bench.detector import Detector
from bench.detector_config import AugmentConfig, BackboneConfig, DetectorConfig
from bench.faces import Face, FaceDetector, FaceDetectorConfig
from bench.leaderboards.spec import Match, RowKey, TableSpec
from bench.records import Batch, LossOutput, Sample

DOC = (Path(__file__).resolve().parents[1] / "docs" / "plugins.md").read_text()
CLASSES = [Detector, DetectorConfig, AugmentConfig, BackboneConfig, DatasetAdapter, VideoDatasetAdapter, DatasetConfig,
           VideoRecord, Sample, Batch, LossOutput, FaceDetector, FaceDetectorConfig, Face, ProtocolConfig, SplitSpec,
           TableSpec, RowKey, Match, testing.DetectorReport, testing.DatasetReport]
FUNCTIONS = [testing.check_detector, testing.check_dataset, dataset_node, checks.at_least, checks.positive,
             checks.between, checks.one_of, checks.matches, checks.length, checks.optional, checks.each]


def section(title: str, level: str) -> str:
    """The text under the heading `<level> <title>` up to the next heading of that level or above."""
    m = re.search(rf"^{level} {re.escape(title)}\n(.*?)(?=^#{{1,{len(level)}}} |\Z)", DOC, flags=re.M | re.S)
    assert m, f"docs/plugins.md has no '{level} {title}' section"
    return m.group(1)


def call(func) -> str:
    """`name(a, *b, c)`: the parameter names of `func`, without self, annotations or defaults."""
    marks = {inspect.Parameter.VAR_POSITIONAL: "*", inspect.Parameter.VAR_KEYWORD: "**"}
    params = [marks.get(p.kind, "") + p.name for p in inspect.signature(func).parameters.values() if p.name not in ("self", "cls")]
    return f"{func.__name__}({', '.join(params)})"


def public_members(cls: type) -> list[str]:
    """How each public member defined by `cls` itself must be written: fields and attributes as `name`, methods
    as `name(args)`."""
    out = [f.name for f in dataclasses.fields(cls)] if dataclasses.is_dataclass(cls) else []
    own_fields = set(cls.__dict__.get("__dataclass_fields__", {})) if dataclasses.is_dataclass(cls) else set()
    for name, annotation in cls.__dict__.get("__annotations__", {}).items():
        if not name.startswith("_") and name not in out and ("ClassVar" in str(annotation) or name not in own_fields):
            out.append(name)
    for name, value in vars(cls).items():
        if name.startswith("_") or name in out:
            continue
        if isinstance(value, property):
            out.append(name)
        elif inspect.isfunction(value):
            out.append(call(value))
    return out


def test_every_hook_is_documented_with_its_signature():
    hooks_doc = section("Hooks", "##")
    headings = set(re.findall(r"^### `(.+)`$", hooks_doc, flags=re.M))
    hooks = [fn for name, fn in inspect.getmembers(hookspecs, inspect.isfunction) if name.startswith("bench_")]
    assert hooks, "no hook specs found"
    assert headings == {call(fn) for fn in hooks}, "the '## Hooks' section must have one '### `hook(args)`' per hook spec"


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__qualname__)
def test_every_public_member_of_every_interface_is_documented(cls):
    text = section(f"`{cls.__module__}.{cls.__qualname__}`", "###")
    missing = [m for m in public_members(cls) if f"`{m}`" not in text]
    assert not missing, f"docs/plugins.md, section `{cls.__module__}.{cls.__qualname__}`: document {missing}"


@pytest.mark.parametrize("func", FUNCTIONS, ids=lambda f: f.__name__)
def test_every_helper_function_is_documented_with_its_signature(func):
    assert f"`{func.__module__}.{call(func)}`" in DOC, f"docs/plugins.md: document `{func.__module__}.{call(func)}`"


def test_the_reference_documents_nothing_that_does_not_exist():
    documented = set(re.findall(r"^### `(bench\.[\w.]+)`$", section("Reference", "##"), flags=re.M))
    assert documented == {f"{c.__module__}.{c.__qualname__}" for c in CLASSES}


def test_the_member_list_sees_what_a_plugin_author_sees():
    assert "forward(images)" in public_members(Detector) and "needs_images(n_samples)" in public_members(Detector)
    assert {"recipe", "tiny", "checks", "name", "augment"} <= set(public_members(DetectorConfig))
    assert {"root_env", "needs_root", "root"} <= set(public_members(DatasetConfig))
    assert {"samples(split)", "domains()", "root"} <= set(public_members(DatasetAdapter))

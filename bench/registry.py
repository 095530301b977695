"""Lazy registries of detectors, datasets, face detectors and leaderboard tables.

Entries hold `"module:object"` strings until first use, so `bench list` starts without importing torch. An entry
may also name its config class apart (`config="pkg.mod_cfg:Config"`): composing a run config then imports only
that torch-free module, never the model code. A duplicate name raises (naming both providers) instead of silently
shadowing, and a loaded object is checked against the base class its kind requires.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

from bench.errors import BenchError

KINDS = {
    # kind -> "module:Base": every entry of that kind is a subclass of it (a table is an instance of TableSpec)
    "detector": "bench.detector:Detector",
    "dataset": "bench.dataset:DatasetAdapter",
    "face_detector": "bench.faces:FaceDetector",
    "table": "bench.leaderboards.spec:TableSpec",
}
CONFIG_KINDS = {
    # kind -> "module:BaseConfig" every config class of that kind must subclass (torch-free modules)
    "detector": "bench.detector_config:DetectorConfig",
    "dataset": "bench.dataset:DatasetConfig",
    "face_detector": "bench.faces:FaceDetectorConfig",
}


def load_object(target: str) -> Any:
    """Import `"package.module:Object"`; only ever called on strings that a plugin registered."""
    module_name, _, attr = target.partition(":")
    if not attr:
        raise ValueError(f"target {target!r} must look like 'package.module:Object'")
    obj: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


@dataclass
class Entry:
    kind: str
    name: str
    target: str | type | Any
    description: str
    dist: str  # distribution that registered it, e.g. "forgerybench" or "my-detector-plugin"
    config: str | type | None = None  # its config class, when registered apart from the class (torch-free)
    _obj: Any = field(default=None, repr=False)
    _config: type | None = field(default=None, repr=False)

    def load(self) -> Any:
        """The registered class (or table spec); imports its module. Failures are one BenchError line."""
        if self._obj is None:
            obj = self._checked(self.target, KINDS[self.kind])
            if self.config is not None and obj.config_class is not self.config_class():
                raise BenchError(f"{self._who()}: registered with config {self.config!r} but its config_class is "
                                 f"{obj.config_class.__qualname__}", key=self.kind)
            if self.kind == "table" and obj.name != self.name:
                raise BenchError(f"{self._who()}: the TableSpec is named {obj.name!r}", key="--table")
            self._obj = obj
        return self._obj

    def config_class(self) -> type:
        """The class's config dataclass: from the `config` target when given (the class is not imported), else from
        the class's `config_class` attribute."""
        if self._config is None:
            self._config = self._checked(self.config, CONFIG_KINDS[self.kind]) if self.config else self.load().config_class
        return self._config

    def _who(self) -> str:
        return f"{self.kind} {self.name!r} from {self.dist}"

    def _checked(self, target: str | type | Any, base_target: str) -> Any:
        try:
            obj = load_object(target) if isinstance(target, str) else target
        except Exception as err:
            raise BenchError(f"{self._who()}: cannot import {target!r}: {type(err).__name__}: {err}", key=self.kind) from err
        base = load_object(base_target)
        if self.kind == "table" and not isinstance(obj, base):
            raise BenchError(f"{self._who()}: {obj!r} is not a {base.__name__} instance", key=self.kind)
        if self.kind != "table" and not (isinstance(obj, type) and issubclass(obj, base)):
            raise BenchError(f"{self._who()}: {obj!r} is not a subclass of {base.__name__}", key=self.kind)
        return obj


class Registry:
    """Name -> Entry for one kind of plugin object."""

    def __init__(self, kind: str) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown registry kind {kind!r}")
        self.kind = kind
        self._entries: dict[str, Entry] = {}

    def add(self, name: str, target: str | type | Any, *, description: str = "", dist: str = "?",
            config: str | type | None = None) -> None:
        check_name(self.kind, name)
        if name in self._entries:
            raise BenchError(clash_message(self.kind, name, self._entries[name].dist, dist), key=self.kind)
        self._entries[name] = Entry(self.kind, name, target, description, dist, config)

    def entry(self, name: str) -> Entry:
        try:
            return self._entries[name]
        except KeyError:
            known = ", ".join(sorted(self._entries)) or "none"
            raise BenchError(f"unknown {self.kind} {name!r}; known: {known}", key=f"{self.kind}") from None

    def get(self, name: str) -> Any:
        return self.entry(name).load()

    def names(self) -> list[str]:
        return sorted(self._entries)

    def entries(self) -> list[Entry]:
        return [self._entries[n] for n in self.names()]

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __len__(self) -> int:
        return len(self._entries)


def check_name(kind: str, name: object) -> None:
    if not (isinstance(name, str) and name.isidentifier()):
        raise ValueError(f"{kind} name {name!r} must be a Python identifier (it is used as a Hydra config name)")


def clash_message(kind: str, name: str, first: str, second: str) -> str:
    """One line for a name registered twice, naming both distributions and how to get out of it."""
    which = second if second != first else "one of them"
    return (f"{kind} name {name!r} is registered by {first} and again by {second}: names must be unique; "
            f"uninstall one or disable a plugin with BENCH_DISABLE_PLUGINS={which}")

"""Lazy registries of detectors, datasets and face detectors.

Entries hold `"module:object"` strings until first use, so `bench list` starts without importing torch. An entry
may also name its config class apart (`config="pkg.mod_cfg:Config"`): composing a run config then imports only
that torch-free module, never the model code. A duplicate name raises (naming both providers) instead of silently
shadowing, and a loaded class is checked against the base class its kind requires.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

from bench.errors import BenchError

KINDS = {
    # kind -> "module:BaseClass" every entry of that kind must subclass
    "detector": "bench.detector:Detector",
    "dataset": "bench.dataset:DatasetAdapter",
    "face_detector": "bench.faces:FaceDetector",
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
    target: str | type
    description: str
    dist: str  # distribution that registered it, e.g. "forgerybench" or "my-detector-plugin"
    config: str | type | None = None  # its config class, when registered apart from the class (torch-free)
    _obj: type | None = field(default=None, repr=False)
    _config: type | None = field(default=None, repr=False)

    def load(self) -> type:
        """The registered class (imports its module)."""
        if self._obj is None:
            obj = _checked(self, self.target, KINDS[self.kind])
            if self.config is not None and obj.config_class is not self.config_class():
                raise TypeError(f"{self.kind} {self.name!r} from {self.dist}: registered with config {self.config!r} "
                                f"but its config_class is {obj.config_class.__qualname__}")
            self._obj = obj
        return self._obj

    def config_class(self) -> type:
        """The class's config dataclass: from the `config` target when given (the class is not imported), else from
        the class's `config_class` attribute."""
        if self._config is None:
            self._config = _checked(self, self.config, CONFIG_KINDS[self.kind]) if self.config else self.load().config_class
        return self._config


def _checked(entry: Entry, target: str | type, base_target: str) -> type:
    obj = load_object(target) if isinstance(target, str) else target
    base = load_object(base_target)
    if not (isinstance(obj, type) and issubclass(obj, base)):
        raise TypeError(f"{entry.kind} {entry.name!r} from {entry.dist}: {obj!r} is not a subclass of {base.__name__}")
    return obj


class Registry:
    """Name -> Entry for one kind of plugin object."""

    def __init__(self, kind: str) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown registry kind {kind!r}")
        self.kind = kind
        self._entries: dict[str, Entry] = {}

    def add(self, name: str, target: str | type, *, description: str = "", dist: str = "?",
            config: str | type | None = None) -> None:
        if not name.isidentifier():
            raise ValueError(f"{self.kind} name {name!r} must be a Python identifier (it is used as a Hydra config name)")
        if name in self._entries:
            old = self._entries[name]
            raise BenchError(
                f"duplicate {self.kind} name {name!r}: registered by {old.dist} and again by {dist}; "
                f"uninstall one of them or disable external plugins with BENCH_DISABLE_PLUGINS=1"
            )
        self._entries[name] = Entry(self.kind, name, target, description, dist, config)

    def entry(self, name: str) -> Entry:
        try:
            return self._entries[name]
        except KeyError:
            known = ", ".join(sorted(self._entries)) or "none"
            raise BenchError(f"unknown {self.kind} {name!r}; known: {known}", key=f"{self.kind}") from None

    def get(self, name: str) -> type:
        return self.entry(name).load()

    def names(self) -> list[str]:
        return sorted(self._entries)

    def entries(self) -> list[Entry]:
        return [self._entries[n] for n in self.names()]

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __len__(self) -> int:
        return len(self._entries)

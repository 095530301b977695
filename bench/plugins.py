"""Plugin discovery: a pluggy PluginManager fed by the ``bench`` entry-point group plus the built-in modules.

A plugin that fails to import (or whose hook raises) is reported in one warning naming its distribution and the
error, and everything else keeps working. ``BENCH_DISABLE_PLUGINS=1`` loads the built-ins only.
"""

from __future__ import annotations

import functools
import importlib
import os
import warnings
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any

import pluggy

from bench import hookspecs
from bench.errors import BenchError
from bench.registry import Registry

ENTRY_POINT_GROUP = "bench"
DISABLE_ENV = "BENCH_DISABLE_PLUGINS"
BUILTIN_DIST = "forgerybench"
# Built-in plugin modules: they register through the same hooks as third-party ones.
BUILTIN_MODULES = ("bench.detectors", "bench.datasets", "bench.faces")


class PluginWarning(UserWarning):
    """A third-party plugin could not be loaded; the rest of ForgeryBench still works."""


class Registrar:
    """The ``register`` argument of the registration hooks, bound to one registry and one distribution."""

    def __init__(self, registry: Registry, dist: str) -> None:
        self._registry = registry
        self.dist = dist

    def __call__(self, name: str, target: str | type, description: str = "", *, config: str | type | None = None) -> None:
        if not description and isinstance(target, type):  # a class carries its own one-line description
            description = getattr(target, "description", "")
        self._registry.add(name, target, description=description, dist=self.dist, config=config)


@dataclass
class ConfigNode:
    group: str
    name: str
    node: Any
    dist: str


class ConfigRegistrar:
    """The ``store`` argument of ``bench_register_configs``: collects extra Hydra config nodes."""

    def __init__(self, nodes: list[ConfigNode], dist: str) -> None:
        self._nodes = nodes
        self.dist = dist

    def __call__(self, group: str, name: str, node: Any) -> None:
        for n in self._nodes:
            if (n.group, n.name) == (group, name):
                raise BenchError(f"duplicate config {group}/{name}: from {n.dist} and again from {self.dist}")
        self._nodes.append(ConfigNode(group, name, node, self.dist))


@dataclass
class Plugins:
    """Everything the plugins registered."""

    manager: pluggy.PluginManager
    detectors: Registry = field(default_factory=lambda: Registry("detector"))
    datasets: Registry = field(default_factory=lambda: Registry("dataset"))
    face_detectors: Registry = field(default_factory=lambda: Registry("face_detector"))
    configs: list[ConfigNode] = field(default_factory=list)
    dists: dict[str, str] = field(default_factory=dict)  # plugin name -> distribution
    failed: dict[str, str] = field(default_factory=dict)  # distribution -> error


def _warn(dist: str, what: str, err: BaseException) -> None:
    warnings.warn(f"plugin {dist!r} {what}: {type(err).__name__}: {err} (skipped; set {DISABLE_ENV}=1 to load built-ins only)",
                  PluginWarning, stacklevel=3)


def load_plugins(external: bool | None = None) -> Plugins:
    """Build a fresh PluginManager and run every registration hook."""
    if external is None:
        external = os.environ.get(DISABLE_ENV, "").lower() not in ("1", "true", "yes")
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    plugins = Plugins(manager=pm)
    for mod_name in BUILTIN_MODULES:
        pm.register(importlib.import_module(mod_name), name=mod_name)
        plugins.dists[mod_name] = BUILTIN_DIST
    if external:
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            dist = ep.dist.name if ep.dist is not None else ep.value
            try:
                pm.register(ep.load(), name=f"{dist}:{ep.name}")
            except Exception as err:  # a broken third-party plugin must not take the CLI down
                plugins.failed[dist] = f"{type(err).__name__}: {err}"
                _warn(dist, "failed to import", err)
                continue
            plugins.dists[f"{dist}:{ep.name}"] = dist

    hooks = (
        (pm.hook.bench_register_detectors, "register", plugins.detectors),
        (pm.hook.bench_register_datasets, "register", plugins.datasets),
        (pm.hook.bench_register_face_detectors, "register", plugins.face_detectors),
        (pm.hook.bench_register_configs, "store", None),
    )
    for caller, argname, registry in hooks:
        # Call implementations one by one so that what they register is attributed to their distribution.
        for impl in caller.get_hookimpls():  # registration order: built-ins first
            dist = plugins.dists.get(impl.plugin_name, impl.plugin_name)
            arg = Registrar(registry, dist) if registry is not None else ConfigRegistrar(plugins.configs, dist)
            try:
                impl.function(**{argname: arg})
            except BenchError:
                raise  # duplicate names are the user's to resolve, loudly
            except Exception as err:
                if dist == BUILTIN_DIST:
                    raise
                plugins.failed[dist] = f"{type(err).__name__}: {err}"
                _warn(dist, f"raised in {caller.name}", err)
    return plugins


@functools.lru_cache(maxsize=1)
def get_plugins() -> Plugins:
    """The process-wide plugin set (cached; tests call `load_plugins` directly or clear this cache)."""
    return load_plugins()

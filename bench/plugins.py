"""Plugin discovery: a pluggy PluginManager fed by the built-in modules, the `bench` entry-point group and local
modules (`BENCH_PLUGINS=mod` or `bench -p mod`, like `pytest -p`).

Registration is transactional per distribution: its modules are imported and checked (every `bench_*` attribute
must be a known hook marked `@bench.hookimpl`), its hooks are called against staging registrars, its config nodes
are validated, and only then are its registrations committed. A distribution that fails anywhere contributes
nothing and is reported once (one warning line; FAILED in `bench list plugins`). A name registered twice in any
namespace (detectors, datasets, face detectors, tables, every config group) is not merged: it stops every command
except `bench list plugins`, which shows it. `BENCH_DISABLE_PLUGINS=1` loads the built-ins only;
`BENCH_DISABLE_PLUGINS=a,b` skips those distributions (or entry-point / module names).
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import importlib
import importlib.util
import os
import re
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from importlib.resources import files
from typing import Any

import pluggy

from bench import hookspecs
from bench.errors import BenchError, BenchWarning
from bench.registry import Entry, Registry, check_name, clash_message

ENTRY_POINT_GROUP = "bench"
DISABLE_ENV = "BENCH_DISABLE_PLUGINS"  # 1 = every external plugin; or comma-separated distribution/module names
LOCAL_ENV = "BENCH_PLUGINS"  # comma-separated importable modules to load as plugins
BUILTIN_DIST = "forgerybench"
# Built-in plugin modules: they register through the same hooks as third-party ones.
BUILTIN_MODULES = ("bench.detectors", "bench.datasets", "bench.faces")
# registration hook -> (the Plugins registry its `register` argument fills, the registry's kind)
REGISTRY_HOOKS = {
    "bench_register_detectors": ("detectors", "detector"),
    "bench_register_datasets": ("datasets", "dataset"),
    "bench_register_face_detectors": ("face_detectors", "face_detector"),
    "bench_register_tables": ("tables", "table"),
}
CONFIG_HOOK = "bench_register_configs"
# config groups a plugin may add options to -> the schema a node must fit ("scale" nodes are trainer overrides)
CONFIG_GROUPS = {"protocol": "ProtocolConfig", "trainer": "TrainerConfig", "tracking": "TrackingConfig",
                 "scale": "TrainerConfig", "detector": None}


class PluginWarning(BenchWarning):
    """A third-party plugin could not be loaded; the rest of ForgeryBench still works."""


@dataclass
class ConfigNode:
    group: str
    name: str
    node: Any  # a dataclass instance or an OmegaConf node (dicts are typed against their schema when validated)
    dist: str
    detector: str | None = None  # group "detector": the registered detector this variant configures


@dataclass
class PluginInfo:
    """One distribution as `bench list plugins` shows it."""

    dist: str
    version: str
    modules: list[str]
    status: str = "ok"  # ok | FAILED | clash | disabled
    reason: str = ""  # one line, for FAILED / clash / disabled
    registers: list[str] = field(default_factory=list)  # "detector:toy_color", "config:protocol/toy", ...


@dataclass
class Staged:
    """What one distribution registers, held back until every one of its hooks has succeeded."""

    dist: str
    entries: list[tuple[str, Entry]] = field(default_factory=list)  # (Plugins registry attribute, entry)
    configs: list[ConfigNode] = field(default_factory=list)

    def describe(self) -> list[str]:
        return [f"{e.kind}:{e.name}" for _, e in self.entries] + [f"config:{n.group}/{n.name}" for n in self.configs]


class Registrar:
    """The `register` argument of a registration hook: `register(name, target, description="", *, config=None)`."""

    def __init__(self, staged: Staged, attr: str, kind: str) -> None:
        self._staged, self._attr, self.kind = staged, attr, kind
        self.dist = staged.dist

    def __call__(self, name: str, target: Any, description: str = "", *, config: str | type | None = None) -> None:
        check_name(self.kind, name)
        if any(e.kind == self.kind and e.name == name for _, e in self._staged.entries):
            raise ValueError(f"registers {self.kind} {name!r} twice")
        if not description and not isinstance(target, str):  # a class (or table spec) carries its own description
            description = getattr(target, "description", "")
        self._staged.entries.append((self._attr, Entry(self.kind, name, target, description, self.dist, config)))


class ConfigRegistrar:
    """The `store` argument of `bench_register_configs`: `store(group, name, node)`."""

    def __init__(self, staged: Staged) -> None:
        self._staged = staged
        self.dist = staged.dist

    def __call__(self, group: str, name: str, node: Any) -> None:
        if group not in CONFIG_GROUPS:
            raise ValueError(f"store({group!r}, {name!r}, ...): a plugin can add options to the config groups "
                             f"{', '.join(CONFIG_GROUPS)} only")
        check_name(f"{group} config", name)
        if isinstance(node, type) and dataclasses.is_dataclass(node):
            node = node()
        if not (isinstance(node, dict) or dataclasses.is_dataclass(node)):
            raise TypeError(f"store({group!r}, {name!r}, ...): the node must be a dataclass instance or a dict, "
                            f"not {type(node).__name__}")
        if any((n.group, n.name) == (group, name) for n in self._staged.configs):
            raise ValueError(f"stores config {group}/{name} twice")
        self._staged.configs.append(ConfigNode(group, name, node, self.dist))


@dataclass
class Plugins:
    """Everything the plugins registered, and how each distribution fared."""

    manager: pluggy.PluginManager
    detectors: Registry = field(default_factory=lambda: Registry("detector"))
    datasets: Registry = field(default_factory=lambda: Registry("dataset"))
    face_detectors: Registry = field(default_factory=lambda: Registry("face_detector"))
    tables: Registry = field(default_factory=lambda: Registry("table"))
    configs: list[ConfigNode] = field(default_factory=list)
    info: dict[str, PluginInfo] = field(default_factory=dict)  # distribution -> info, in load order
    disabled: str = ""  # the value of BENCH_DISABLE_PLUGINS

    @property
    def failed(self) -> dict[str, str]:
        return {d: i.reason for d, i in self.info.items() if i.status == "FAILED"}

    @property
    def clashes(self) -> list[str]:
        return [i.reason for i in self.info.values() if i.status == "clash"]

    def check(self) -> None:
        """Raise if two distributions registered the same name (nothing was merged; the user must choose)."""
        if self.clashes:
            raise BenchError("; ".join(self.clashes), key=DISABLE_ENV)


def _canon(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split())
    return f"{type(err).__name__}: {text}" if not isinstance(err, BenchError) else text


def _check_hook_names(pm: pluggy.PluginManager, plugin: object) -> None:
    """Every `bench_*` attribute of a plugin must be a known hook marked @bench.hookimpl (pluggy ignores the rest)."""
    known = sorted(n for n in dir(hookspecs) if n.startswith("bench_"))
    for attr in dir(plugin):
        if not attr.startswith("bench_"):
            continue
        if attr not in known:
            near = difflib.get_close_matches(attr, known, n=1)
            raise ValueError(f"unknown hook {attr}" + (f" (did you mean {near[0]}?)" if near else f"; hooks: {', '.join(known)}"))
        if pm.parse_hookimpl_opts(plugin, attr) is None:
            raise ValueError(f"{attr} is not marked @bench.hookimpl")


@functools.lru_cache(maxsize=None)
def _builtin_options(group: str) -> frozenset[str]:
    """Option names that bench/conf/<group>/*.yaml provides."""
    folder = files("bench.conf").joinpath(group)
    return frozenset(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml")) if folder.is_dir() else frozenset()


def _validate(node: ConfigNode, plugins: Plugins, staged: Staged) -> ConfigNode:
    """Type a stored node against its schema; a detector variant is typed by the config class of its detector."""
    from omegaconf import OmegaConf

    from bench import config

    raw = node.node
    if node.group != "detector":
        schema = getattr(config, CONFIG_GROUPS[node.group])
        OmegaConf.merge(OmegaConf.structured(schema), raw)  # raises on an unknown key or a wrong type
        return node
    base = raw.get("name") if isinstance(raw, dict) else getattr(raw, "name", None)
    entry = next((e for a, e in staged.entries if a == "detectors" and e.name == base), None)
    if entry is None and base in plugins.detectors:
        entry = plugins.detectors.entry(base)
    if entry is None:
        raise ValueError(f"store('detector', {node.name!r}, ...): its name {base!r} must be the registered detector it "
                         f"configures (set name=...); detectors: {', '.join(plugins.detectors.names())}")
    cfg_cls = entry.config_class()
    if isinstance(raw, dict):
        typed = OmegaConf.merge(OmegaConf.structured(cfg_cls(name=base)), raw)
    elif isinstance(raw, cfg_cls):
        typed = raw
    else:
        raise TypeError(f"store('detector', {node.name!r}, ...): a {type(raw).__name__} cannot configure {base!r}, "
                        f"whose config class is {cfg_cls.__name__}")
    return dataclasses.replace(node, node=typed, detector=base)


def _clashes(plugins: Plugins, staged: Staged) -> list[str]:
    out = []
    for attr, e in staged.entries:
        reg: Registry = getattr(plugins, attr)
        if e.name in reg:
            out.append(clash_message(e.kind, e.name, reg.entry(e.name).dist, staged.dist))
    variants = {n.name: n.dist for n in plugins.configs if n.group == "detector"}
    for attr, e in staged.entries:
        if attr == "detectors" and e.name in variants:
            out.append(clash_message("detector", e.name, variants[e.name], staged.dist))
    for n in staged.configs:
        first = next((c.dist for c in plugins.configs if (c.group, c.name) == (n.group, n.name)), None)
        if first is None and n.name in _builtin_options(n.group):
            first = BUILTIN_DIST
        if first is None and n.group == "detector" and n.name in plugins.detectors:
            first = plugins.detectors.entry(n.name).dist
        if first is not None:
            out.append(clash_message(f"{n.group} config", n.name, first, staged.dist))
    return out


def _call_hooks(pm: pluggy.PluginManager, plugin: object, staged: Staged) -> None:
    for hook, (attr, kind) in REGISTRY_HOOKS.items():
        for impl in getattr(pm.hook, hook).get_hookimpls():
            if impl.plugin is plugin:
                impl.function(register=Registrar(staged, attr, kind))
    for impl in getattr(pm.hook, CONFIG_HOOK).get_hookimpls():
        if impl.plugin is plugin:
            impl.function(store=ConfigRegistrar(staged))


def _load_dist(plugins: Plugins, info: PluginInfo, loaders: list[Callable[[], object]]) -> None:
    """Import, check, call and commit one distribution's plugin modules, all or nothing."""
    pm, staged, registered = plugins.manager, Staged(info.dist), []
    plugins.info[info.dist] = info
    try:
        for module, load in zip(info.modules, loaders):
            obj = load()
            _check_hook_names(pm, obj)
            pm.register(obj, name=f"{info.dist}:{module}")  # pluggy checks hook arguments against the specs
            registered.append(obj)
        for obj in registered:
            _call_hooks(pm, obj, staged)
        for _, e in staged.entries:
            if e.config is not None:
                e.config_class()  # a torch-free import by contract: a broken config fails its plugin here, once
        staged.configs = [_validate(n, plugins, staged) for n in staged.configs]
    except Exception as err:
        if info.dist == BUILTIN_DIST:
            raise
        for obj in registered:
            pm.unregister(obj)
        info.status, info.reason = "FAILED", _one_line(err)
        warnings.warn(f"plugin {info.dist} failed and contributes nothing: {info.reason} "
                      f"(`bench list plugins`; {DISABLE_ENV}={info.dist} to skip it)", PluginWarning, stacklevel=3)
        return
    info.registers = staged.describe()
    clashes = _clashes(plugins, staged)
    if clashes:  # committed by nobody: the user decides which distribution keeps the name
        for obj in registered:
            pm.unregister(obj)
        info.status, info.reason = "clash", "; ".join(clashes)
        return
    for attr, e in staged.entries:
        getattr(plugins, attr).add(e.name, e.target, description=e.description, dist=e.dist, config=e.config)
    plugins.configs += staged.configs


def _import_local(module: str) -> object:
    """A local plugin module: importable as is, or a `<module>.py` in the working directory."""
    if importlib.util.find_spec(module) is None and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # the point of a local plugin: no packaging needed
    return importlib.import_module(module)


def _external() -> list[tuple[PluginInfo, list[Callable[[], object]]]]:
    """Entry-point distributions (sorted by name, so clashes resolve the same way everywhere), then local modules."""
    dists: dict[str, tuple[PluginInfo, list]] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        dist = ep.dist.name if ep.dist is not None else ep.value
        info, loaders = dists.setdefault(dist, (PluginInfo(dist, ep.dist.version if ep.dist else "?", []), []))
        info.modules.append(ep.value)
        loaders.append(ep.load)
    out = [dists[d] for d in sorted(dists, key=_canon)]
    for module in filter(None, (m.strip() for m in os.environ.get(LOCAL_ENV, "").split(","))):
        out.append((PluginInfo(module, "local", [module]), [functools.partial(_import_local, module)]))
    return out


def load_plugins(external: bool | None = None) -> Plugins:
    """Build a fresh PluginManager and run every registration hook (built-ins first)."""
    disabled = os.environ.get(DISABLE_ENV, "").strip()
    all_off = disabled.lower() in ("1", "true", "yes", "all")
    skip = set() if all_off else {_canon(n) for n in disabled.split(",") if n.strip()}
    if external is None:
        external = not all_off
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    plugins = Plugins(manager=pm, disabled=disabled)
    from bench import __version__

    _load_dist(plugins, PluginInfo(BUILTIN_DIST, __version__, list(BUILTIN_MODULES)),
               [functools.partial(importlib.import_module, m) for m in BUILTIN_MODULES])
    for info, loaders in _external():
        names = {_canon(info.dist), *(_canon(m.split(":")[0]) for m in info.modules)}
        if not external or names & skip:
            info.status, info.reason = "disabled", f"{DISABLE_ENV}={disabled}"
            plugins.info[info.dist] = info
            continue
        _load_dist(plugins, info, loaders)
    return plugins


def plugin_rows(plugins: Plugins) -> list[list[str]]:
    """`bench list plugins`: distribution, version, what it registers, status. Only here are the external
    distributions' classes imported, so a plugin whose model module is broken shows FAILED instead of ok."""
    rows = []
    for info in plugins.info.values():
        status = info.status if not info.reason else f"{info.status}: {info.reason}"
        if info.status == "ok" and info.dist != BUILTIN_DIST:
            problems = _entry_problems(plugins, info.dist)
            status = f"FAILED: {'; '.join(problems)}" if problems else status
        rows.append([info.dist, info.version, ", ".join(info.registers), status])
    return rows


def _entry_problems(plugins: Plugins, dist: str) -> list[str]:
    out = []
    for attr, _ in REGISTRY_HOOKS.values():
        for e in getattr(plugins, attr).entries():
            if e.dist != dist:
                continue
            try:
                e.load()
                if attr == "tables":
                    from bench.leaderboards.tables import all_tables

                    all_tables()  # a clash with a built-in table
            except BenchError as err:
                out.append(str(err))
    return out


@functools.lru_cache(maxsize=1)
def _cached() -> Plugins:
    return load_plugins()


def get_plugins(strict: bool = True) -> Plugins:
    """The process-wide plugin set (cached). `strict`: raise if two distributions registered the same name."""
    plugins = _cached()
    if strict:
        plugins.check()
    return plugins


get_plugins.cache_clear = _cached.cache_clear  # type: ignore[attr-defined]  # tests reload after changing the env

"""Hydra composition for the CLI and the tests: config store from plugins, protocol-dependent scale, sweeps, and
one-line errors (naming the key, its expected type, or the valid keys nearby) instead of Hydra's tracebacks."""

from __future__ import annotations

import dataclasses
import itertools
import re
from collections.abc import Iterator

from hydra import compose, initialize_config_module
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from bench.checks import check_config, close_keys, field_names
from bench.config import register_configs
from bench.errors import BenchError
from bench.plugins import get_plugins

CONFIG_MODULE = "bench.conf"
CONFIG_ERRORS = (HydraException, OmegaConfBaseException)


def init_hydra() -> None:
    """Hydra initialised with the package's configs and every plugin's (once per process)."""
    if not GlobalHydra.instance().is_initialized():
        register_configs(get_plugins())
        initialize_config_module(CONFIG_MODULE, version_base=None)


def _compose(name: str, overrides: list[str]) -> DictConfig:
    init_hydra()
    try:
        return compose(name, overrides=list(overrides))
    except CONFIG_ERRORS as err:
        raise config_error(err, name, overrides) from err


def compose_config(name: str, overrides: list[str]) -> DictConfig:
    """Compose config `name` (run: "config"; prepare: "prepare"); every value rule is checked before returning."""
    cfg = _compose(name, overrides)
    check_config(cfg)
    return cfg


def compose_run(overrides: list[str]) -> DictConfig:
    """The run config for these overrides. Unless `scale=` is given, the protocol's own default scale is used
    (the demo protocol runs at scale=tiny), which needs a second composition once the protocol is known."""
    overrides = list(overrides)
    cfg = _compose("config", overrides)
    if not any(_key(o) == "scale" for o in overrides):
        if cfg.protocol.scale != "full":
            cfg = _compose("config", [f"scale={cfg.protocol.scale}", *overrides])
    scale = next((o.split("=", 1)[1] for o in overrides if o.startswith("scale=")), cfg.protocol.scale)
    cfg.meta.scale = scale
    cfg.meta.overrides = overrides
    check_config(cfg)
    _check_protocol_datasets(cfg)
    return cfg


def _check_protocol_datasets(cfg: DictConfig) -> None:
    """Every split of the protocol names a registered dataset (each has a node under `datasets`)."""
    specs = {"protocol.train": cfg.protocol.train, "protocol.val": cfg.protocol.val,
             **{f"protocol.test.{k}": v for k, v in cfg.protocol.test.items()}}
    known = sorted(cfg.datasets)
    for key, spec in specs.items():
        if spec is not None and spec.dataset not in known:
            raise BenchError(f"{key}.dataset: unknown dataset {spec.dataset!r}; registered: {', '.join(known)}",
                             key=f"{key}.dataset")


def group_options(group: str) -> list[str]:
    """Names available in a config group (schemas excluded)."""
    init_hydra()
    loader = GlobalHydra.instance().config_loader()
    return sorted(n for n in loader.get_group_options(group) if not n.endswith("_schema"))


def expand_sweep(overrides: list[str]) -> Iterator[list[str]]:
    """Hydra's basic-sweeper semantics: `a=1,2 b=x,y` -> the cartesian product of plain override lists, in the order
    Hydra's sweeper launches its jobs (one entry per key, in first-seen order; a repeated key's last value wins), so
    job number i of a launcher sweep is combination i here."""
    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except CONFIG_ERRORS as err:
        raise config_error(err, "config", overrides) from err
    choices: dict[str, list[str]] = {}
    for o in parsed:
        key = o.get_key_element()
        choices[key] = [f"{key}={v}" for v in o.sweep_string_iterator()] if o.is_sweep_override() else [o.input_line]
    for combo in itertools.product(*choices.values()):
        yield list(combo)


# ---- one-line errors -----------------------------------------------------------------------------------


def _key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def _first_line(err: BaseException) -> str:
    return next((line.strip() for line in str(err).splitlines() if line.strip()), type(err).__name__)


def config_error(err: BaseException, name: str, overrides: list[str]) -> BenchError:
    """A BenchError (one line, naming the key to fix) for a Hydra/OmegaConf composition error."""
    text = str(err)
    m = re.search(r"Could not find '([^']+)/([^']+)'", text)
    if m:
        group, choice = m.groups()
        options = [o for o in re.findall(r"^\t(\S+)$", text, flags=re.M) if not o.endswith("_schema")]
        return BenchError(f"unknown {group} {choice!r}; available: {', '.join(options) or 'none'}", key=group)
    m = re.search(r"Could not override '([^']+)'\.\s*No match in the defaults list", text)
    if m:
        return BenchError(f"{m.group(1)!r} is not something `bench {'run' if name == 'config' else name}` can choose "
                          f"({_groups_hint(m.group(1))})", key=m.group(1))
    cause = err.__cause__ if err.__cause__ is not None else err
    key = getattr(cause, "full_key", None) or getattr(err, "full_key", None)
    if not key:
        return BenchError(_first_line(err) + (f": {_first_line(cause)}" if cause is not err else ""))
    parent_path, _, leaf = key.rpartition(".")
    parent_cls = _parent_class(name, overrides, key, parent_path)
    if key == "dataset":
        return BenchError(f"`bench {'run' if name == 'config' else name}` has no dataset choice: {_groups_hint(key)}", key=key)
    if "not in" in _first_line(cause) or "Could not override" in text:  # a key the schema does not have
        hint = close_keys(leaf, field_names(parent_cls)) if parent_cls else ""
        return BenchError(f"{key}: unknown key{hint}", key=key)
    value = next((o.split("=", 1)[1] for o in overrides if _key(o) == key and "=" in o), None)
    expected = _field_type(parent_cls, leaf)
    got = f"got {value!r}" if value is not None else _first_line(cause)
    return BenchError(f"{key}: expected {expected}, {got}" if expected else f"{key}: {_first_line(cause)}", key=key)


def _groups_hint(key: str) -> str:
    if key == "dataset":
        return ("a protocol names its datasets: protocol=<name> or protocol.train.dataset=<name>; a dataset's options "
                "are datasets.<name>.<key>=...; `bench list datasets` shows the names")
    return "config groups: " + ", ".join(g for g in ("detector", "protocol", "trainer", "tracking", "scale"))


def _parent_class(name: str, overrides: list[str], key: str, parent_path: str) -> type | None:
    """The dataclass of the node holding `key`, from a composition without the override that broke it."""
    try:
        cfg = compose(name, overrides=[o for o in overrides if _key(o) != key])
    except CONFIG_ERRORS:
        return None
    node = OmegaConf.select(cfg, parent_path) if parent_path else cfg
    cls = OmegaConf.get_type(node) if isinstance(node, DictConfig) else None
    return cls if cls is not None and dataclasses.is_dataclass(cls) else None


def _field_type(cls: type | None, leaf: str) -> str | None:
    if cls is None:
        return None
    for f in dataclasses.fields(cls):
        if f.name == leaf:
            return f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
    return None


def friendly_error(err: BaseException) -> str:
    """One line for any configuration error (kept for callers that catch Hydra/OmegaConf errors themselves)."""
    if isinstance(err, BenchError):
        return str(err)
    return str(config_error(err, "config", []))

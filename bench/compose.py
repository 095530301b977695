"""Hydra composition for the CLI and the tests: config store from plugins, protocol-dependent scale, sweeps."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator

from hydra import compose, initialize_config_module
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig

from bench.config import register_configs
from bench.errors import BenchError
from bench.plugins import get_plugins

CONFIG_MODULE = "bench.conf"


def _init() -> None:
    if not GlobalHydra.instance().is_initialized():
        register_configs(get_plugins())
        initialize_config_module(CONFIG_MODULE, version_base=None)


def compose_config(name: str, overrides: list[str]) -> DictConfig:
    _init()
    return compose(name, overrides=list(overrides))


def compose_run(overrides: list[str]) -> DictConfig:
    """The run config for these overrides. Unless `scale=` is given, the protocol's own default scale is used
    (the demo protocol runs at scale=tiny), which needs a second composition once the protocol is known."""
    overrides = list(overrides)
    cfg = compose_config("config", overrides)
    if not any(o.split("=", 1)[0].lstrip("+~") == "scale" for o in overrides):
        if cfg.protocol.scale != "full":
            cfg = compose_config("config", [f"scale={cfg.protocol.scale}", *overrides])
    scale = next((o.split("=", 1)[1] for o in overrides if o.startswith("scale=")), cfg.protocol.scale)
    cfg.meta.scale = scale
    cfg.meta.overrides = overrides
    return cfg


def group_options(group: str) -> list[str]:
    """Names available in a config group (schemas excluded)."""
    _init()
    loader = GlobalHydra.instance().config_loader()
    return sorted(n for n in loader.get_group_options(group) if not n.endswith("_schema"))


def expand_sweep(overrides: list[str]) -> Iterator[list[str]]:
    """Hydra's basic-sweeper semantics: `a=1,2 b=x,y` -> the cartesian product of plain override lists."""
    parsed = OverridesParser.create().parse_overrides(overrides)
    choices = []
    for o in parsed:
        if o.is_sweep_override():
            key = o.get_key_element()
            choices.append([f"{key}={v}" for v in o.sweep_string_iterator()])
        else:
            choices.append([o.input_line])
    for combo in itertools.product(*choices):
        yield list(combo)


def friendly_error(err: BaseException) -> str:
    """One line for a configuration error from Hydra/OmegaConf/ForgeryBench, naming the key to set."""
    if isinstance(err, BenchError):
        return str(err)
    text = str(err)
    key = getattr(err, "full_key", None)
    m = re.search(r"Could not find '([^']+)/([^']+)'", text)
    if m:
        group, choice = m.groups()
        options = [o for o in re.findall(r"^\t(\S+)$", text, flags=re.M) if not o.endswith("_schema")]
        return f"unknown {group} {choice!r}; available: {', '.join(options) or 'none'} (config key: {group})"
    first = " ".join(line.strip() for line in text.splitlines() if line.strip() and not line.startswith(("full_key", "object_type", "    ")))
    if key:
        return f"{first} (config key: {key})"
    return first

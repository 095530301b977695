"""Value checks that run when a config is composed, before any data loads.

A config dataclass lists its rules in a ClassVar, `checks = {"lr": positive, "epochs": at_least(1), ...}`; after
composition `check_config` walks every typed node of the config, applies its class's rules and refuses keys that
are not fields of the class (Hydra's `+trainer.epoch=3` would otherwise add and ignore them). All problems are
reported at once, each naming its full key. Torch-free: config modules import these helpers.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from collections.abc import Callable
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from bench.errors import BenchError

Check = Callable[[Any], "str | None"]  # value -> what is wrong with it, or None


def at_least(low: float) -> Check:
    return lambda v: None if v >= low else f"must be >= {low}"


def positive(v: Any) -> str | None:
    return None if v > 0 else "must be > 0"


def between(low: float, high: float) -> Check:
    return lambda v: None if low <= v <= high else f"must be between {low} and {high}"


def one_of(*allowed: Any) -> Check:
    return lambda v: None if v in allowed else f"must be one of {', '.join(map(str, allowed))}"


def matches(pattern: str, what: str) -> Check:
    return lambda v: None if re.fullmatch(pattern, str(v)) else f"must be {what}"


def length(n: int) -> Check:
    return lambda v: None if len(v) == n else f"must have {n} values"


def optional(check: Check) -> Check:
    """`check`, or null."""
    return lambda v: None if v is None else check(v)


def each(check: Check) -> Check:
    """`check` on every value of a list or mapping."""
    def run(v: Any) -> str | None:
        values = v.values() if isinstance(v, (dict, DictConfig)) else v
        return next((f"every value {msg}" for msg in map(check, values) if msg), None)
    return run


def close_keys(key: str, valid: list[str]) -> str:
    """'; did you mean x?' plus the valid keys, for an error about an unknown `key`."""
    near = difflib.get_close_matches(key, valid, n=1)
    return (f"; did you mean {near[0]!r}?" if near else ";") + f" valid keys: {', '.join(valid)}"


def field_names(cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


def problems(node: Any, path: str = "") -> list[tuple[str, str]]:
    """(full key, what is wrong) for every typed node under `node`."""
    out: list[tuple[str, str]] = []
    if isinstance(node, DictConfig):
        cls = OmegaConf.get_type(node)
        typed = dataclasses.is_dataclass(cls)
        if typed:
            names = field_names(cls)
            out += [(f"{path}{k}", f"unknown key{close_keys(str(k), names)}") for k in node if k not in names]
        rules = getattr(cls, "checks", {}) if typed else {}
        for key in node:
            if OmegaConf.is_missing(node, key):
                continue
            value = node[key]
            if key in rules:
                plain = OmegaConf.to_container(value, resolve=True) if isinstance(value, (DictConfig, ListConfig)) else value
                msg = rules[key](plain)
                if msg:
                    out.append((f"{path}{key}", f"{plain!r} {msg}"))
            out += problems(value, f"{path}{key}.")
    elif isinstance(node, ListConfig):
        for i, value in enumerate(node):
            out += problems(value, f"{path}{i}.")
    return out


def check_config(cfg: DictConfig) -> None:
    """Raise one BenchError listing every rule the composed config breaks."""
    found = problems(cfg)
    if found:
        raise BenchError("; ".join(f"{key}: {msg}" for key, msg in found), key=found[0][0])

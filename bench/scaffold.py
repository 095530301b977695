"""`bench new detector NAME` / `bench new dataset NAME`: write a plugin distribution that installs and passes its
own test unchanged (pyproject with the `bench` entry point, a torch-free config module, the class with the
interface's methods, and a test that calls `bench.testing`). The files come from `bench/templates/`."""

from __future__ import annotations

import re
from importlib.resources import files
from pathlib import Path
from string import Template

from bench.errors import BenchError

KINDS = ("detector", "dataset")
DESCRIPTIONS = {"detector": "a small CNN (replace it with yours)", "dataset": "images in <split>/<real|domain>/ folders"}


def new_plugin(kind: str, name: str, dest: str | Path = ".", description: str | None = None) -> Path:
    """Write the skeleton of a plugin providing `kind` `name` into `dest/bench-<name>/`; returns that folder."""
    if kind not in KINDS:
        raise BenchError(f"bench new: unknown kind {kind!r}; kinds: {', '.join(KINDS)}")
    if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
        raise BenchError(f"bench new: name {name!r} must be lowercase letters, digits and _ (it becomes "
                         f"`{kind}={name}` on the command line and a Python package name)")
    values = {
        "kind": kind, "name": name, "dist": f"bench-{name.replace('_', '-')}", "package": f"bench_{name}",
        "cls": "".join(part.capitalize() for part in name.split("_")), "env": f"BENCH_{name.upper()}_ROOT",
        "description": (description or DESCRIPTIONS[kind]).replace('"', "'"),
    }
    target = Path(dest) / values["dist"]
    if target.exists():
        raise BenchError(f"bench new: {target} already exists; pick another name or --dir")
    templates = files("bench") / "templates"
    for source, relative in [*_walk(templates / "common", ""), *_walk(templates / kind, values["package"])]:
        path = target / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(Template(source.read_text()).substitute(values))
    return target


def _walk(folder, package: str) -> list[tuple[object, str]]:
    """(template, path relative to the distribution): files of `folder` go into `package`, `tests/` stays `tests/`."""
    out = []
    for item in sorted(folder.iterdir(), key=lambda p: p.name):
        if item.is_dir():
            out += [(src, f"{item.name}/{rel.rsplit('/', 1)[-1]}") for src, rel in _walk(item, "")]
        elif item.name.endswith(".tmpl"):
            out.append((item, f"{package}/{item.name[:-5]}" if package else item.name[:-5]))
    return out

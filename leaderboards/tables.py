"""The registry of leaderboard tables: name -> TableSpec, from every table family module."""

from __future__ import annotations

from bench.errors import BenchError
from bench.leaderboards import ablations, benchmarks, robustness
from bench.leaderboards.spec import TableSpec

TABLES: dict[str, TableSpec] = {spec.name: spec for spec in (*benchmarks.TABLES, *ablations.TABLES, *robustness.TABLES)}


def get_table(name: str) -> TableSpec:
    try:
        return TABLES[name]
    except KeyError:
        raise BenchError(f"unknown leaderboard table {name!r}; tables: {', '.join(TABLES)}", key="--table") from None

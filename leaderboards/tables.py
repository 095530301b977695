"""The registry of leaderboard tables: name -> TableSpec, from every table family module and from plugins
(`bench_register_tables`)."""

from __future__ import annotations

from bench.errors import BenchError
from bench.leaderboards import ablations, benchmarks, robustness
from bench.leaderboards.spec import TableSpec

TABLES: dict[str, TableSpec] = {spec.name: spec for spec in (*benchmarks.TABLES, *ablations.TABLES, *robustness.TABLES)}


def all_tables() -> dict[str, TableSpec]:
    """The built-in tables plus those plugins register; a plugin table named like a built-in one is an error."""
    from bench.plugins import BUILTIN_DIST, get_plugins
    from bench.registry import clash_message

    tables = dict(TABLES)
    for entry in get_plugins().tables.entries():
        if entry.name in tables:
            raise BenchError(clash_message("table", entry.name, BUILTIN_DIST, entry.dist), key="--table")
        tables[entry.name] = entry.load()
    return tables


def get_table(name: str) -> TableSpec:
    tables = all_tables()
    try:
        return tables[name]
    except KeyError:
        raise BenchError(f"unknown leaderboard table {name!r}; tables: {', '.join(tables)}", key="--table") from None

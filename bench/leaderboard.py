"""`bench leaderboard`: pivot MLflow runs into the tables of `bench.leaderboards`, beside the reported numbers.

Measured rows (`bench.table_runs`): a row is one method — protocol name and version, detector, config minus the
allow-list of docs/run-record.md — over its seeds (the latest run per seed); rows that differ from the detector's
default config are labelled by the differing keys. Runs that cannot be results (unfinished, diverged, dirty,
incomplete, evaluate runs, trained on a test split, an older protocol version) are left out and counted in a
footnote. Several seeds -> mean ± std; one seed -> that run's numbers (with its bootstrap CI where the table shows
one). Every measured row carries its provenance: seeds, run ids, commits, protocol version. Reported rows come from
`leaderboards/reported.csv` at their published precision; a measured row sits right after the reported rows of the
same detector and setting.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
from tabulate import tabulate

from bench.errors import BenchError
from bench.leaderboards.spec import AVG, TableSpec, reported_numbers
from bench.leaderboards.tables import all_tables, get_table
from bench.table_runs import Selection, left_out_note, observations, select

ROW_KEY = ["method", "setting", "metric", "source"]
PROVENANCE = ("n_runs", "seeds", "run_ids", "commits", "protocol_version")
CELL_COLUMNS = ("method", "detector", "variant", "setting", "metric", "source", "test_set", "value", "value_text",
                "ci_low", "ci_high", "std", *PROVENANCE)


@dataclass(frozen=True)
class Table:
    """A built table in long form (one row per cell, CELL_COLUMNS, in display order) with its columns and notes."""

    spec: TableSpec
    cells: pd.DataFrame
    columns: tuple[str, ...]  # test sets (or perturbation levels) and the Avg column, in display order
    average: tuple[str, ...]  # the test sets the Avg column averages
    footnotes: tuple[str, ...]
    n_measured: int  # measured rows
    selection: Selection | None = None  # the runs behind the measured rows, for --show-runs and --baseline


# ---- loading ---------------------------------------------------------------------------------------------------


def load_runs(tracking_uri: str, experiments: list[str] | tuple[str, ...]) -> pd.DataFrame:
    """All runs (any status) of the named experiments, as MLflow's pandas frame; empty when there are none."""
    if tracking_uri.startswith("sqlite:///") and not Path(tracking_uri.removeprefix("sqlite:///")).exists():
        return pd.DataFrame()  # don't let MLflow create an empty database just to find nothing in it
    from bench.tracking import search_runs  # tracking is the only module that imports mlflow

    return search_runs(tracking_uri, list(experiments))


# ---- measured rows ---------------------------------------------------------------------------------------------


def _test_sets(spec: TableSpec, runs: pd.DataFrame) -> tuple[str, ...]:
    """The spec's test sets; or, when the runs logged none of them (another protocol), the ones they logged."""
    suffix = f"/{spec.metrics[0]}"
    logged = [c.removeprefix("metrics.").removesuffix(suffix) for c in runs.columns
              if c.startswith("metrics.") and c.endswith(suffix) and runs[c].notna().any()]
    logged = [t for t in logged if t not in ("train", "val")]  # training and checkpoint selection, not results
    if spec.columns == "perturbations" or not spec.test_sets:
        return tuple(sorted(logged))
    return spec.test_sets if not logged or set(logged) & set(spec.test_sets) else tuple(sorted(logged))


def _provenance(used: pd.DataFrame) -> pd.DataFrame:
    """Per row: n runs (seeds), the seeds, short run ids, commits and protocol version(s)."""
    def join(values) -> str:
        return ",".join(dict.fromkeys(str(v) for v in values if str(v)))

    unit = "source_run" if used["kind"].eq("evaluate").all() else "run_id"
    rows = used.drop_duplicates(["row", unit])
    rows = rows.assign(_seed=pd.to_numeric(rows["seed"], errors="coerce")).sort_values(["row", "_seed"])
    return rows.groupby("row").agg(
        n_runs=(unit, "size"), seeds=("seed", join), run_ids=(unit, lambda ids: join(i[:8] for i in ids)),
        commits=("commit", join), protocol_version=("version", join))


def _source(scale: str) -> str:
    return "measured" + (f" ({scale})" if scale not in ("", "full") else "")


def _measured_cells(spec: TableSpec, selection: Selection, test_sets: tuple[str, ...],
                    average: tuple[str, ...]) -> pd.DataFrame:
    used = selection.used
    if used.empty:
        return pd.DataFrame(columns=list(CELL_COLUMNS))
    obs = observations(spec, used, test_sets, average, spec.average_label)
    grouped = obs.groupby(["row", "setting", "metric", "column"], sort=False)
    cells = grouped.agg(value=("value", lambda v: v.mean(skipna=False)),  # a seed lacking a value -> no mean
                        std=("value", lambda v: v.std(ddof=1, skipna=False) if len(v) > 1 else np.nan),
                        n=("value", "size"), ci_low=("ci_low", "first"), ci_high=("ci_high", "first")).reset_index()
    single = cells["n"] == 1
    cells["ci_low"] = cells["ci_low"].where(single)
    cells["ci_high"] = cells["ci_high"].where(single)
    rows = used.drop_duplicates("row").set_index("row")[["method", "detector", "variant", "scale"]]
    cells = cells.join(rows, on="row").join(_provenance(used), on="row")
    cells["source"] = cells["scale"].map(_source)
    cells["value_text"] = cells["value"].map(lambda v: "" if pd.isna(v) else repr(float(v)))
    cells = cells.rename(columns={"column": "test_set"})
    order = cells["variant"].ne("").astype(int)  # the default config first, then the labelled variants
    cells = cells.assign(_o=order).sort_values(["_o", "method"], kind="stable").drop(columns="_o")
    return cells[list(CELL_COLUMNS)].reset_index(drop=True)


# ---- reported rows ---------------------------------------------------------------------------------------------


def _reported_cells(spec: TableSpec, test_sets: tuple[str, ...],
                    average: tuple[str, ...]) -> tuple[pd.DataFrame, list[str]]:
    """Reported cells of the table (the `detector` column lines measured rows up), rows with a shown value."""
    rep = reported_numbers()
    rep = rep[(rep["table"] == spec.name) & rep["metric"].isin(spec.metrics)]
    rep = rep.assign(source="reported (" + rep["source"] + ")", variant="")
    shown_row = rep["test_set"].isin(test_sets).groupby([rep[k] for k in ROW_KEY], sort=False).transform("any")
    notes = []
    if len(rep) and not shown_row.any():
        notes.append(f"Reported numbers for this table are on {', '.join(dict.fromkeys(rep['test_set']))}, none "
                     "of which these runs were tested on; they are not shown.")
    rep = rep[shown_row]
    cells = rep[rep["test_set"].isin(test_sets)]
    if average:  # the source's printed average; else our mean, when every averaged column is reported
        printed = rep[rep["test_set"] == AVG].assign(test_set=spec.average_label)
        wide = cells.pivot_table(index=ROW_KEY + ["detector"], columns="test_set", values="value", sort=False)
        wide = wide.reindex(columns=list(average)).dropna()
        has_printed = set(map(tuple, printed[ROW_KEY].to_numpy()))
        missing = [key[:len(ROW_KEY)] not in has_printed for key in wide.index]
        computed = wide[missing].mean(axis=1).rename("value").reset_index().assign(test_set=spec.average_label,
                                                                                   variant="")
        decimals = cells["value_text"].str.split(".").str[-1].str.len().groupby(
            [cells[k] for k in ROW_KEY]).max()  # our mean at the precision the row was published with
        computed["value_text"] = [f"{v:.{decimals.get(tuple(k), 3)}f}"
                                  for v, k in zip(computed["value"], computed[ROW_KEY].to_numpy())]
        if len(computed):
            notes.append(f"{spec.average_label} of reported rows whose source prints none: our mean of the columns.")
        cells = pd.concat([cells, printed, computed], ignore_index=True)
    cells = cells.assign(ci_low=np.nan, ci_high=np.nan, std=np.nan, n_runs=0, seeds="", run_ids="", commits="",
                         protocol_version="")
    return cells.reindex(columns=list(CELL_COLUMNS)), notes


# ---- the table -------------------------------------------------------------------------------------------------


def _display_order(reported: pd.DataFrame, measured: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Reported rows in reported.csv order, those of one method and setting together (whatever their source);
    measured rows right after the reported rows of their detector and setting, the others at the end."""
    rep_row = reported.groupby(ROW_KEY, sort=False).ngroup()
    family = reported.groupby(["method", "setting"], sort=False).ngroup()
    anchor: dict[tuple[str, str], tuple[int, int]] = {}
    for d, s, f, r in zip(reported["detector"], reported["setting"], family, rep_row):
        if d:
            anchor[(d, s)] = max(anchor.get((d, s), (f, r)), (f, r))
    n_families = int(family.max()) + 1 if len(reported) else 0
    mea_row = measured.groupby(["method", "setting", "source"], sort=False).ngroup()
    first_row = mea_row.groupby([measured["detector"], measured["setting"]]).transform("min")
    mea_pos = [anchor.get((d, s), (n_families + r, 0))
               for d, s, r in zip(measured["detector"], measured["setting"], first_row)]
    cells = pd.concat([
        reported.assign(_family=family, _row=rep_row, _measured=0, _mrow=0),
        measured.assign(_family=[p[0] for p in mea_pos], _row=[p[1] for p in mea_pos], _measured=1, _mrow=mea_row),
    ], ignore_index=True)
    cells["_metric"] = cells["metric"].map({"auc": 0, "video_auc": 1}).fillna(2)
    cells["_col"] = cells["test_set"].map({c: i for i, c in enumerate(columns)})
    order = cells.sort_values(["_family", "_row", "_measured", "_mrow", "_metric", "_col"], kind="stable").index
    return cells.loc[order, list(CELL_COLUMNS)].reset_index(drop=True)


def _perturbation_order(selection: Selection) -> list[str]:
    """Levels in the order first evaluated, `none` first: `--perturb jpeg=90,70,50` keeps its order."""
    used = selection.used.sort_values("start_time", kind="stable")
    levels = list(dict.fromkeys(used["perturbation"]))
    return sorted(levels, key=lambda level: level != "none")


def build(spec: TableSpec, runs: pd.DataFrame, include: frozenset[str] = frozenset(),
          now: float | None = None) -> Table:
    """The table `spec` over `runs` (MLflow's search_runs frame, any status). `include`: opted-in problems."""
    selection = select(spec, runs, include, now)
    test_sets = _test_sets(spec, selection.used if len(selection.used) else runs)
    if spec.columns == "perturbations":
        average: tuple[str, ...] = ()
        columns = _perturbation_order(selection) if len(selection.used) else []
    else:  # another protocol's test sets (see _test_sets): average all of them
        average = tuple(t for t in spec.average if t in test_sets) if test_sets == spec.test_sets else test_sets
        columns = list(test_sets)
        if average:
            columns.insert(columns.index(average[-1]) + 1, spec.average_label)
    measured = _measured_cells(spec, selection, test_sets, average)
    reported, reported_notes = _reported_cells(spec, test_sets, average)
    cells = _display_order(reported, measured, columns)
    notes = []
    if len(measured):
        notes.append("Measured: one row per method (protocol version, detector and config minus the allow-list of "
                     "docs/run-record.md); [..] names the config keys that differ from the detector's defaults. "
                     "Several seeds: mean ± std over seeds (the latest run per seed); seeds = 1: a single run.")
        if spec.ci:
            notes.append("[low, high] (single runs): 95% bootstrap interval of the AUC, resampling whole videos.")
    note = left_out_note(selection)
    if note:
        notes.append(note)
    return Table(spec=spec, cells=cells, columns=tuple(columns), average=average,
                 footnotes=(*notes, *reported_notes, *spec.footnotes),
                 n_measured=len(measured[ROW_KEY].drop_duplicates()), selection=selection)


# ---- entry points ----------------------------------------------------------------------------------------------


def render(table_name: str, runs: pd.DataFrame, fmt: str = "github", *, searched: str = "the given runs",
           experiments: tuple[str, ...] | None = None, include: frozenset[str] = frozenset(),
           show_runs: bool = False, baseline: str | None = None, uri: str | None = None, resamples: int = 1000) -> str:
    """Table `table_name` over `runs` in `fmt`. No measured rows: a note (or, with nothing to show, a BenchError).

    `experiments`: the experiments searched when not the table's own (`--experiment`), for the hint.
    `baseline`: mark cells that differ significantly from this detector's row (`bench.compare`).
    """
    from bench.leaderboard_format import format_table

    spec = get_table(table_name)
    table = build(spec, runs, include)
    if table.n_measured == 0:
        protocols = experiments or spec.experiments  # one experiment per protocol, named after it
        command = spec.hint if spec.hint and not experiments else \
            f"bench run {'-m ' if len(protocols) > 1 else ''}protocol={','.join(protocols)} detector=<name>"
        message = f"No usable runs for table {table_name!r} in {searched}; produce some with `{command}`"
        if table.cells.empty:
            raise BenchError(message + "." + (f" {table.footnotes[-1]}" if table.footnotes else ""), key="tracking.uri")
        table = replace(table, footnotes=(message + ".", *table.footnotes))
    elif baseline:
        from bench.compare import mark_baseline

        table = mark_baseline(table, baseline, uri=uri, resamples=resamples)
    return format_table(table, fmt, show_runs=show_runs)


def leaderboard(table: str, fmt: str = "github", experiment: str | None = None, uri: str = "sqlite:///mlflow.db",
                *, include: frozenset[str] = frozenset(), show_runs: bool = False, baseline: str | None = None,
                resamples: int = 1000) -> str:
    """`bench leaderboard --table NAME [--format ...] [--experiment A,B] [--include-* ...] [--show-runs]
    [--baseline DETECTOR]`: the rendered table as text.

    `experiment` (comma-separated) replaces the table's own experiments, e.g. an ablation table over the demo's runs.
    """
    spec = get_table(table)
    override = tuple(e.strip() for e in experiment.split(",") if e.strip()) if experiment else None
    experiments = override or spec.experiments
    runs = load_runs(uri, experiments)
    return render(table, runs, fmt, searched=f"experiment(s) {', '.join(experiments)} at {uri}", experiments=override,
                  include=include, show_runs=show_runs, baseline=baseline, uri=uri, resamples=resamples)


def list_tables() -> str:
    """`bench list tables`: name, experiments and description of every table."""
    rows = [[s.name, ", ".join(s.experiments), s.description] for s in all_tables().values()]
    return tabulate(rows, headers=["table", "experiments", "description"])

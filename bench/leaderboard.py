"""`bench leaderboard`: pivot MLflow runs into the tables of `bench.leaderboards`, beside the reported numbers.

Measured rows: FINISHED runs only (the others are counted in a footnote). Per (detector, setting, scale) the latest
finished run of each `trainer.seed` is kept; one seed -> that run's numbers (with its bootstrap CI where the table
shows one), several seeds -> mean ± std over seeds. Runs of an older `protocol.version` than the newest logged for
their protocol are ignored. Reported rows come from `leaderboards/reported.csv`; a measured row sits right after the
reported rows of the same detector and setting.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
from tabulate import tabulate

from bench.errors import BenchError
from bench.leaderboards.spec import AVG, METRIC_LABELS, TableSpec, reported_numbers
from bench.leaderboards.tables import all_tables, get_table

FORMATS = ("github", "latex", "csv")
ROW_KEY = ["method", "setting", "metric", "source"]
CELL_COLUMNS = (*ROW_KEY, "test_set", "value", "ci_low", "ci_high", "std", "n_runs")
_LATEX = str.maketrans({"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                        "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "±": r"$\pm$"})


@dataclass(frozen=True)
class Table:
    """A built table in long form (one row per cell, CELL_COLUMNS, in display order) with its columns and notes."""

    spec: TableSpec
    cells: pd.DataFrame
    columns: tuple[str, ...]  # test sets and the Avg column, in display order
    footnotes: tuple[str, ...]
    n_measured: int  # measured rows


# ---- loading ---------------------------------------------------------------------------------------------------


def load_runs(tracking_uri: str, experiments: list[str] | tuple[str, ...]) -> pd.DataFrame:
    """All runs (any status) of the named experiments, as MLflow's pandas frame; empty when there are none."""
    if tracking_uri.startswith("sqlite:///") and not Path(tracking_uri.removeprefix("sqlite:///")).exists():
        return pd.DataFrame()  # don't let MLflow create an empty database just to find nothing in it
    from bench.tracking import search_runs  # tracking is the only module that imports mlflow

    return search_runs(tracking_uri, list(experiments))


# ---- measured rows ---------------------------------------------------------------------------------------------


def _column(runs: pd.DataFrame, name: str) -> pd.Series:
    """A run column as strings, "" where a run did not log it."""
    if name not in runs:
        return pd.Series("", index=runs.index, dtype=object)
    return runs[name].map(lambda v: "" if pd.isna(v) else str(v))


def _metric(runs: pd.DataFrame, test_set: str, metric: str) -> pd.Series:
    name = f"metrics.{test_set}/{metric}"
    return runs[name].astype(float) if name in runs else pd.Series(np.nan, index=runs.index)


def _select_runs(spec: TableSpec, runs: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Finished runs passing the spec's filters, the latest per (row, seed); plus footnotes on what was dropped."""
    notes: list[str] = []
    others = runs.loc[runs["status"] != "FINISHED", "status"].value_counts()
    if len(others):
        notes.append("Excluded: " + ", ".join(f"{n} {status} run(s)" for status, n in others.items()) + ".")
    runs = runs[runs["status"] == "FINISHED"]
    for match in spec.where:
        runs = runs[_column(runs, match.column).isin(match.values) != match.exclude]
    if "params.protocol.version" in runs:
        version = pd.to_numeric(runs["params.protocol.version"], errors="coerce")
        old = version < version.groupby(_column(runs, "params.protocol.name")).transform("max")
        if old.any():
            notes.append(f"Ignored {int(old.sum())} run(s) of an older protocol version.")
        runs = runs[~old]
    runs = runs.assign(
        method=_column(runs, "tags.bench.detector"),
        setting=_column(runs, spec.setting.column).map(spec.setting.label) if spec.setting else "",
        scale=_column(runs, "tags.bench.scale"),
        seed=_column(runs, "params.trainer.seed"),
    ).sort_values("start_time", ascending=False)
    latest = runs.drop_duplicates(["method", "setting", "scale", "seed"])
    if len(latest) < len(runs):
        notes.append(f"{len(runs) - len(latest)} older run(s) superseded by a later one with the same row and seed.")
    return latest, notes


def _test_sets(spec: TableSpec, runs: pd.DataFrame) -> tuple[str, ...]:
    """The spec's test sets; or, when the runs logged none of them (another protocol), the ones they logged."""
    suffix = f"/{spec.metrics[0]}"
    logged = [c.removeprefix("metrics.").removesuffix(suffix) for c in runs.columns
              if c.startswith("metrics.") and c.endswith(suffix) and runs[c].notna().any()]
    logged = [t for t in logged if t not in ("train", "val")]  # training and checkpoint selection, not results
    return spec.test_sets if not logged or set(logged) & set(spec.test_sets) else tuple(sorted(logged))


def _measured_source(scale: str, n_seeds: int) -> str:
    extra = [s for s in ("" if scale in ("", "full") else scale, f"{n_seeds} seeds" if n_seeds > 1 else "") if s]
    return "measured" + (f" ({', '.join(extra)})" if extra else "")


def _measured_cells(spec: TableSpec, runs: pd.DataFrame, test_sets: tuple[str, ...],
                    average: tuple[str, ...]) -> pd.DataFrame:
    if runs.empty:
        return pd.DataFrame(columns=list(CELL_COLUMNS))
    records = []
    for (method, setting, scale), group in runs.groupby(["method", "setting", "scale"], sort=True):
        n = len(group)  # one run per seed after _select_runs
        source = _measured_source(scale, n)
        for metric in spec.metrics:
            per_run = {t: _metric(group, t, metric) for t in test_sets}  # test set -> (n,)
            if average:
                per_run[spec.average_label] = pd.concat([per_run[t] for t in average], axis=1).mean(
                    axis=1, skipna=False)
            for test_set, values in per_run.items():
                has_ci = n == 1 and test_set in test_sets
                records.append({
                    "method": method, "setting": setting, "metric": metric, "source": source, "test_set": test_set,
                    "value": values.mean(skipna=False), "n_runs": n,  # a seed lacking a value -> no mean
                    "std": values.std(ddof=1, skipna=False) if n > 1 else np.nan,
                    "ci_low": _metric(group, test_set, f"{metric}_ci_low").iloc[0] if has_ci else np.nan,
                    "ci_high": _metric(group, test_set, f"{metric}_ci_high").iloc[0] if has_ci else np.nan,
                })
    return pd.DataFrame.from_records(records, columns=list(CELL_COLUMNS))


# ---- reported rows ---------------------------------------------------------------------------------------------


def _reported_cells(spec: TableSpec, test_sets: tuple[str, ...],
                    average: tuple[str, ...]) -> tuple[pd.DataFrame, list[str]]:
    """Reported cells of the table (plus a `detector` column to line measured rows up), rows with a shown value."""
    rep = reported_numbers()
    rep = rep[(rep["table"] == spec.name) & rep["metric"].isin(spec.metrics)]
    rep = rep.assign(source="reported (" + rep["source"] + ")")
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
        computed = wide[missing].mean(axis=1).rename("value").reset_index().assign(test_set=spec.average_label)
        if len(computed):
            notes.append(f"{spec.average_label} of reported rows whose source prints none: our mean of the columns.")
        cells = pd.concat([cells, printed, computed], ignore_index=True)
    return cells.assign(ci_low=np.nan, ci_high=np.nan, std=np.nan, n_runs=0), notes


# ---- the table -------------------------------------------------------------------------------------------------


def _display_order(reported: pd.DataFrame, measured: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Reported rows in reported.csv order, those of one method and setting together (whatever their source);
    a measured row right after the reported rows of its detector and setting, the others at the end."""
    rep_row = reported.groupby(ROW_KEY, sort=False).ngroup()
    family = reported.groupby(["method", "setting"], sort=False).ngroup()
    anchor: dict[tuple[str, str], tuple[int, int]] = {}
    for d, s, f, r in zip(reported["detector"], reported["setting"], family, rep_row):
        if d:
            anchor[(d, s)] = max(anchor.get((d, s), (f, r)), (f, r))
    n_families = int(family.max()) + 1 if len(reported) else 0
    mea_row = measured.groupby(["method", "setting", "source"], sort=False).ngroup()
    mea_pos = [anchor.get((m, s), (n_families + r, 0))
               for m, s, r in zip(measured["method"], measured["setting"], mea_row)]
    cells = pd.concat([
        reported.assign(_family=family, _row=rep_row, _measured=0, _mrow=0),
        measured.assign(_family=[p[0] for p in mea_pos], _row=[p[1] for p in mea_pos], _measured=1, _mrow=mea_row),
    ], ignore_index=True)
    cells["_metric"] = cells["metric"].map({"auc": 0, "video_auc": 1}).fillna(2)
    cells["_col"] = cells["test_set"].map({c: i for i, c in enumerate(columns)})
    order = cells.sort_values(["_family", "_row", "_measured", "_mrow", "_metric", "_col"], kind="stable").index
    return cells.loc[order, list(CELL_COLUMNS)].reset_index(drop=True)


def build(spec: TableSpec, runs: pd.DataFrame) -> Table:
    """The table `spec` over `runs` (MLflow's search_runs frame, any status)."""
    selected, notes = _select_runs(spec, runs) if len(runs) else (runs, [])
    test_sets = _test_sets(spec, selected)
    # another protocol's test sets (see _test_sets): average all of them
    average = tuple(t for t in spec.average if t in test_sets) if test_sets == spec.test_sets else test_sets
    measured = _measured_cells(spec, selected, test_sets, average)
    reported, reported_notes = _reported_cells(spec, test_sets, average)
    columns = list(test_sets)
    if average:
        columns.insert(columns.index(average[-1]) + 1, spec.average_label)
    cells = _display_order(reported, measured, columns)
    if len(measured):
        notes.insert(0, "Measured: the latest finished run per detector, setting, scale and trainer.seed; "
                        "over several seeds, mean ± std.")
        if spec.ci:
            notes.insert(1, "[low, high]: bootstrap 95% confidence interval of the AUC.")
    return Table(
        spec=spec,
        cells=cells,
        columns=tuple(columns),
        footnotes=(*notes, *reported_notes, *spec.footnotes),
        n_measured=len(measured[ROW_KEY].drop_duplicates()),
    )


def _cell(row: pd.Series, digits: int, ci: bool) -> str:
    if pd.isna(row["value"]):
        return "-"
    text = f"{row['value']:.{digits}f}"
    if pd.notna(row["std"]):
        return f"{text} ± {row['std']:.{digits}f}"
    if ci and pd.notna(row["ci_low"]) and pd.notna(row["ci_high"]):
        return f"{text} [{row['ci_low']:.{digits}f}, {row['ci_high']:.{digits}f}]"
    return text


def format_table(table: Table, fmt: str = "github", digits: int = 3) -> str:
    """github / latex: the pivoted table with a title and footnotes; csv: the long cells, footnotes as # lines."""
    if fmt not in FORMATS:
        raise BenchError(f"unknown format {fmt!r}; formats: {', '.join(FORMATS)}", key="--format")
    spec, cells = table.spec, table.cells
    notes = list(table.footnotes)
    if fmt == "csv":
        out = cells.rename(columns={"setting": spec.setting.header}) if spec.setting else cells.drop(columns="setting")
        text = out.to_csv(index=False, float_format=f"%.{digits}f", lineterminator="\n")
        return text + "".join(f"# {n}\n" for n in notes)
    shown = cells.assign(text=cells.apply(_cell, axis=1, digits=digits, ci=spec.ci))
    keys = ["method", *(["setting"] if spec.setting else []), *(["metric"] if len(spec.metrics) > 1 else []), "source"]
    rows = []
    for key, row in shown.groupby(keys, sort=False):  # cells are already in display order
        texts = dict(zip(row["test_set"], row["text"]))
        labels = [METRIC_LABELS.get(v, v) if k == "metric" else v for k, v in zip(keys, key)]
        rows.append(labels + [texts.get(c, "-") for c in table.columns])
    headers = [spec.setting.header if k == "setting" else k for k in keys] + list(table.columns)
    title = f"{spec.name}: {spec.description}"
    if fmt == "latex":  # escape ourselves, so that ± can become $\pm$
        rows = [[c.translate(_LATEX) for c in row] for row in rows]
        body = tabulate(rows, headers=[h.translate(_LATEX) for h in headers], tablefmt="latex_raw",
                        disable_numparse=True)
        return "\n".join([f"% {title}", body, *(n.translate(_LATEX) + r"\par" for n in notes)]) + "\n"
    body = tabulate(rows, headers=headers, tablefmt=fmt, disable_numparse=True)
    return "\n".join([f"**{title}**", "", body, "", *(f"- {n}" for n in notes)]) + "\n"


# ---- entry points ----------------------------------------------------------------------------------------------


def render(table_name: str, runs: pd.DataFrame, fmt: str = "github", *, searched: str = "the given runs",
           experiments: tuple[str, ...] | None = None) -> str:
    """Table `table_name` over `runs` in `fmt`. No measured rows: a note (or, with nothing to show, a BenchError).

    `experiments`: the experiments searched when not the table's own (`--experiment`), for the hint.
    """
    spec = get_table(table_name)
    table = build(spec, runs)
    if table.n_measured == 0:
        protocols = experiments or spec.experiments  # one experiment per protocol, named after it
        command = spec.hint if spec.hint and not experiments else \
            f"bench run {'-m ' if len(protocols) > 1 else ''}protocol={','.join(protocols)} detector=<name>"
        message = f"No finished runs for table {table_name!r} in {searched}; produce some with `{command}`"
        if table.cells.empty:
            raise BenchError(message + ".", key="tracking.uri")
        table = replace(table, footnotes=(message + ".", *table.footnotes))
    return format_table(table, fmt)


def leaderboard(table: str, fmt: str = "github", experiment: str | None = None,
                uri: str = "sqlite:///mlflow.db") -> str:
    """`bench leaderboard --table NAME [--format ...] [--experiment A,B]`: the rendered table as text.

    `experiment` (comma-separated) replaces the table's own experiments, e.g. an ablation table over the demo's runs.
    """
    spec = get_table(table)
    override = tuple(e.strip() for e in experiment.split(",") if e.strip()) if experiment else None
    experiments = override or spec.experiments
    runs = load_runs(uri, experiments)
    return render(table, runs, fmt, searched=f"experiment(s) {', '.join(experiments)} at {uri}", experiments=override)


def list_tables() -> str:
    """`bench list tables`: name, experiments and description of every table."""
    rows = [[s.name, ", ".join(s.experiments), s.description] for s in all_tables().values()]
    return tabulate(rows, headers=["table", "experiments", "description"])

"""Which runs fill a leaderboard table, which are left out and why, and how the rest form rows.

A row is a set of runs that are the same method (`bench.run_identity`): same protocol name and version, detector
and config minus the allow-list, and the same opted-in problems. Its runs are its seeds (the latest run per seed).
A row that differs from the detector's default config is labelled by the differing keys.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from bench.leaderboards.spec import TableSpec
from bench.run_identity import describe, screen, variant_labels

SUPERSEDED = "superseded by a later run with the same config and seed"
OUTSIDE = "outside this table's filters (another ablation or setting)"
INCLUDE_FLAGS = {"dirty": "--include-dirty", "incomplete": "--include-incomplete", "unhealthy": "--include-unhealthy"}
LEFT_OUT_COLUMNS = ["run_id", "short_id", "detector", "reason"]


@dataclass(frozen=True)
class Selection:
    """Runs used by a table (one row each, grouped by `row`) and the runs left out with their reason."""

    used: pd.DataFrame  # described runs + row, method, variant, marks, setting (+ eval_run for perturbation tables)
    left_out: pd.DataFrame  # LEFT_OUT_COLUMNS
    n_filtered: int  # runs outside the table's filters (other tables' runs): counted, not listed


def _column(runs: pd.DataFrame, name: str) -> pd.Series:
    """A run column as strings, "" where a run did not log it."""
    if name not in runs:
        return pd.Series("", index=runs.index, dtype=object)
    return runs[name].map(lambda v: "" if pd.isna(v) else str(v))


def _where(spec: TableSpec, runs: pd.DataFrame) -> pd.Series:
    keep = pd.Series(True, index=runs.index)
    for match in spec.where:
        keep &= _column(runs, match.column).isin(match.values) != match.exclude
    return keep


def _older_version(runs: pd.DataFrame) -> pd.Series:
    version = pd.to_numeric(runs["version"], errors="coerce")
    return version < version.groupby(runs["protocol"]).transform("max")


def _rows(spec: TableSpec, runs: pd.DataFrame) -> pd.DataFrame:
    """Add row (group id), variant (label of config differences), method (display name) and setting."""
    setting = _column(runs, spec.setting.column).map(spec.setting.label) if spec.setting else ""
    runs = runs.assign(setting=setting, _config=runs["config"].map(lambda c: tuple(sorted(c.items()))))
    keys = ["detector", "setting", "scale", "protocol", "version", "_config", "marks"]
    runs["row"] = runs.groupby(keys, sort=False).ngroup()
    groups = runs.drop_duplicates("row").set_index("row")
    groups = groups.assign(slot=list(zip(groups["detector"], groups["setting"], groups["scale"])))
    skip = {spec.setting.column.removeprefix("params.")} if spec.setting else set()
    variant = dict(zip(groups.index, variant_labels(groups, skip)))
    runs["variant"] = runs["row"].map(variant)
    label = [", ".join(x for x in (v, m) if x) for v, m in zip(runs["variant"], runs["marks"])]
    runs["method"] = [f"{d} [{lab}]" if lab else d for d, lab in zip(runs["detector"], label)]
    return runs.drop(columns="_config")


def _latest_per(runs: pd.DataFrame, keys: list[str]) -> tuple[pd.DataFrame, pd.Index]:
    ordered = runs.sort_values("start_time", ascending=False, kind="stable")
    latest = ordered.drop_duplicates(keys)
    return latest, ordered.index.difference(latest.index)


def select(spec: TableSpec, runs: pd.DataFrame, include: frozenset[str] = frozenset(),
           now: float | None = None) -> Selection:
    """The runs of `spec` among `runs` (MLflow's search_runs frame, any status and kind)."""
    if runs.empty:
        return Selection(pd.DataFrame(), pd.DataFrame(columns=LEFT_OUT_COLUMNS), 0)
    runs = describe(runs, now)
    reason, marks = screen(runs, include)
    runs = runs.assign(reason=reason, marks=marks)
    kind = "evaluate" if spec.columns == "perturbations" else "train"
    if kind == "train":
        runs.loc[(runs["kind"] != "train") & (runs["reason"] == ""), "reason"] = "evaluate run(s) (see --table robustness)"
        trained = runs
    else:
        trained = _attach_sources(runs)
    filtered = (trained["reason"] == "") & ~_where(spec, trained)
    ok = (trained["reason"] == "") & ~filtered
    trained.loc[ok & _older_version(trained.assign(version=trained["version"].where(ok))), "reason"] = \
        "older protocol version"
    used = trained[(trained["reason"] == "") & ~filtered]
    if len(used):
        used = _rows(spec, used)
        if kind == "train":
            used, superseded = _latest_per(used, ["row", "seed"])
        else:  # the latest evaluation per source run and level, then the latest source run per row and seed
            used, superseded = _latest_per(used, ["source_run", "perturbation"])
            sources, _ = _latest_per(used.assign(start_time=used["source_start"]), ["row", "seed"])
            superseded = superseded.append(used.index[~used["source_run"].isin(sources["source_run"])])
            used = used[used["source_run"].isin(sources["source_run"])]
        trained.loc[superseded, "reason"] = SUPERSEDED
    left = trained[trained["reason"] != ""]
    return Selection(used=used, left_out=left[LEFT_OUT_COLUMNS].reset_index(drop=True), n_filtered=int(filtered.sum()))


def _attach_sources(runs: pd.DataFrame) -> pd.DataFrame:
    """Evaluate runs, each carrying its source (training) run's identity, seed and problems: a robustness row is
    the method that was trained, evaluated under each perturbation."""
    by_id = runs.set_index("run_id")
    evals = runs[runs["kind"] == "evaluate"].copy()
    identity = ["detector", "protocol", "version", "scale", "seed", "commit", "config"] + \
        [c for c in runs if c.startswith("params.") or c == "tags.bench.detector"]
    evals["source_start"] = evals["start_time"]
    for i, run in evals.iterrows():
        src = run["source_run"]
        if src not in by_id.index:
            evals.at[i, "reason"] = evals.at[i, "reason"] or "its source run is not in these experiments"
            continue
        source = by_id.loc[src]
        if source["reason"]:
            evals.at[i, "reason"] = evals.at[i, "reason"] or f"its source run is left out: {source['reason']}"
        for col in identity:
            if col in source.index:
                evals.at[i, col] = source[col]
        evals.at[i, "source_start"] = source["start_time"]
        evals.at[i, "marks"] = ", ".join(dict.fromkeys(m for m in (source["marks"], run["marks"]) if m))
    return evals


def observations(spec: TableSpec, used: pd.DataFrame, test_sets: tuple[str, ...], average: tuple[str, ...],
                 average_label: str) -> pd.DataFrame:
    """Long values: one per (row, seed run, setting, metric, column) with its logged CI, from the used runs.

    Columns: row, run (the seed's run id), setting, metric, column, value, ci_low, ci_high.
    """
    records = []
    for run in used.to_dict("records"):
        unit = run["source_run"] if spec.columns == "perturbations" else run["run_id"]
        for metric in spec.metrics:
            if spec.columns == "perturbations":  # setting = test set, column = perturbation level
                cells = {(t, run["perturbation"]): t for t in test_sets}
            else:
                cells = {(run["setting"], t): t for t in test_sets}
            values = {}
            for (setting, column), t in cells.items():
                values[(setting, column)] = run.get(f"metrics.{t}/{metric}", np.nan)
                records.append({"row": run["row"], "run": unit, "setting": setting, "metric": metric, "column": column,
                                "value": values[(setting, column)],
                                "ci_low": run.get(f"metrics.{t}/{metric}_ci_low", np.nan),
                                "ci_high": run.get(f"metrics.{t}/{metric}_ci_high", np.nan)})
            if average and spec.columns != "perturbations":
                mean = float(np.mean([values[(run["setting"], t)] for t in average]))  # NaN if one is missing
                records.append({"row": run["row"], "run": unit, "setting": run["setting"], "metric": metric,
                                "column": average_label, "value": mean, "ci_low": np.nan, "ci_high": np.nan})
    frame = pd.DataFrame.from_records(records, columns=["row", "run", "setting", "metric", "column", "value",
                                                        "ci_low", "ci_high"])
    return frame.astype({"value": float, "ci_low": float, "ci_high": float})


def left_out_note(selection: Selection) -> str:
    """One footnote: how many runs were left out and why, and the flags that opt them in."""
    if selection.left_out.empty and not selection.n_filtered:
        return ""
    counts = selection.left_out["reason"].value_counts()
    counts = counts.iloc[sorted(range(len(counts)), key=lambda i: _rank(counts.index[i]))]
    parts = [f"{n} {reason}" for reason, n in counts.items()]
    if selection.n_filtered:
        parts.append(f"{selection.n_filtered} {OUTSIDE}")
    flags = sorted({flag for name, flag in INCLUDE_FLAGS.items()
                    for reason in counts.index if _opt_in(name, reason)})
    tail = f" ({', '.join(flags)} to show them, marked)" if flags else ""
    return f"Left out: {'; '.join(parts)}{tail}. `--show-runs` lists every run."


def _opt_in(name: str, reason: str) -> bool:
    return {"dirty": reason.startswith("dirty"), "incomplete": reason.startswith("incomplete"),
            "unhealthy": reason.startswith("health")}[name]


REASON_ORDER = ("FAILED", "KILLED", "RUNNING", "stale", "evaluate", "trained or validated", "its source", "health",
                "dirty", "incomplete", "older", "superseded")


def _rank(reason: str) -> int:
    """Footnote order: unfinished, wrong kind, leak, then the opt-in problems, then bookkeeping."""
    return next((i for i, prefix in enumerate(REASON_ORDER) if reason.startswith(prefix)), len(REASON_ORDER))

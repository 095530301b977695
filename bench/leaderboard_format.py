"""Rendering a built leaderboard `Table`: github / latex (pivoted, with provenance columns) or csv (long cells).

Measured values are printed with `digits` decimals (csv: full precision); reported values always as published.
"""

from __future__ import annotations

import pandas as pd
from tabulate import tabulate

from bench.errors import BenchError
from bench.leaderboards.spec import METRIC_LABELS

FORMATS = ("github", "latex", "csv")
_LATEX = str.maketrans({"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                        "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "±": r"$\pm$",
                        "↑": r"$\uparrow$", "↓": r"$\downarrow$"})
PROVENANCE_HEADERS = ["seeds", "runs", "commit", "protocol"]


def _cell(row: pd.Series, digits: int, ci: bool) -> str:
    if pd.isna(row["value"]):
        return "-"
    if row["source"].startswith("reported"):
        return row["value_text"]  # as published: 0.7975 keeps its four digits
    text = f"{row['value']:.{digits}f}"
    if pd.notna(row["std"]):
        text = f"{text} ± {row['std']:.{digits}f}"
    elif ci and pd.notna(row["ci_low"]) and pd.notna(row["ci_high"]):
        text = f"{text} [{row['ci_low']:.{digits}f}, {row['ci_high']:.{digits}f}]"
    return text + (row["mark"] if "mark" in row and isinstance(row["mark"], str) else "")


def _provenance(row: pd.Series) -> list[str]:
    if not row["n_runs"]:
        return ["", "", "", ""]
    return [f"{int(row['n_runs'])} ({row['seeds']})", row["run_ids"], row["commits"], f"v{row['protocol_version']}"]


def _csv(table, show_runs: bool) -> str:
    spec, cells = table.spec, table.cells
    if spec.columns == "perturbations":
        out = cells.rename(columns={"test_set": "perturbation", "setting": "test_set"})
    elif spec.setting:
        out = cells.rename(columns={"setting": spec.setting.header})
    else:
        out = cells.drop(columns="setting")
    out = out.assign(value=out["value_text"]).drop(columns="value_text")  # reported values as published
    text = out.to_csv(index=False, lineterminator="\n")
    lines = list(table.footnotes)
    if show_runs:
        lines += [f"run {line}" for line in _runs_listing(table, "tsv").splitlines()]
    return text + "".join(f"# {n}\n" for n in lines)


def format_table(table, fmt: str = "github", digits: int = 3, show_runs: bool = False) -> str:
    """github / latex: the pivoted table with a title and footnotes; csv: the long cells, footnotes as # lines.
    `show_runs`: append every run used (with its row's differing keys) and every run left out (with the reason)."""
    if fmt not in FORMATS:
        raise BenchError(f"unknown format {fmt!r}; formats: {', '.join(FORMATS)}", key="--format")
    if fmt == "csv":
        return _csv(table, show_runs)
    spec, cells = table.spec, table.cells
    shown = cells.assign(text=cells.apply(_cell, axis=1, digits=digits, ci=spec.ci))
    has_setting = bool(spec.setting) or spec.columns == "perturbations"
    keys = ["method", *(["setting"] if has_setting else []), *(["metric"] if len(spec.metrics) > 1 else []), "source"]
    with_provenance = table.n_measured > 0
    rows = []
    for key, row in shown.groupby(keys, sort=False):  # cells are already in display order
        texts = dict(zip(row["test_set"], row["text"]))
        labels = [METRIC_LABELS.get(v, v) if k == "metric" else v for k, v in zip(keys, key)]
        rows.append(labels + [texts.get(c, "-") for c in table.columns]
                    + (_provenance(row.iloc[0]) if with_provenance else []))
    setting_header = spec.setting.header if spec.setting else "test set"
    headers = [setting_header if k == "setting" else k for k in keys] + list(table.columns) + \
        (PROVENANCE_HEADERS if with_provenance else [])
    title = f"{spec.name}: {spec.description}"
    notes = list(table.footnotes)
    runs = _runs_listing(table, fmt) if show_runs else ""
    if fmt == "latex":  # escape ourselves, so that ± can become $\pm$
        rows = [[c.translate(_LATEX) for c in row] for row in rows]
        body = tabulate(rows, headers=[h.translate(_LATEX) for h in headers], tablefmt="latex_raw",
                        disable_numparse=True)
        return "\n".join([f"% {title}", body, *(n.translate(_LATEX) + r"\par" for n in notes),
                          *(f"% {line}" for line in runs.splitlines())]) + "\n"
    body = tabulate(rows, headers=headers, tablefmt=fmt, disable_numparse=True)
    return "\n".join([f"**{title}**", "", body, "", *(f"- {n}" for n in notes), *(["", runs] if runs else [])]) + "\n"


def _runs_listing(table, fmt: str) -> str:
    """Every run used (its row, seed, commit, protocol version, differing keys) and every run left out."""
    sel = table.selection
    if sel is None:
        return ""
    used_rows = []
    if len(sel.used):
        for run in sel.used.sort_values(["method", "start_time"]).to_dict("records"):
            evaluated = run["kind"] == "evaluate"
            used_rows.append([run["short_id"], run["method"], run["setting"] or "", run["seed"], run["commit"],
                              f"v{run['version']}", str(pd.Timestamp(run["start_time"]))[:19],
                              (f"{run['perturbation']} of {run['source_run'][:8]}" if evaluated else ""),
                              run["variant"] or "(defaults)"])
    left_rows = [[r.short_id, r.detector, r.reason] for r in sel.left_out.itertuples()]
    used_headers = ["run", "row", "setting", "seed", "commit", "protocol", "started", "evaluates", "differs in"]
    empty = [i for i in (2, 7) if all(not r[i] for r in used_rows)]  # no setting / no evaluate runs: drop
    used_headers = [h for i, h in enumerate(used_headers) if i not in empty]
    used_rows = [[c for i, c in enumerate(r) if i not in empty] for r in used_rows]
    tablefmt = "tsv" if fmt == "tsv" else ("github" if fmt == "github" else "plain")
    parts = [f"Runs used ({len(used_rows)}):", tabulate(used_rows, headers=used_headers, tablefmt=tablefmt,
                                                         disable_numparse=True)]
    if left_rows:
        parts += ["", f"Runs left out ({len(left_rows)}):",
                  tabulate(left_rows, headers=["run", "detector", "reason"], tablefmt=tablefmt, disable_numparse=True)]
    return "\n".join(parts)

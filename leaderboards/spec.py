"""What a leaderboard table is: typed table specs, and the reported numbers shipped beside them (reported.csv).

A table pivots MLflow runs: one row per method (detector + config, see docs/run-record.md) and optional setting
such as the train subset; one column per test set (or, for `columns="perturbations"`, per perturbation level of
`bench evaluate` runs, with the test set as the setting); cells = one logged metric `<test set>/<metric>`. The
column names in `RowKey.column` / `Match.column` are those of MLflow's `search_runs` frame: `tags.bench.detector`,
`params.detector.adapter_dim`, ...
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib.resources import files

import pandas as pd

REPORTED_COLUMNS = ("source", "table", "method", "detector", "setting", "test_set", "metric", "value", "note")
AVG = "Avg"  # reported.csv's test_set for the averages printed by the source


@dataclass(frozen=True)
class RowKey:
    """The run column that tells rows apart besides the detector, and how its raw values are displayed.

    `labels` maps raw logged values (e.g. the param string "['Deepfakes', 'FaceSwap']") to the label that
    reported.csv uses in its `setting` column ("DF+FS"), so measured rows line up with reported ones.
    Unmapped values are shown as logged.
    """

    column: str
    header: str
    labels: Mapping[str, str] = field(default_factory=dict)

    def label(self, raw: object) -> str:
        text = "" if pd.isna(raw) else str(raw)
        return self.labels.get(text, text)


@dataclass(frozen=True)
class Match:
    """Keep only runs whose `column` is (or, with exclude=True, is not) one of `values` (compared as strings)."""

    column: str
    values: tuple[str, ...]
    exclude: bool = False


@dataclass(frozen=True)
class TableSpec:
    """One leaderboard table: which runs fill it, how they become rows and columns, and its footnotes."""

    name: str
    description: str
    experiments: tuple[str, ...]  # MLflow experiments (= protocol names) whose runs fill the table
    test_sets: tuple[str, ...]  # columns, in order
    setting: RowKey | None = None  # second row key after the detector, e.g. the train subset
    metrics: tuple[str, ...] = ("auc",)  # metric suffixes; several -> one row per metric
    average: tuple[str, ...] = ()  # test sets averaged into an Avg column placed after the last of them
    average_label: str = AVG
    ci: bool = False  # show the bootstrap 95% CI of single-run AUC cells
    where: tuple[Match, ...] = ()  # run filters (e.g. an ablation's other switches at their defaults)
    footnotes: tuple[str, ...] = ()
    hint: str = ""  # the command that produces the table's runs; default: `bench run protocol=<experiments>`
    columns: str = "test_sets"  # "test_sets" | "perturbations" (bench evaluate runs; the setting is the test set)


METRIC_LABELS = {"auc": "frame AUC", "video_auc": "video AUC"}


def reported_numbers() -> pd.DataFrame:
    """All reported numbers (long format, REPORTED_COLUMNS + `value_text`, the value as published: 0.7975 keeps
    its four digits), read from the package's reported.csv."""
    with files("bench.leaderboards").joinpath("reported.csv").open("r", encoding="utf-8") as fh:
        frame = pd.read_csv(fh, comment="#", dtype=str, keep_default_na=False)
    frame["value_text"] = frame["value"]
    frame["value"] = frame["value"].astype(float)
    return frame[[*REPORTED_COLUMNS, "value_text"]]

"""Paired comparison of detectors scored on the same test samples.

`bench compare RUN_A RUN_B`: per test set, at frame and video level, ΔAUC = AUC(A) - AUC(B) with DeLong's test and
a paired bootstrap that resamples videos (frames kept together, the same resample for both runs).
`bench leaderboard --baseline DETECTOR`: marks the cells of a table that differ significantly from that
detector's row (the paired video bootstrap, α = 0.05). Predictions come from each run's folder
(`predictions.parquet`) or, when the folder is gone, from the MLflow artifact of the same name.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
from tabulate import tabulate

from bench.errors import BenchError
from bench.metrics import InvalidInput, video_scores
from bench.stats import PairedAUC, bootstrap_p, delong, delta_interval, paired_bootstrap, paired_deltas

PREDICTION_COLUMNS = ("test_set", "key", "video", "label", "score")
ALPHA = 0.05
MARK_UP, MARK_DOWN = " ↑", " ↓"  # significantly above / below the baseline


@dataclass(frozen=True)
class RunPredictions:
    """One run's per-frame predictions (PREDICTION_COLUMNS) and how it was named."""

    name: str
    run_id: str | None
    frame: pd.DataFrame


@dataclass(frozen=True)
class Comparison:
    test_set: str
    level: str  # "frame" | "video"
    delong: PairedAUC
    bootstrap: PairedAUC


# ---- loading predictions ---------------------------------------------------------------------------------------


def _read(path: Path, what: str) -> pd.DataFrame:
    frame = pd.read_parquet(path)
    missing = [c for c in PREDICTION_COLUMNS if c not in frame]
    if missing:
        raise BenchError(f"{what}: {path} lacks the column(s) {', '.join(missing)} (docs/run-record.md)")
    return frame


def run_predictions(run_id: str, run_dir: str, uri: str | None) -> pd.DataFrame | None:
    """A logged run's predictions: from its folder, else its MLflow artifact; None when neither exists."""
    local = Path(run_dir) / "predictions.parquet" if run_dir else None
    if local is not None and local.is_file():
        return _read(local, f"run {run_id[:8]}")
    if uri is None:
        return None
    from bench.tracking import download_artifact

    with tempfile.TemporaryDirectory() as tmp:
        path = download_artifact(uri, run_id, "predictions.parquet", Path(tmp))
        return _read(path, f"run {run_id[:8]}") if path is not None and path.is_file() else None


def resolve(ref: str, uri: str) -> RunPredictions:
    """A run folder (with predictions.parquet) or an MLflow run id (full, or the short prefix tables print)."""
    folder = Path(ref).expanduser()
    if folder.is_dir():
        path = folder / "predictions.parquet"
        if not path.is_file():
            raise BenchError(f"run folder {folder} has no predictions.parquet (did the run finish?)")
        return RunPredictions(name=folder.name, run_id=None, frame=_read(path, f"run folder {folder}"))
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).exists():
        raise BenchError(f"{ref!r} is neither a run folder nor a run in {uri} (no such database)", key="--uri")
    from bench.tracking import find_runs

    found = find_runs(uri, ref)
    if len(found) != 1:
        what = "no run" if found.empty else f"{len(found)} runs ({', '.join(found['run_id'].str[:12])})"
        raise BenchError(f"{ref!r} is not a run folder, and {what} in {uri} match it as a run id", key="--uri")
    run = found.iloc[0]
    frame = run_predictions(run["run_id"], str(run.get("tags.bench.run_dir") or ""), uri)
    if frame is None:
        raise BenchError(f"run {ref} has no predictions: neither {run.get('tags.bench.run_dir')}/predictions.parquet "
                         "nor an MLflow artifact (was tracking.log_predictions off?)")
    return RunPredictions(name=str(run["run_id"])[:8], run_id=str(run["run_id"]), frame=frame)


def aligned(frames: list[pd.DataFrame], test_set: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(labels (N,), videos (N,), scores (R, N)) of one test set, frames matched by key across the R runs.
    The runs must have scored exactly the same frames with the same labels."""
    parts = [f[f["test_set"] == test_set].set_index("key").sort_index() for f in frames]
    first = parts[0]
    for other in parts[1:]:
        if not first.index.equals(other.index):
            only_a, only_b = first.index.difference(other.index), other.index.difference(first.index)
            raise BenchError(f"test set {test_set!r}: the runs scored different frames ({len(only_a)} only in one, "
                             f"{len(only_b)} only in the other, e.g. {[*only_a[:2], *only_b[:2]]}); a paired "
                             "comparison needs the same test samples")
        if not np.array_equal(first["label"].to_numpy(), other["label"].to_numpy()):
            raise BenchError(f"test set {test_set!r}: the runs disagree on the labels of the same frames")
    scores = np.vstack([p["score"].to_numpy(np.float64) for p in parts])
    return first["label"].to_numpy(), first["video"].to_numpy(dtype=object), scores


def video_level(labels: np.ndarray, videos: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(video labels (V,), video scores (R, V)): each run's mean frame probability per video."""
    per_run = [video_scores(videos, labels, row) for row in scores]
    return per_run[0][1], np.vstack([v for _, _, v in per_run])


# ---- bench compare ---------------------------------------------------------------------------------------------


def compare_runs(a: RunPredictions, b: RunPredictions, resamples: int = 1000, seed: int = 0) -> list[Comparison]:
    shared = [t for t in dict.fromkeys(a.frame["test_set"]) if t in set(b.frame["test_set"])]
    if not shared:
        raise BenchError(f"{a.name} and {b.name} share no test set (A: {sorted(set(a.frame['test_set']))}, "
                         f"B: {sorted(set(b.frame['test_set']))})")
    out = []
    for i, test_set in enumerate(shared):
        labels, videos, scores = aligned([a.frame, b.frame], test_set)
        try:
            frame_bs = paired_bootstrap(labels, scores[0], scores[1], resamples, seed + i, groups=videos)
            v_labels, v_scores = video_level(labels, videos, scores)
            video_bs = paired_bootstrap(v_labels, v_scores[0], v_scores[1], resamples, seed + i)
            out += [Comparison(test_set, "frame", delong(labels, scores[0], scores[1]), frame_bs),
                    Comparison(test_set, "video", delong(v_labels, v_scores[0], v_scores[1]), video_bs)]
        except InvalidInput as err:
            raise BenchError(f"test set {test_set!r}: {err}") from None
    return out


def _p(p: float, resamples: int = 0) -> str:
    if resamples and p == 0:
        return f"< {2 / resamples:.2g}"  # no resample crossed 0: below the resolution of the two-sided p
    return f"{p:.2g}" if p >= 1e-4 else f"{p:.1e}"


def format_comparison(a: RunPredictions, b: RunPredictions, comparisons: list[Comparison]) -> str:
    rows = []
    for c in comparisons:
        d, bs = c.delong, c.bootstrap
        rows.append([c.test_set, c.level, f"{d.auc_a:.4f}", f"{d.auc_b:.4f}", f"{d.delta:+.4f}",
                     f"[{d.ci_low:+.4f}, {d.ci_high:+.4f}]", _p(d.p_value),
                     f"[{bs.ci_low:+.4f}, {bs.ci_high:+.4f}]", _p(bs.p_value, bs.resamples), f"{d.n} / {bs.n}"])
    headers = ["test set", "level", "AUC A", "AUC B", "Δ = A - B", "DeLong 95% CI", "DeLong p", "bootstrap 95% CI",
               "bootstrap p", "n (DeLong / bootstrap)"]
    resamples = comparisons[0].bootstrap.resamples if comparisons else 0
    notes = [
        f"A = {a.name}, B = {b.name}; both scored the same test frames (matched by key).",
        "DeLong: DeLong et al. (1988) test for two correlated AUCs, normal interval. It counts every sample as "
        "independent: right at video level, too narrow at frame level when videos have several frames.",
        f"bootstrap: {resamples} paired resamples of videos (within each class; a drawn video brings all its frames, "
        "the same resample for A and B); percentile interval; p = twice the smaller share of resampled Δ on either "
        "side of 0. The frame-level test to trust.",
        "n: samples counted by DeLong (frames or videos) / videos resampled by the bootstrap.",
    ]
    return tabulate(rows, headers=headers, disable_numparse=True) + "\n\n" + "\n".join(f"- {n}" for n in notes)


def compare(ref_a: str, ref_b: str, uri: str = "sqlite:///mlflow.db", resamples: int = 1000, seed: int = 0) -> str:
    """`bench compare RUN_A RUN_B`: the formatted comparison."""
    a, b = resolve(ref_a, uri), resolve(ref_b, uri)
    return format_comparison(a, b, compare_runs(a, b, resamples, seed))


# ---- leaderboard marks -----------------------------------------------------------------------------------------


def mark_baseline(table, baseline: str, uri: str | None, resamples: int = 1000, alpha: float = ALPHA):
    """`table` with each measured cell tested against the `baseline` row of the same setting: the row labelled
    exactly `baseline`, else the default-config row of the detector named `baseline`.

    Adds cell columns delta, delta_low, delta_high, p_value and mark (↑ / ↓ when the (1 - alpha) paired video
    bootstrap interval of ΔAUC excludes 0). With several seeds, Δ is the difference of the rows' mean AUCs, every
    run seeing the same resample of videos: the interval covers test-set sampling, not seed-to-seed variation.
    """
    spec, used = table.spec, table.selection.used
    if spec.columns != "test_sets":
        raise BenchError(f"--baseline needs a table whose columns are test sets; {spec.name!r} has {spec.columns}",
                         key="--baseline")
    base = used[used["method"] == baseline]  # a row's label as printed, or a detector's default row
    if base.empty:
        base = used[(used["detector"] == baseline) & (used["variant"] == "") & (used["marks"] == "")]
    if base.empty:
        rows = "; ".join(sorted(set(used["method"])))
        raise BenchError(f"no measured row of {baseline!r} with its default config in table {spec.name!r}; pass a "
                         f"detector with a default row, or a row's label as printed: {rows}", key="--baseline")
    cache: dict[str, pd.DataFrame | None] = {}

    def preds(run) -> pd.DataFrame | None:
        if run["run_id"] not in cache:
            cache[run["run_id"]] = run_predictions(run["run_id"], run["run_dir"], uri)
        return cache[run["run_id"]]

    cells = table.cells.assign(delta=np.nan, delta_low=np.nan, delta_high=np.nan, p_value=np.nan, mark="")
    untested = 0
    for (method, setting), runs in used.groupby(["method", "setting"], sort=False):
        base_runs = base[base["setting"] == setting]
        if base_runs.empty or set(runs["run_id"]) == set(base_runs["run_id"]):
            continue
        frames_a = [preds(r) for r in runs.to_dict("records")]
        frames_b = [preds(r) for r in base_runs.to_dict("records")]
        if any(f is None for f in frames_a + frames_b):
            untested += 1
            continue
        for metric in spec.metrics:
            if metric not in ("auc", "video_auc"):
                continue
            per_test = _deltas(frames_a, frames_b, table.columns, metric, resamples)
            if table.average and all(t in per_test for t in table.average):  # test sets are independent samples
                per_test[spec.average_label] = (float(np.mean([per_test[t][0] for t in table.average])),
                                                np.mean([per_test[t][1] for t in table.average], axis=0))
            for column, (point, deltas) in per_test.items():
                at = (cells["method"] == method) & (cells["setting"] == setting) & (cells["metric"] == metric) & \
                    (cells["test_set"] == column) & cells["source"].str.startswith("measured")
                low, high = delta_interval(deltas, 1 - alpha)
                mark = MARK_UP if low > 0 else MARK_DOWN if high < 0 else ""
                cells.loc[at, ["delta", "delta_low", "delta_high", "p_value", "mark"]] = \
                    [point, low, high, bootstrap_p(deltas), mark]
    note = (f"↑ / ↓: significantly above / below the {baseline} row of the same setting at α = {alpha}: the "
            f"{100 * (1 - alpha):.0f}% interval of ΔAUC from {resamples} paired bootstrap resamples of the test "
            "videos (within each class, all frames of a drawn video, the same resample for every run) excludes 0. "
            "With several seeds the difference of the two rows' mean AUCs is tested; the interval covers test-set "
            "sampling, not seed-to-seed variation (the ± std).")
    extra = [note] + ([f"{untested} row(s) not tested: some of their runs' predictions are neither in the run "
                       "folder nor an MLflow artifact."] if untested else [])
    return replace(table, cells=cells, footnotes=(*table.footnotes, *extra))


def _deltas(frames_a, frames_b, columns, metric: str, resamples: int) -> dict[str, tuple[float, np.ndarray]]:
    """Per test set in `columns` that every run scored: (Δ of the mean AUCs of A's and B's runs, its bootstrap (n,))."""
    out = {}
    for i, test_set in enumerate(columns):
        if not all((f["test_set"] == test_set).any() for f in frames_a + frames_b):
            continue
        labels, videos, scores = aligned([*frames_a, *frames_b], test_set)
        groups = videos
        if metric == "video_auc":
            labels, scores = video_level(labels, videos, scores)
            groups = None
        auc_a, auc_b, deltas = paired_deltas(labels, scores[:len(frames_a)], scores[len(frames_a):], resamples,
                                             seed=i, groups=groups)
        out[test_set] = (auc_a - auc_b, deltas)
    return out

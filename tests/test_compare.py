"""bench compare (DeLong + paired video bootstrap per test set) and leaderboard --baseline marks, over runs whose
predictions sit in their run folders or only in MLflow."""

from __future__ import annotations

import io
import shutil

import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from bench.cli import main
from bench.compare import compare, compare_runs, resolve
from bench.errors import BenchError
from bench.leaderboard import leaderboard
from bench.leaderboards.benchmarks import CROSS_TEST_SETS
from mlflow_runs import log_run, synthetic_predictions

SHIFT = {"xception": 1.0, "clip_probe": 1.05, "moa_clip": 3.0}  # moa_clip separates far better; the others alike


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> dict:
    from mlflow.tracking import MlflowClient

    root = tmp_path_factory.mktemp("compare")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    runs = {}
    minute = 0
    for detector, shift in SHIFT.items():
        for seed in (0, 1):
            minute += 1
            preds, metrics = synthetic_predictions(dict.fromkeys(CROSS_TEST_SETS, shift), seed=seed + 10 * minute)
            run_dir = root / "outputs" / f"{detector}-{seed}"
            run_id = log_run(client, ["protocol=ff_to_all", f"detector={detector}", f"trainer.seed={seed}"], metrics,
                             minute=minute, predictions=preds, run_dir=run_dir)
            runs[f"{detector}/{seed}"] = {"id": run_id, "dir": run_dir, "preds": preds}
    # clip_probe seed 1: predictions only in MLflow (its run folder was deleted)
    gone = runs["clip_probe/1"]
    client.log_artifact(gone["id"], str(gone["dir"] / "predictions.parquet"))
    shutil.rmtree(gone["dir"])
    return {"uri": uri, "runs": runs}


def test_compare_two_run_folders(store: dict) -> None:
    a, b = store["runs"]["moa_clip/0"], store["runs"]["xception/0"]
    text = compare(str(a["dir"]), str(b["dir"]), uri=store["uri"], resamples=300)
    lines = [line for line in text.splitlines() if line.startswith(tuple(CROSS_TEST_SETS))]
    assert len(lines) == 2 * len(CROSS_TEST_SETS)  # frame and video level per test set
    pa, pb = a["preds"], b["preds"]
    frame = pa[pa["test_set"] == "DFD"].merge(pb[pb["test_set"] == "DFD"], on="key")
    delta = roc_auc_score(frame["label_x"], frame["score_x"]) - roc_auc_score(frame["label_x"], frame["score_y"])
    dfd_frame = next(line for line in lines if line.split()[:2] == ["DFD", "frame"])
    assert f"{delta:+.4f}" in dfd_frame
    assert "DeLong" in text and "videos" in text


def test_compare_results_are_significant_only_where_they_should_be(store: dict) -> None:
    runs = store["runs"]
    better = compare_runs(resolve(str(runs["moa_clip/0"]["dir"]), store["uri"]),
                          resolve(str(runs["xception/0"]["dir"]), store["uri"]), resamples=400)
    assert all(c.bootstrap.ci_low > 0 and c.delong.p_value < 0.05 for c in better)
    alike = compare_runs(resolve(str(runs["clip_probe/0"]["dir"]), store["uri"]),
                         resolve(str(runs["xception/0"]["dir"]), store["uri"]), resamples=400)
    video = [c for c in alike if c.level == "video"]
    assert sum(c.bootstrap.ci_low > 0 or c.bootstrap.ci_high < 0 for c in video) <= 1
    for c in alike:  # frame-level DeLong counts 160 frames; the bootstrap resamples the 40 videos
        assert (c.delong.n, c.bootstrap.n) == ((160, 40) if c.level == "frame" else (40, 40))


def test_compare_by_mlflow_run_id_and_artifact_fallback(store: dict, capsys) -> None:
    runs = store["runs"]
    short = runs["clip_probe/1"]["id"][:8]  # its folder is gone: the predictions come from MLflow
    assert main(["compare", short, runs["xception/1"]["id"], "--uri", store["uri"], "--resamples", "100"]) == 0
    out = capsys.readouterr().out
    rows = [line.split() for line in out.splitlines() if line.startswith(CROSS_TEST_SETS)]
    assert f"A = {short}" in out and [r[1] for r in rows].count("frame") == len(CROSS_TEST_SETS)


def test_compare_errors_are_one_line(store: dict, tmp_path, capsys) -> None:
    with pytest.raises(BenchError, match="no run in .* match"):
        compare("ffffffff", str(store["runs"]["xception/0"]["dir"]), uri=store["uri"])
    empty = tmp_path / "unfinished"
    empty.mkdir()
    with pytest.raises(BenchError, match="no predictions.parquet"):
        compare(str(empty), str(store["runs"]["xception/0"]["dir"]), uri=store["uri"])
    other = tmp_path / "other"
    other.mkdir()
    preds = store["runs"]["xception/0"]["preds"]
    preds[preds.index % 7 != 0].to_parquet(other / "predictions.parquet")  # some frames missing
    with pytest.raises(BenchError, match="scored different frames"):
        compare(str(other), str(store["runs"]["xception/0"]["dir"]), uri=store["uri"])
    assert main(["compare", str(other), str(store["runs"]["xception/0"]["dir"]), "--uri", store["uri"]]) == 2
    err = capsys.readouterr().err
    assert err.startswith("bench: error:") and err.count("\n") == 1 and "Traceback" not in err


def test_leaderboard_marks_cells_against_the_baseline(store: dict) -> None:
    text = leaderboard("cross", "csv", uri=store["uri"], baseline="xception", resamples=300)
    cells = pd.read_csv(io.StringIO(text), comment="#", keep_default_na=False)
    measured = cells[cells["source"] == "measured"].set_index(["method", "test_set"])
    measured = measured.assign(**{c: pd.to_numeric(measured[c]) for c in ("value", "delta", "delta_low")})
    for t in (*CROSS_TEST_SETS, "Avg"):
        assert measured.loc[("moa_clip", t), "mark"].strip() == "↑"
        assert measured.loc[("moa_clip", t), "delta_low"] > 0
        assert measured.loc[("xception", t), "mark"] == ""  # the baseline itself is not tested
    marks = [measured.loc[("clip_probe", t), "mark"].strip() for t in CROSS_TEST_SETS]
    assert marks.count("") >= len(marks) - 1  # alike detectors: at most a chance mark
    # the tested difference is that of the rows' mean AUC over their seeds
    delta = measured.loc[("moa_clip", "CDF-v1"), "value"] - measured.loc[("xception", "CDF-v1"), "value"]
    assert measured.loc[("moa_clip", "CDF-v1"), "delta"] == pytest.approx(delta, abs=1e-9)
    assert "α = 0.05" in text and "seed-to-seed" in text

    github = leaderboard("cross", "github", uri=store["uri"], baseline="xception", resamples=100)
    assert " ↑" in github
    with pytest.raises(BenchError, match="no measured row of 'f3net'"):
        leaderboard("cross", "github", uri=store["uri"], baseline="f3net")

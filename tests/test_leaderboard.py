"""bench leaderboard over a real (temporary, sqlite) MLflow store filled with fake runs, as tracking logs them."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench.errors import BenchError
from bench.leaderboard import leaderboard, list_tables
from bench.leaderboards.benchmarks import CROSS_TEST_SETS, DEMO_IN_DOMAIN, DIFF_SUBSETS
from bench.leaderboards.spec import AVG, reported_numbers
from bench.leaderboards.tables import TABLES
from mlflow_runs import log_run

DEMO_TEST_SETS = (*DEMO_IN_DOMAIN, "diffusion_heldout")


def _auc(i: int, base: float) -> float:
    """Distinct values in 0.50-0.55, a range no reported number falls in."""
    return round(base + 0.0071 * i, 4)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One sqlite store for the module (creating it costs seconds). Returns the URI and what was logged."""
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    logged: dict[str, dict[str, float]] = {}

    def cross(base: float) -> dict[str, float]:
        return {f"{t}/auc": _auc(i, base) for i, t in enumerate(CROSS_TEST_SETS)} | {"val/auc": 0.99}

    ff = ["protocol=ff_to_all"]
    logged["moa_clip"] = cross(0.50)
    log_run(client, [*ff, "detector=moa_clip"], logged["moa_clip"], minute=1)
    log_run(client, [*ff, "detector=xception"], cross(0.51), minute=2)  # superseded by the next run
    logged["xception"] = cross(0.52)
    log_run(client, [*ff, "detector=xception"], logged["xception"], minute=3)
    log_run(client, [*ff, "detector=f3net"], {"CDF-v1/auc": 0.5432}, minute=4, status="FAILED")
    logged["clip_probe/0"], logged["clip_probe/1"] = cross(0.503), cross(0.514)
    log_run(client, [*ff, "detector=clip_probe"], logged["clip_probe/0"], minute=5)
    log_run(client, [*ff, "detector=clip_probe", "trainer.seed=1"], logged["clip_probe/1"], minute=6)

    demo = {}
    for i, t in enumerate(DEMO_TEST_SETS):
        for j, m in enumerate(("auc", "video_auc")):
            v = _auc(i, 0.50 + 0.02 * j)
            demo |= {f"{t}/{m}": v, f"{t}/{m}_ci_low": v - 0.03, f"{t}/{m}_ci_high": v + 0.04}
    logged["demo"] = demo
    log_run(client, ["detector=dummy"], demo, minute=7)
    log_run(client, ["detector=moa_clip", "detector.ablate=sim"], demo, minute=8)

    for k, subset in enumerate(("t2i", "fs")):
        logged[f"diff_{subset}"] = {f"{t}/auc": _auc(i, 0.50 + 0.003 * k) for i, t in enumerate(DIFF_SUBSETS)}
        log_run(client, [f"protocol=diff_{subset}", "detector=clip_ft"], logged[f"diff_{subset}"], minute=9 + k)
    return {"uri": uri, "logged": logged}


def _rows(text: str) -> list[list[str]]:
    """The body rows of a github table, as stripped cells."""
    lines = [line for line in text.splitlines() if line.startswith("|")][2:]
    return [[c.strip() for c in line.strip("|").split("|")] for line in lines]


def _row(rows: list[list[str]], *key: str) -> list[str]:
    found = [r for r in rows if r[:len(key)] == list(key)]
    assert len(found) == 1, (key, rows)
    return found[0]


def test_cross_github(store: dict) -> None:
    text = leaderboard("cross", "github", uri=store["uri"])
    rows = _rows(text)
    header = [line for line in text.splitlines() if line.startswith("|")][0]
    assert [c.strip() for c in header.strip("|").split("|")] == ["method", "source", *CROSS_TEST_SETS, AVG,
                                                                 "seeds", "runs", "commit", "protocol"]

    values = [store["logged"]["moa_clip"][f"{t}/auc"] for t in CROSS_TEST_SETS]
    moa = _row(rows, "moa_clip", "measured")
    assert moa[2:8] == [f"{v:.3f}" for v in [*values, np.mean(values)]]
    assert moa[8] == "1 (0)" and len(moa[9]) == 8 and moa[10] == "0123456" and moa[11] == "v1"  # provenance
    # the measured row sits right after the paper's row of the same detector
    paper_row = rows.index(_row(rows, "MoA-CLIP", "reported (paper T1)"))
    assert rows.index(_row(rows, "moa_clip", "measured")) == paper_row + 1

    # reported rows from both sources, with the DeepfakeBench caveat
    reported = reported_numbers()
    lsda = reported[(reported["method"] == "LSDA") & (reported["test_set"] == "CDF-v1")]["value"].item()
    assert _row(rows, "LSDA", "reported (paper T1)")[2] == f"{lsda:.3f}"
    assert _row(rows, "F3Net", "reported (DeepfakeBench)")[6] == "0.7975"  # published precision kept
    assert _row(rows, "EfficientNet-B4", "reported (DeepfakeBench)")[8:] == ["", "", "", ""]
    assert "top-3 test AUCs" in text

    # the latest of two runs with the same row key and seed wins
    latest = store["logged"]["xception"]["CDF-v1/auc"]
    assert _row(rows, "xception", "measured")[2] == f"{latest:.3f}"
    assert "superseded" in text

    # two seeds: mean ± std
    seeds = [store["logged"][f"clip_probe/{s}"]["CDF-v2/auc"] for s in (0, 1)]
    clip = _row(rows, "clip_probe", "measured")
    assert clip[3] == f"{np.mean(seeds):.3f} ± {np.std(seeds, ddof=1):.3f}" and clip[8] == "2 (0,1)"

    # the FAILED run is excluded and counted
    assert not any(r[0] == "f3net" for r in rows) and "0.543" not in text
    assert "1 FAILED" in text


def test_cross_latex_and_csv(store: dict) -> None:
    moa = store["logged"]["moa_clip"]
    latex = leaderboard("cross", "latex", uri=store["uri"])
    assert r"\begin{tabular}" in latex and r"\end{tabular}" in latex
    assert f"{moa['DFD/auc']:.3f}" in latex and "reported (paper T1)" in latex and r"moa\_clip" in latex

    text = leaderboard("cross", "csv", uri=store["uri"])
    assert any(line.startswith("# DeepfakeBench") for line in text.splitlines())
    cells = pd.read_csv(io.StringIO(text), comment="#", keep_default_na=False)
    measured = cells[(cells["method"] == "moa_clip") & (cells["source"] == "measured")].set_index("test_set")
    for t in CROSS_TEST_SETS:
        assert measured.loc[t, "value"] == moa[f"{t}/auc"]  # full precision, not rounded to 3 digits
    provenance = measured.loc["CDF-v1", ["n_runs", "seeds", "commits", "protocol_version"]]
    assert [str(v) for v in provenance] == ["1", "0", "0123456", "1"]
    as_text = pd.read_csv(io.StringIO(text), comment="#", keep_default_na=False, dtype=str)
    f3 = as_text[(as_text["method"] == "F3Net") & (as_text["source"] == "reported (DeepfakeBench)")]
    assert f3.set_index("test_set").loc["DFD", "value"] == "0.7975"  # reported numbers keep their precision
    assert as_text.set_index(["method", "source", "test_set"]).loc[("LSDA", "reported (paper T1)", "CDF-v1"),
                                                                   "value"] == "0.867"
    assert set(cells.loc[cells["source"].str.startswith("reported"), "source"]) == {
        "reported (paper T1)", "reported (DeepfakeBench)"}
    assert "f3net" not in set(cells["method"])


def test_demo_shows_frame_and_video_auc_with_ci(store: dict) -> None:
    text = leaderboard("demo", "github", uri=store["uri"])
    rows = _rows(text)
    demo = store["logged"]["demo"]
    frame = _row(rows, "dummy", "frame AUC", "measured (tiny)")
    video = _row(rows, "dummy", "video AUC", "measured (tiny)")
    blend = demo["blend/auc"]
    assert frame[3] == f"{blend:.3f} [{demo['blend/auc_ci_low']:.3f}, {demo['blend/auc_ci_high']:.3f}]"
    assert video[3].startswith(f"{demo['blend/video_auc']:.3f} [")
    # columns: in-domain test sets, their average, then the held-out one
    assert frame[7] == f"{np.mean([demo[f'{t}/auc'] for t in DEMO_IN_DOMAIN]):.3f}"
    assert frame[8].startswith(f"{demo['diffusion_heldout/auc']:.3f} [")
    assert "reported" not in text


def test_diff_rows_are_detector_and_train_subset(store: dict) -> None:
    rows = _rows(leaderboard("diff", "github", uri=store["uri"]))
    for subset in ("T2I", "FS"):
        logged = store["logged"][f"diff_{subset.lower()}"]
        row = _row(rows, "clip_ft", subset, "measured")  # the paper's CLIP rows are paired with clip_ft
        assert row[3:7] == [f"{logged[f'{t}/auc']:.3f}" for t in DIFF_SUBSETS]
        assert rows.index(row) == rows.index(_row(rows, "CLIP", subset, "reported (paper T2)")) + 1
    assert _row(rows, "MoA-CLIP", "I2I", "reported (paper T2)")  # reported rows without measured ones stay


def test_ablation_over_another_experiment_uses_its_test_sets(store: dict) -> None:
    text = leaderboard("ablation_losses", "github", experiment="demo,nonexistent", uri=store["uri"])
    row = _row(_rows(text), "moa_clip", "w/o L_sim", "measured (tiny)")
    assert f"{store['logged']['demo']['blend/auc']:.3f}" in row
    assert "not shown" in text  # the paper's columns (CDF-v2, ...) are not among the demo's test sets
    assert "dummy" not in text  # the table keeps MoA-CLIP runs only


def test_no_runs(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'absent.db'}"
    text = leaderboard("cross", "github", uri=uri)
    assert "No usable runs" in text and uri in text and "bench run protocol=ff_to_all" in text
    assert _row(_rows(text), "MoA-CLIP", "reported (paper T1)")  # reported rows still shown
    with pytest.raises(BenchError, match="bench run protocol=demo"):
        leaderboard("demo", "github", uri=uri)  # nothing at all to show
    assert not (tmp_path / "absent.db").exists()


def test_list_tables_names_every_table() -> None:
    listing = list_tables()
    assert all(name in listing for name in TABLES)


def test_unknown_table_and_format() -> None:
    with pytest.raises(BenchError, match="unknown leaderboard table 'nope'.*cross.*demo"):
        leaderboard("nope")
    with pytest.raises(BenchError, match="formats: github, latex, csv"):
        leaderboard("cross", "html", uri="sqlite:////nonexistent/mlflow.db")


def test_reported_numbers_are_consistent() -> None:
    reported = reported_numbers()
    assert set(reported["table"]) <= set(TABLES)
    assert not reported.duplicated(["source", "table", "method", "setting", "test_set", "metric"]).any()
    # each printed average agrees with the mean of its row (a check on the transcription), or the note says it does not
    for key, row in reported[reported["source"].str.startswith("paper")].groupby(["table", "method", "setting"]):
        values = row.set_index("test_set")["value"]
        if AVG not in values:
            continue
        mean, note = values.drop(AVG).mean(), row.loc[row["test_set"] == AVG, "note"].item()
        if note.startswith("as printed"):  # the paper's Table 2 is inconsistent in some rows
            assert float(note.split()[-1]) == pytest.approx(mean, abs=1e-4), key
        else:
            assert values[AVG] == pytest.approx(mean, abs=0.0015), key

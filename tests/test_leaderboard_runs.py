"""Which runs each table uses: one MLflow store holding every kind of run that is not a result, beside the ones
that are (defaults over seeds, ablations, allow-listed differences, runs logged before the newer tags existed).
Each table must pick exactly the right runs and account for every other one in its footnote."""

from __future__ import annotations

import io
import time

import numpy as np
import pandas as pd
import pytest

from bench.leaderboard import leaderboard
from bench.leaderboards.benchmarks import CROSS_TEST_SETS
from mlflow_runs import log_run

FF = ["protocol=ff_to_all"]
NEW_TAGS = ("bench.run_kind", "bench.git_dirty", "bench.health", "bench.complete", "bench.heartbeat")


def _cross(base: float) -> dict[str, float]:
    """Distinct AUCs per test set (no reported number looks like them), plus validation and best epoch."""
    return {f"{t}/auc": round(base + 0.0071 * i, 4) for i, t in enumerate(CROSS_TEST_SETS)} | \
        {"val/auc": 0.99, "best_epoch": 3}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> dict:
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    ids: dict[str, str] = {}

    def run(name: str, overrides: list[str], base: float, minute: int, **kw) -> None:
        ids[name] = log_run(client, FF + overrides, _cross(base), minute=minute, **kw)

    legacy = dict.fromkeys(NEW_TAGS)  # logged before these tags existed
    run("moa_s1_old", ["detector=moa_clip", "trainer.seed=1"], 0.40, 1)  # superseded by moa_s1
    run("moa_s0", ["detector=moa_clip"], 0.50, 2)
    run("moa_s1", ["detector=moa_clip", "trainer.seed=1"], 0.52, 3)
    run("moa_att", ["detector=moa_clip", "detector.ablate=att"], 0.54, 4)
    run("moa_dim64", ["detector=moa_clip", "detector.adapter_dim=64"], 0.56, 5)
    run("xc_s0", ["detector=xception"], 0.60, 6)
    run("xc_s2_workers", ["detector=xception", "trainer.seed=2", "trainer.num_workers=4", "trainer.device=cpu",
                          "trainer.bootstrap=50", "tracking.uri=sqlite:///elsewhere.db"], 0.62, 7)  # allow-listed
    run("xc_lr", ["detector=xception", "trainer.lr=0.001"], 0.64, 8)
    run("xc_smoke", ["detector=xception", "trainer.max_steps_per_epoch=3"], 0.66, 9)
    run("xc_dirty", ["detector=xception"], 0.68, 10, tags={"bench.git_dirty": "true"})
    run("xc_diverged", ["detector=xception"], 0.70, 11, tags={"bench.health": "diverged"})
    run("xc_untrained", ["detector=xception"], 0.72, 12, tags=legacy, params={"trainer.epochs": "-1"})
    run("xc_testsplit", ["detector=xception", "protocol.train.split=test"], 0.74, 13)
    run("f3_stale", ["detector=f3net"], 0.76, 14, status="RUNNING", tags={"bench.heartbeat": str(time.time() - 3 * 86400)})
    run("f3_running", ["detector=f3net"], 0.78, 15, status="RUNNING", tags={"bench.heartbeat": str(time.time())})
    run("f3_failed", ["detector=f3net"], 0.80, 16, status="FAILED")
    run("f3_old_version", ["detector=f3net"], 0.82, 17, params={"protocol.version": "0"})
    run("clip_legacy", ["detector=clip_probe"], 0.84, 18, tags=legacy)  # old but fine: still a result
    run("clip_legacy_dirty", ["detector=clip_probe", "trainer.seed=1"], 0.86, 19,
        tags={**legacy, "bench.git_commit": "f" * 40 + "+dirty"})
    ids["clip_constant"] = log_run(client, FF + ["detector=clip_probe", "trainer.seed=2"],
                                   {f"{t}/auc": 0.5 for t in CROSS_TEST_SETS}, minute=20, tags=legacy)
    for k, (source, level) in enumerate([("xc_s0", "none"), ("xc_s0", "jpeg=90"), ("xc_s0", "jpeg=50"),
                                         ("moa_s0", "jpeg=50"), ("moa_s1", "jpeg=50"), ("xc_dirty", "jpeg=50")]):
        ids[f"eval_{source}_{level}"] = log_run(
            client, FF + [f"detector={'moa_clip' if source.startswith('moa') else 'xception'}"],
            {f"{t}/auc": round(0.3 + 0.01 * k + 0.001 * i, 4) for i, t in enumerate(CROSS_TEST_SETS[:2])},
            minute=30 + k, tags={"bench.run_kind": "evaluate", "bench.source_run": ids[source],
                                 "bench.perturbation": level, "bench.complete": "false"})  # trains nothing
    return {"uri": uri, "ids": ids}


def _csv(text: str) -> pd.DataFrame:
    return pd.read_csv(io.StringIO(text), comment="#", keep_default_na=False, dtype=str)


def _measured(cells: pd.DataFrame) -> pd.DataFrame:
    return cells[cells["source"].str.startswith("measured")]


def _footnotes(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if line.startswith("#"))


def test_cross_picks_exactly_the_results(store: dict) -> None:
    ids = store["ids"]
    text = leaderboard("cross", "csv", uri=store["uri"], show_runs=True)
    cells = _measured(_csv(text))
    rows = cells.drop_duplicates("method").set_index("method")
    assert set(rows.index) == {"moa_clip", "moa_clip [detector.ablate=att]", "moa_clip [detector.adapter_dim=64]",
                               "xception", "xception [trainer.lr=0.001]", "clip_probe"}
    # provenance: the seeds, short run ids, commit and protocol version of every row
    assert rows.loc["moa_clip", ["n_runs", "seeds"]].tolist() == ["2", "0,1"]
    assert rows.loc["moa_clip", "run_ids"] == f"{ids['moa_s0'][:8]},{ids['moa_s1'][:8]}"
    assert (rows.loc["moa_clip", "commits"], rows.loc["moa_clip", "protocol_version"]) == ("0123456", "1")
    assert rows.loc["xception", "seeds"] == "0,2"  # workers, device, bootstrap, tracking: the same method
    assert rows.loc["clip_probe", "seeds"] == "0"  # the legacy run without the new tags is still a result
    moa = cells[(cells["method"] == "moa_clip") & (cells["test_set"] == "CDF-v1")].iloc[0]
    assert float(moa["value"]) == pytest.approx(np.mean([0.50, 0.52]))  # seed 1's older run was superseded
    assert float(moa["std"]) == pytest.approx(np.std([0.50, 0.52], ddof=1))

    notes = _footnotes(text)
    for reason, n in [("superseded by a later run", 1), ("incomplete", 2), ("dirty work tree", 2),
                      ("health diverged", 1), ("health constant_scores", 1), ("trained or validated on a test split", 1),
                      ("stale RUNNING", 1), ("RUNNING", 1), ("FAILED", 1), ("older protocol version", 1),
                      ("evaluate run(s)", 6)]:
        assert f"{n} {reason}" in notes, (reason, notes)
    assert "--include-dirty" in notes and "--include-incomplete" in notes and "--include-unhealthy" in notes
    # --show-runs: every run, used or not, by its short id
    listed = "\n".join(line for line in text.splitlines() if line.startswith("# run"))
    for name, run_id in ids.items():
        assert run_id[:8] in listed, name
    used_block = listed.split("Runs left out")[0]
    assert ids["xc_smoke"][:8] not in used_block and ids["xc_s2_workers"][:8] in used_block


def test_untagged_runs_are_judged_by_what_they_logged(store: dict) -> None:
    ids = store["ids"]
    text = leaderboard("cross", "github", uri=store["uri"], show_runs=True)
    left = {line.split("|")[1].strip(): line for line in text.split("Runs left out")[1].splitlines() if "|" in line}
    assert "incomplete" in left[ids["xc_untrained"][:8]]  # trainer.epochs=-1, best epoch 0
    assert "dirty" in left[ids["clip_legacy_dirty"][:8]]  # "+dirty" commit suffix
    assert "constant_scores" in left[ids["clip_constant"][:8]]  # every test AUC exactly 0.5


def test_opting_in_adds_marked_rows_never_mixed(store: dict) -> None:
    cells = _measured(_csv(leaderboard("cross", "csv", uri=store["uri"], include=frozenset({"dirty", "incomplete"}))))
    methods = set(cells["method"])
    assert {"xception [dirty]", "clip_probe [dirty]"} <= methods
    # each also differs in a config key: the step cap, the epochs
    assert {"xception [trainer.max_steps_per_epoch=3, incomplete]", "xception [trainer.epochs=-1, incomplete]"} <= methods
    assert cells[cells["method"] == "xception"]["seeds"].iloc[0] == "0,2"  # the clean row is unchanged
    assert not any("diverged" in m for m in methods)
    unhealthy = set(_measured(_csv(leaderboard("cross", "csv", uri=store["uri"],
                                               include=frozenset({"unhealthy"}))))["method"])
    assert {"xception [diverged]", "clip_probe [constant_scores]"} <= unhealthy


def test_ablation_tables_pivot_on_their_keys(store: dict) -> None:
    text = leaderboard("ablation_losses", "csv", uri=store["uri"])
    cells = _measured(_csv(text))
    rows = cells.drop_duplicates("losses").set_index("losses")
    assert set(rows.index) == {"all losses", "w/o L_att"}
    assert set(cells["method"]) == {"moa_clip"}  # the pivot key does not label the row
    assert rows.loc["all losses", "seeds"] == "0,1" and rows.loc["w/o L_att", "seeds"] == "0"
    # the adapter_dim=64 run and the five usable runs of other detectors
    assert "6 outside this table's filters" in _footnotes(text) and "older protocol version" not in _footnotes(text)
    dims = _measured(_csv(leaderboard("ablation_adapter", "csv", uri=store["uri"])))
    assert set(dims["adapter dim"]) == {"128", "64"}


def test_robustness_uses_evaluate_runs_of_usable_sources(store: dict) -> None:
    ids = store["ids"]
    text = leaderboard("robustness", "csv", uri=store["uri"])
    cells = _measured(_csv(text))
    assert set(cells["method"]) == {"xception", "moa_clip"}
    xc = cells[(cells["method"] == "xception") & (cells["test_set"] == "CDF-v1")].set_index("perturbation")
    assert list(xc.index) == ["none", "jpeg=90", "jpeg=50"]  # none first, then in the order evaluated
    assert float(xc.loc["jpeg=90", "value"]) == pytest.approx(0.31)
    assert xc.loc["none", "run_ids"] == ids["xc_s0"][:8]  # the source (trained) run is the row's run
    moa = cells[(cells["method"] == "moa_clip") & (cells["test_set"] == "CDF-v2")].set_index("perturbation")
    assert moa.loc["jpeg=50", "seeds"] == "0,1"
    assert float(moa.loc["jpeg=50", "value"]) == pytest.approx(np.mean([0.331, 0.341]))
    assert "1 its source run is left out: dirty work tree" in _footnotes(text)
    github = leaderboard("robustness", "github", uri=store["uri"])
    assert "| test set" in github and "jpeg=90" in github

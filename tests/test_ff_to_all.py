"""`bench prepare` + `bench run protocol=ff_to_all` on fixture trees laid out exactly as the datasets are published."""

from __future__ import annotations


import pytest

from bench.cli import main
from bench.tracking import search_runs
from dataset_trees import make_celebdf, make_dfd, make_dfdc, make_dfdcp, make_ffpp

TEST_SETS = ("FF", "CDF-v1", "CDF-v2", "DFDC", "DFDC-P", "DFD")


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> list[str]:
    """Fixture trees for every dataset of the protocol, prepared into a private cache. Returns the run overrides."""
    root = tmp_path_factory.mktemp("trees")
    cache = tmp_path_factory.mktemp("cache")
    trees = {
        "ffpp": make_ffpp(root / "ffpp"),
        "celebdf_v1": make_celebdf(root / "cdf1", name="celebdf_v1"),
        "celebdf_v2": make_celebdf(root / "cdf2", name="celebdf_v2"),
        "dfdc": make_dfdc(root / "dfdc"),
        "dfdcp": make_dfdcp(root / "dfdcp"),
        "dfd": make_dfd(root / "dfd"),
    }
    overrides = [o for t in trees.values() for o in t.overrides] + [f"paths.cache={cache}"]
    for name in trees:
        assert main(["prepare", f"dataset={name}", "prepare.workers=1", "prepare.progress=false", *overrides]) == 0
    return overrides


def test_data_status_reports_roots_and_prepared_frames(prepared, capsys):
    assert main(["data", "status", *prepared]) == 0
    out = capsys.readouterr().out
    for name in ("ffpp", "celebdf_v1", "celebdf_v2", "dfdc", "dfdcp", "dfd"):
        assert name in out


def test_ff_to_all_runs_on_prepared_fixture_trees(prepared, tmp_path, monkeypatch, mlflow_uri):
    monkeypatch.chdir(tmp_path)
    args = ["run", "protocol=ff_to_all", "detector=dummy", "scale=tiny", "trainer.epochs=1", "trainer.frames_per_video=4",
            "trainer.bootstrap=20", "trainer.progress=false", f"tracking.uri={mlflow_uri}", *prepared]
    assert main(args) == 0
    runs = search_runs(mlflow_uri, ["ff_to_all"])
    assert len(runs) == 1 and runs.loc[0, "status"] == "FINISHED"
    for name in TEST_SETS:
        assert 0.0 <= runs.loc[0, f"metrics.{name}/auc"] <= 1.0
        assert 0.0 <= runs.loc[0, f"metrics.{name}/video_auc"] <= 1.0
    # the training manifest only holds FF++ train-split frames: its hash differs from the validation one
    assert runs.loc[0, "tags.bench.train_manifest_sha256"] != runs.loc[0, "tags.bench.val_manifest_sha256"]


def test_unprepared_dataset_says_how_to_prepare(tmp_path, capsys):
    tree = make_ffpp(tmp_path / "ffpp", video=False)
    code = main(["run", "protocol=ff_to_all", *tree.overrides, f"paths.cache={tmp_path / 'empty-cache'}",
                 "datasets.celebdf_v1.root=/", "datasets.celebdf_v2.root=/", "datasets.dfdc.root=/", "datasets.dfdcp.root=/",
                 "datasets.dfd.root=/", "tracking.enabled=false"])
    assert code == 2
    assert "bench prepare dataset=" in capsys.readouterr().err

"""`bench evaluate`: a finished run's selected checkpoint on other or perturbed test sets, as linked runs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bench.cli import main
from bench.errors import BenchError
from bench.perturb import Perturbation, parse
from bench.tracking import search_runs
from cli_tools import SMALL, assert_one_line_error, record, run_folders

METRICS = ("auc", "video_auc", "ap", "eer", "acc", "auc_ci_low", "auc_ci_high")


def test_perturbations_parse_and_change_pixels_but_not_shapes():
    levels = parse(["jpeg=90,50", "blur=1.5", "resize=0.5"])
    assert [p.name for p in levels] == ["jpeg=90", "jpeg=50", "blur=1.5", "resize=0.5"]
    rng = np.random.default_rng(0)
    image = (rng.random((64, 48, 3)) * 255).astype(np.uint8)
    for p in levels:
        out = p(image)
        assert out.shape == image.shape and out.dtype == np.uint8 and not np.array_equal(out, image)
    assert Perturbation("blur", 2)(image).std() < image.std()  # smoother
    assert np.array_equal(Perturbation("jpeg", 70)(image), Perturbation("jpeg", 70)(image))  # deterministic
    for bad in (["jpeg=101"], ["jpeg=9.5"], ["blur=0"], ["resize=2"], ["noise=1"], ["jpeg"], ["jpeg=abc"]):
        with pytest.raises(BenchError, match="--perturb"):
            parse(bad)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[str, str]:
    """(tracking URI, run folder) of one finished demo run."""
    root = tmp_path_factory.mktemp("evaluate")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    assert main(["run", *SMALL, "trainer.epochs=1", f"tracking.uri={uri}", f"paths.output={root / 'out'}"]) == 0
    return uri, str(run_folders(root / "out")[0])


def test_evaluate_logs_one_linked_run_per_perturbation_level(trained):
    uri, folder = trained
    source = record(folder)
    assert main(["evaluate", source["mlflow"]["run_id"], f"tracking.uri={uri}", "--perturb", "jpeg=50", "resize=0.5"]) == 0
    runs = search_runs(uri, ["demo"])
    train = runs[runs["tags.bench.run_kind"] == "train"].iloc[0]
    evals = runs[runs["tags.bench.run_kind"] == "evaluate"].set_index("tags.bench.perturbation")
    assert sorted(evals.index) == ["jpeg=50", "none", "resize=0.5"]
    assert set(evals["tags.bench.source_run"]) == {train["run_id"]} and set(evals["status"]) == {"FINISHED"}
    for test_set in ("blend", "warp", "diffusion_heldout"):
        for metric in METRICS:  # unperturbed: the very numbers of the evaluated run
            assert evals.loc["none", f"metrics.{test_set}/{metric}"] == train[f"metrics.{test_set}/{metric}"]
    assert not np.allclose(evals.loc["resize=0.5", [f"metrics.{t}/ap" for t in ("blend", "warp", "double_jpeg")]].astype(float),
                           train[[f"metrics.{t}/ap" for t in ("blend", "warp", "double_jpeg")]].astype(float))


def test_evaluate_on_other_test_sets_without_retraining(trained, tmp_path):
    uri, folder = trained
    assert main(["evaluate", folder, "tracking.enabled=false", f"paths.output={tmp_path}",
                 "protocol.test.blend.domains=[warp]"]) == 0  # the test set named blend now holds the warp family
    [evaluation] = run_folders(tmp_path)
    results = json.loads((evaluation / "results.json").read_text())
    source = json.loads((Path(folder) / "results.json").read_text())
    assert results["blend"]["auc"] == source["warp"]["auc"] and results["warp"]["auc"] == source["warp"]["auc"]
    assert record(evaluation)["tags"]["bench.source_run_dir"] == folder


def test_evaluate_refuses_test_sets_the_run_trained_or_selected_on(trained, tmp_path, capsys):
    _, folder = trained
    for split in ("train", "val"):
        code = main(["evaluate", folder, "tracking.enabled=false", f"paths.output={tmp_path}",
                     f"protocol.test.blend.split={split}"])
        assert_one_line_error(code, capsys.readouterr().err, "test data would reach training",
                              "training set" if split == "train" else "validation set")
    assert not run_folders(tmp_path)  # refused before any evaluation run exists


def test_evaluate_refuses_what_it_cannot_do(trained, tmp_path, capsys):
    uri, folder = trained
    assert_one_line_error(main(["evaluate", folder, "--perturb", "jpeg=500"]), capsys.readouterr().err, "--perturb jpeg=500")
    assert_one_line_error(main(["evaluate", folder, "detector=clip_probe"]), capsys.readouterr().err, "detector")
    assert_one_line_error(main(["evaluate", "no-such-run", f"tracking.uri={uri}"]), capsys.readouterr().err, "no-such-run")
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    (unfinished / "run.json").write_text(json.dumps({**record(folder), "status": "RUNNING"}))
    assert_one_line_error(main(["evaluate", str(unfinished)]), capsys.readouterr().err, "not a finished run")

"""Runs that cannot be results: test data reaching training, diverged training (finite or not), non-finite
weights, constant scores; and the tags that say what a run was (git state, threads, plugins, completeness)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from bench import guards, provenance, runner
from bench.cli import main
from bench.compose import compose_run
from bench.errors import BenchError
from bench.records import Sample
from bench.tracking import search_runs
from cli_tools import SMALL, assert_one_line_error, record, run_folders


def _s(video: str, split: str, label: int = 1, source: str | None = None, dataset: str = "celebdf_v2") -> Sample:
    return Sample(dataset, split, "real" if label == 0 else "Celeb-synthesis", label, f"{dataset}/{video}", 0,
                  path=f"/x/{video}.jpg", source=source)


def test_leakage_guard_refuses_test_videos_and_their_source_clips_in_train_or_val():
    test = {"CDF": [_s("real/id0_0000", "test", 0, "id0_0000"), _s("fake/id1_id0_0001", "test", 1, "id1_0001")]}
    clean_train = [_s("real/id5_0000", "train", 0, "id5_0000"), _s("fake/id5_id6_0000", "train", 1, "id5_0000")]
    guards.check_leakage(clean_train, [], test)  # no overlap: no error

    with pytest.raises(BenchError, match=r"1 test video\(s\) are in the training set \(celebdf_v2/real/id0_0000\)"):
        guards.check_leakage([*clean_train, _s("real/id0_0000", "train", 0, "id0_0000")], [], test)
    # Celeb-DF's case: a fake made from a real clip on the official test list trains while that clip tests
    with pytest.raises(BenchError, match=r"validation videos are made from the source clips of 1 test video\(s\) "
                                         r"\(celebdf_v2:id0_0000\)"):
        guards.check_leakage(clean_train, [_s("fake/id0_id2_0000", "val", 1, "id0_0000")], test)
    # the same source name in another dataset is another clip
    guards.check_leakage([_s("fake/id0_id2_0000", "train", 1, "id0_0000", dataset="celebdf_v1")], [], test)


@pytest.mark.parametrize("override, where", [("protocol.train.split=test", "training"),
                                             ("protocol.val.split=test", "validation")])
def test_training_or_selecting_on_the_test_split_is_refused(override, where, tmp_path, capsys):
    code = main(["run", *SMALL, override, "tracking.enabled=false", f"paths.output={tmp_path}"])
    assert_one_line_error(code, capsys.readouterr().err, f"test video(s) are in the {where} set", "protocol")
    assert not run_folders(tmp_path)


def test_protocol_val_can_be_overridden_from_the_command_line():
    assert compose_run([]).protocol.val.split == "val"  # default: the training spec on split "val"
    cfg = compose_run(["protocol.val={dataset: synthetic, split: val, domains: [blend]}"])
    assert cfg.protocol.val.domains == ["blend"] and cfg.protocol.val.real
    assert compose_run(["protocol.val.domains=[warp]"]).protocol.val.domains == ["warp"]
    assert compose_run(["protocol.train.domains=[warp]"]).protocol.val.domains == ["warp"]  # follows train by default


def test_health_judges_divergence_and_constant_scores():
    assert guards.training_health(0.69, 0.4)[0] == guards.OK
    assert guards.training_health(0.69, 50.0)[0] == guards.OK  # bad, but not orders of magnitude
    assert guards.training_health(0.69, 7.7e9)[0] == guards.DIVERGED
    assert guards.training_health(0.69, float("nan"))[0] == guards.DIVERGED
    assert guards.training_health(None, None)[0] == guards.OK
    health, reason = guards.scores_health({"a": np.array([0.1, 0.9]), "b": np.full(5, 0.5)})
    assert health == guards.CONSTANT_SCORES and "b" in reason and "a" not in reason.split("set(s)")[1]


def test_a_finite_divergence_is_a_failed_run_marked_diverged(tmp_path, monkeypatch, mlflow_uri, capsys):
    monkeypatch.chdir(tmp_path)
    code = main(["run", *SMALL, "trainer.epochs=2", "trainer.lr=1e6", f"tracking.uri={mlflow_uri}", f"paths.output={tmp_path}"])
    assert_one_line_error(code, capsys.readouterr().err, "training diverged", "trainer.lr")
    run = search_runs(mlflow_uri, ["demo"]).iloc[0]
    assert run["status"] == "FAILED" and run["tags.bench.health"] == "diverged"
    [folder] = run_folders(tmp_path)
    assert record(folder)["status"] == "FAILED" and (folder / "results.json").is_file()  # kept for diagnosis


def test_non_finite_weights_after_an_epochs_last_step_are_one_line(tmp_path, monkeypatch, capsys):
    real = runner.train_one_epoch

    def poison_last_step(model, *args, **kwargs):
        stats = real(model, *args, **kwargs)
        with torch.no_grad():
            next(model.parameters()).fill_(float("nan"))  # as an optimiser step after a finite last loss can
        return stats

    monkeypatch.setattr(runner, "train_one_epoch", poison_last_step)
    code = main(["run", *SMALL, "trainer.epochs=1", "tracking.enabled=false", f"paths.output={tmp_path}"])
    assert_one_line_error(code, capsys.readouterr().err, "weights became non-finite after epoch 1's last step")
    [folder] = run_folders(tmp_path)
    assert record(folder)["status"] == "FAILED" and record(folder)["tags"]["bench.health"] == "diverged"


def test_runs_record_what_changes_their_results(tmp_path, monkeypatch, mlflow_uri):
    monkeypatch.chdir(tmp_path)
    assert main(["run", *SMALL, "trainer.epochs=1", "trainer.max_steps_per_epoch=2", f"tracking.uri={mlflow_uri}"]) == 0
    run = search_runs(mlflow_uri, ["demo"]).iloc[0]
    assert run["tags.bench.run_kind"] == "train" and run["tags.bench.health"] == "ok"
    assert run["tags.bench.complete"] == "false"  # a smoke run (max steps per epoch) is not a result
    assert run["tags.bench.torch_threads"] == str(torch.get_num_threads())
    assert run["tags.bench.python"].count(".") == 2 and "tags.bench.plugins" in run
    sha, dirty = provenance.git_state()
    assert run["tags.bench.git_commit"] == sha and "+" not in sha and run["tags.bench.git_dirty"] == str(dirty).lower()
    assert float(run["tags.bench.heartbeat"]) > 0 and run["tags.bench.run_dir"].endswith(run["tags.bench.local_id"])


def test_untracked_source_files_make_the_tree_dirty(tmp_path):
    git = ["git", "-c", "user.email=t@t", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q", str(tmp_path)], check=True)
    (tmp_path / "a.py").write_text("x = 1\n")
    (tmp_path / ".gitignore").write_text("outputs/\n")
    subprocess.run([*git, "add", "-A"], cwd=tmp_path, check=True)
    subprocess.run([*git, "commit", "-qm", "init"], cwd=tmp_path, check=True)
    assert provenance.git_state(tmp_path)[1] is False
    (tmp_path / "outputs").mkdir()
    (tmp_path / "outputs" / "run.py").write_text("ignored\n")
    (tmp_path / "notes.txt").write_text("not source\n")
    assert provenance.git_state(tmp_path)[1] is False  # ignored files and non-source files do not count
    (tmp_path / "new_detector.py").write_text("y = 2\n")
    assert provenance.git_state(tmp_path) == (provenance.git_state(tmp_path)[0], True)


def test_the_preflight_and_the_run_record_import_neither_torch_nor_mlflow():
    """The CLI checks a run's config before importing the runner: that must stay fast."""
    code = ("import sys, bench.preflight, bench.rundir, bench.guards\n"
            "from bench.plugins import get_plugins\n"
            "[get_plugins().datasets.get(e.name) for e in get_plugins().datasets.entries()]\n"
            "print(sorted(m for m in ('torch', 'mlflow') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"

"""Runs through the CLI that exercise tracking details: per-loss logging, FAILED runs, ablation sweeps as tables."""

from __future__ import annotations

from bench import runner
from bench.cli import main
from bench.tracking import search_runs

SMALL = [
    "datasets.synthetic.fake_videos.train=6", "datasets.synthetic.fake_videos.val=3", "datasets.synthetic.fake_videos.test=4",
    "datasets.synthetic.real_videos.train=12", "datasets.synthetic.real_videos.val=6", "datasets.synthetic.real_videos.test=8",
    "trainer.epochs=1", "trainer.bootstrap=50", "trainer.progress=false", "trainer.log_every=1",
]


def test_moa_clip_demo_run_logs_every_loss_term_and_phase(tmp_path, monkeypatch, mlflow_uri):
    monkeypatch.chdir(tmp_path)
    assert main(["run", "detector=moa_clip", *SMALL, "trainer.batch_size=16", f"tracking.uri={mlflow_uri}"]) == 0
    run = search_runs(mlflow_uri, ["demo"]).iloc[0]
    for phase in ("adapters", "router"):  # each phase logged at its own cadence, so both show up
        for term in ("cls", "att", "cac", "sim"):
            assert run[f"metrics.train/{phase}/loss_{term}"] >= 0
    assert run["metrics.epoch/phase_steps_adapters"] > 0 and run["metrics.epoch/phase_steps_router"] > 0
    assert run["params.trainer.sampler"] == "domain_balanced"  # from MoA-CLIP's recipe, not the runner


def test_ablation_sweep_renders_as_a_table(tmp_path, monkeypatch, mlflow_uri, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["run", "-m", "detector=moa_clip", "detector.ablate=none,cac", *SMALL, "trainer.batch_size=16",
                 f"tracking.uri={mlflow_uri}"]) == 0
    runs = search_runs(mlflow_uri, ["demo"])
    assert sorted(runs["params.detector.ablate"]) == ["cac", "none"]
    capsys.readouterr()
    assert main(["leaderboard", "--table", "ablation_losses", "--experiment", "demo", "--uri", mlflow_uri,
                 "--include-dirty"]) == 0  # the test may run from a modified work tree
    table = capsys.readouterr().out
    for _, run in runs.iterrows():
        assert f"{run['metrics.blend/auc']:.3f}" in table


def test_a_crashing_run_is_marked_failed(tmp_path, monkeypatch, mlflow_uri, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("BENCH_DEBUG", raising=False)

    def boom(*args, **kwargs):
        raise RuntimeError("simulated crash in the training loop")

    monkeypatch.setattr(runner, "train_one_epoch", boom)
    assert main(["run", *SMALL, f"tracking.uri={mlflow_uri}"]) == 1  # one line, no traceback (BENCH_DEBUG=1 shows it)
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("bench: error: unexpected RuntimeError: simulated crash") and "Traceback" not in "".join(err)
    runs = search_runs(mlflow_uri, ["demo"])
    assert list(runs["status"]) == ["FAILED"]
    assert "simulated crash" in runs.loc[0, "tags.bench.error"]

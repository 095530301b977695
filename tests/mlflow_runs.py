"""Runs logged straight into an MLflow store the way `bench run` / `bench evaluate` record them (docs/run-record.md):
params = the flattened config that `bench run <overrides>` composes, the bench.* tags, `<test set>/<metric>`
metrics, and optionally a run folder with predictions.parquet. For leaderboard and compare tests: seconds, no
training."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from omegaconf import OmegaConf

from bench.compose import compose_run
from bench.tracking import MAX_PARAM_CHARS, flatten

T0 = 1_700_000_000_000  # ms; runs get explicit, increasing start times
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def config_params(overrides: list[str]) -> tuple[dict[str, str], dict[str, str]]:
    """(flattened params as MLflow stores them, the run's main tags) for `bench run <overrides>`."""
    cfg = compose_run(overrides)
    params = {k: str(v)[:MAX_PARAM_CHARS] for k, v in flatten(OmegaConf.to_container(cfg, resolve=True)).items()}
    complete = params["trainer.max_steps_per_epoch"] == "null"
    tags = {"bench.run_kind": "train", "bench.detector": cfg.detector.name, "bench.protocol": cfg.protocol.name,
            "bench.protocol_version": str(cfg.protocol.version), "bench.scale": cfg.meta.scale,
            "bench.git_commit": COMMIT, "bench.git_dirty": "false", "bench.health": "ok",
            "bench.complete": str(complete).lower(), "bench.heartbeat": str(T0 / 1000)}
    return params, tags


def log_run(client, overrides: list[str], metrics: dict[str, float], *, minute: int, status: str = "FINISHED",
            tags: dict[str, str | None] | None = None, params: dict[str, str] | None = None,
            predictions: pd.DataFrame | None = None, run_dir: Path | None = None) -> str:
    """Log one run; `tags` / `params` override (a None tag is removed: runs from before the tag existed).
    `predictions` are written to `run_dir`/predictions.parquet and the run's bench.run_dir points there."""
    from mlflow.entities import Metric, Param, RunTag

    base_params, base_tags = config_params(overrides)
    all_params = {**base_params, **(params or {})}
    all_tags = {**base_tags, "mlflow.runName": f"{base_tags['bench.detector']}-{minute}", **(tags or {})}
    if run_dir is not None:
        run_dir.mkdir(parents=True, exist_ok=True)
        all_tags["bench.run_dir"] = str(run_dir)
        if predictions is not None:
            predictions.to_parquet(run_dir / "predictions.parquet", index=False)
    experiment = all_tags["bench.protocol"]
    exp = client.get_experiment_by_name(experiment)
    exp_id = exp.experiment_id if exp else client.create_experiment(experiment)
    run = client.create_run(exp_id, start_time=T0 + 60_000 * minute,
                            tags={k: v for k, v in all_tags.items() if v is not None})
    items = list(all_params.items())
    for i in range(0, len(items), 100):  # MLflow takes at most 100 params per batch
        client.log_batch(run.info.run_id, params=[Param(k, v) for k, v in items[i:i + 100]])
    client.log_batch(run.info.run_id, metrics=[Metric(k, float(v), T0, 0) for k, v in metrics.items()],
                     tags=[RunTag("bench.local_id", f"run-{minute}")])
    if status != "RUNNING":
        client.set_terminated(run.info.run_id, status=status)
    return run.info.run_id


def synthetic_predictions(test_sets: dict[str, float], seed: int, n_videos: int = 40, frames: int = 4,
                          shared_seed: int = 0) -> tuple[pd.DataFrame, dict[str, float]]:
    """Per-frame predictions on fixed test videos (the same keys and labels for every `seed`), a detector whose
    separation on each test set is `test_sets[name]`; plus the frame AUCs as metrics `<test set>/auc`."""
    from sklearn.metrics import roc_auc_score

    frames_out, metrics = [], {}
    for i, (name, shift) in enumerate(test_sets.items()):
        truth = np.random.default_rng(shared_seed + i)
        labels = np.repeat(truth.integers(0, 2, n_videos), frames)
        labels[:frames], labels[frames:2 * frames] = 0, 1
        video_effect = np.repeat(truth.normal(0, 0.7, n_videos), frames)  # shared by every detector: paired
        noise = np.random.default_rng(1000 * seed + i).normal(0, 1, labels.size)
        scores = 1 / (1 + np.exp(-(shift * labels + video_effect + noise - shift / 2)))
        videos = [f"{name}/v{v:03d}" for v in np.repeat(np.arange(n_videos), frames)]
        frames_out.append(pd.DataFrame({"test_set": name, "key": [f"{v}#{k % frames}" for k, v in enumerate(videos)],
                                        "video": videos, "domain": "x", "label": labels, "score": scores}))
        metrics[f"{name}/auc"] = float(roc_auc_score(labels, scores))
    return pd.concat(frames_out, ignore_index=True), metrics

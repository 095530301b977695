"""MLflow tracking. The only module that imports mlflow (lazily: the import costs over a second).

One experiment per protocol; params = the flattened resolved config; metrics `<test set>/<metric>`; artifacts:
resolved config, per-frame predictions (parquet), ROC curves (PNG). A run that raises is ended as FAILED.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.config import TrackingConfig

MAX_BATCH = 100  # MLflow accepts at most 100 params per batch call
MAX_PARAM_CHARS = 6000


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"a": {"b": 1}, "c": [1, 2]} -> {"a.b": 1, "c": "[1, 2]"}; None becomes "null"."""
    out: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, name + "."))
        else:
            out[name] = "null" if value is None else (str(value) if isinstance(value, (list, tuple)) else value)
    return out


def _mlflow():
    import mlflow

    return mlflow


class Tracker:
    """Context manager around one MLflow run (a no-op when tracking is disabled)."""

    def __init__(self, cfg: TrackingConfig, experiment: str, run_name: str) -> None:
        self.cfg = cfg
        self.experiment = cfg.experiment or experiment
        self.run_name = cfg.run_name or run_name
        self.run_id: str | None = None

    @property
    def enabled(self) -> bool:
        return self.cfg.enabled

    def __enter__(self) -> Tracker:
        if self.enabled:
            mlflow = _mlflow()
            mlflow.set_tracking_uri(self.cfg.uri)
            mlflow.set_experiment(self.experiment)
            self.run_id = mlflow.start_run(run_name=self.run_name).info.run_id
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if self.enabled and self.run_id is not None:
            status = "FINISHED" if exc_type is None else "FAILED"
            if exc is not None:
                self.set_tags({"bench.error": f"{type(exc).__name__}: {exc}"[:5000]})
            _mlflow().end_run(status=status)

    # ---- logging ---------------------------------------------------------------------------------------
    def log_params(self, params: Mapping[str, Any]) -> None:
        if not self.enabled:
            return
        mlflow = _mlflow()
        items = [(k, str(v)[:MAX_PARAM_CHARS]) for k, v in params.items()]
        for i in range(0, len(items), MAX_BATCH):
            mlflow.log_params(dict(items[i:i + MAX_BATCH]))

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        if self.enabled:
            _mlflow().set_tags({k: str(v) for k, v in tags.items()})

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        if self.enabled:
            clean = {k: float(v) for k, v in metrics.items() if v is not None and np.isfinite(v)}
            _mlflow().log_metrics(clean, step=step)

    def log_text(self, text: str, name: str) -> None:
        if self.enabled:
            _mlflow().log_text(text, name)

    def log_file(self, path: Path, folder: str | None = None) -> None:
        if self.enabled:
            _mlflow().log_artifact(str(path), artifact_path=folder)

    def log_predictions(self, frame: pd.DataFrame, name: str = "predictions.parquet") -> None:
        if self.enabled and self.cfg.log_predictions:
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / name
                frame.to_parquet(path, index=False)
                self.log_file(path)

    def log_roc(self, curves: Mapping[str, tuple[np.ndarray, np.ndarray]], name: str = "roc.png") -> None:
        """curves: test-set name -> (labels, scores). One figure with a frame-level ROC curve per test set."""
        if not self.enabled:
            return
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from sklearn.metrics import roc_auc_score, roc_curve

        fig, ax = plt.subplots(figsize=(5, 5))
        for test_name, (labels, scores) in curves.items():
            fpr, tpr, _ = roc_curve(labels, scores)
            ax.plot(fpr, tpr, label=f"{test_name} (AUC {roc_auc_score(labels, scores):.3f})")
        ax.plot([0, 1], [0, 1], "k:", lw=0.8)
        ax.set(xlabel="false positive rate", ylabel="true positive rate", title=f"{self.experiment}: {self.run_name}")
        ax.legend(loc="lower right", fontsize=8)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / name
            fig.savefig(path, dpi=120, bbox_inches="tight")
            plt.close(fig)
            self.log_file(path)


def search_runs(uri: str, experiments: list[str]) -> pd.DataFrame:
    """All runs of the named experiments (missing experiments are skipped) as MLflow's pandas frame."""
    mlflow = _mlflow()
    mlflow.set_tracking_uri(uri)
    names = [e for e in experiments if mlflow.get_experiment_by_name(e) is not None]
    if not names:
        return pd.DataFrame()
    return mlflow.search_runs(experiment_names=names, output_format="pandas")


def find_runs(uri: str, run_id: str) -> pd.DataFrame:
    """Runs of any experiment whose id is `run_id` or starts with it (the short ids tables print)."""
    mlflow = _mlflow()
    mlflow.set_tracking_uri(uri)
    runs = mlflow.search_runs(search_all_experiments=True, output_format="pandas")
    return runs[runs["run_id"].str.startswith(run_id)] if len(runs) else runs


def download_artifact(uri: str, run_id: str, path: str, dst: Path) -> Path | None:
    """A run's artifact copied under `dst`; None when the run has no such artifact."""
    import os

    mlflow = _mlflow()
    bar = os.environ.get("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR")
    os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"  # one bar per file would flood a leaderboard
    try:
        return Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=path, dst_path=str(dst),
                                                        tracking_uri=uri))
    except Exception:  # MLflow raises several types (missing file, missing run, store errors): all mean "absent"
        return None
    finally:
        if bar is None:
            os.environ.pop("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR")
        else:
            os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = bar

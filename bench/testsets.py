"""Evaluating a model on a run's test sets, and the files that record it: predictions.parquet, results.json,
results.md and roc.png in the run folder (written before MLflow sees any of it). Used by `bench run` and
`bench evaluate`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tabulate import tabulate

from bench import metrics
from bench.config import RunConfig
from bench.data import FrameDataset, make_loader
from bench.distributed import world
from bench.engine import predict
from bench.records import Predictions, Sample
from bench.rundir import RunLog, write_atomic

UNREADABLE = "unreadable_images"  # per test set: frames left out because their file could not be read


def evaluate_set(name: str, model, samples: list[Sample], c: RunConfig, device, bf16: bool,
                 perturb: Callable[[np.ndarray], np.ndarray] | None = None) -> tuple[dict[str, float], pd.DataFrame] | None:
    """Metrics of one test set (plus `unreadable_images` when data.on_bad_image=skip) and its per-frame predictions.
    `perturb` (uint8 frame -> uint8 frame) runs before the detector's transform, on real and fake frames alike.
    None on ranks > 0 of a data-parallel run, after their share of the predictions."""
    transform = model.eval_transform()
    if perturb is not None:
        transform = lambda image, t=transform: t(perturb(image))  # noqa: E731
    loader = make_loader(FrameDataset(samples, transform), batch_size=c.trainer.eval_batch_size, train=False,
                         num_workers=c.trainer.num_workers, device_stage=True)
    model.evaluation_stats()  # drop what earlier predictions (validation, other test sets) gathered
    out = predict(model, loader, device=device, bf16=bf16, progress=c.trainer.progress, desc=f"test {name}",
                  on_bad_image=c.data.on_bad_image, channels_last=c.trainer.channels_last)
    stats = model.evaluation_stats()  # the detector's own, e.g. MoA-CLIP's route weights (rank 0's share under DDP)
    if not world().main:  # a data-parallel run: rank 0 has every rank's scores and records them
        return None
    kept = [s for s, read in zip(samples, out.read) if read]
    preds = Predictions(keys=[s.key for s in kept], videos=[s.video for s in kept], domains=[s.domain for s in kept],
                        labels=np.array([s.label for s in kept]), scores=out.scores[out.read])
    result = metrics.evaluate(preds, bootstrap=c.trainer.bootstrap, seed=c.trainer.seed).as_dict()
    if c.data.on_bad_image == "skip":
        result[UNREADABLE] = int((~out.read).sum())
    result.update(stats)
    frame = pd.DataFrame({"test_set": name, "key": preds.keys, "video": preds.videos, "domain": preds.domains,
                          "label": preds.labels, "score": preds.scores})
    return result, frame


def evaluate_all(model, tests: Mapping[str, list[Sample]], c: RunConfig, device, bf16: bool, log: RunLog,
                 perturb: Callable[[np.ndarray], np.ndarray] | None = None) -> tuple[dict[str, dict[str, float]], pd.DataFrame]:
    """Every test set: `<test set>/<metric>` logged as each finishes, then the result files. Returns (metrics per
    test set, all predictions)."""
    results, frames = {}, []
    for name, samples in tests.items():
        evaluated = evaluate_set(name, model, samples, c, device, bf16, perturb)
        if evaluated is None:
            continue
        results[name], frame = evaluated
        frames.append(frame)
        log.metrics({f"{name}/{k}": v for k, v in results[name].items()})
    if not frames:  # ranks > 0 of a data-parallel run
        return results, pd.DataFrame()
    predictions = pd.concat(frames, ignore_index=True)
    write_results(log.folder.path, results, predictions, title=log.record.tags.get("mlflow.runName", ""))
    print(results_table(results))
    return results, predictions


def write_results(folder: Path, results: Mapping[str, Mapping[str, float]], predictions: pd.DataFrame, title: str) -> None:
    predictions.to_parquet(folder / "predictions.parquet", index=False)
    write_atomic(folder / "results.json", json.dumps(results, indent=1))
    write_atomic(folder / "results.md", results_table(results, fmt="github") + "\n")
    save_roc(folder / "roc.png", {n: (f["label"].to_numpy(), f["score"].to_numpy())
                                  for n, f in predictions.groupby("test_set", sort=False)}, title)


def results_table(results: Mapping[str, Mapping[str, Any]], fmt: str = "simple") -> str:
    skipped = any(m.get(UNREADABLE) for m in results.values())
    rows = []
    for name, m in results.items():
        rows.append([name, f"{m['auc']:.3f} [{m['auc_ci_low']:.3f}, {m['auc_ci_high']:.3f}]", f"{m['video_auc']:.3f}",
                     f"{m['ap']:.3f}", f"{m['eer']:.3f}", f"{m['acc']:.3f}", int(m["n_frames"]), int(m["n_videos"]),
                     *([int(m.get(UNREADABLE, 0))] if skipped else [])])
    headers = ["test set", "AUC [95% CI]", "video AUC", "AP", "EER", "ACC@0.5", "frames", "videos",
               *(["unreadable (skipped)"] if skipped else [])]
    return tabulate(rows, headers=headers, tablefmt=fmt)


def save_roc(path: Path, curves: Mapping[str, tuple[np.ndarray, np.ndarray]], title: str) -> None:
    """One figure with a frame-level ROC curve per test set; curves: name -> (labels, scores)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import roc_auc_score, roc_curve

    fig, ax = plt.subplots(figsize=(5, 5))
    for name, (labels, scores) in curves.items():
        fpr, tpr, _ = roc_curve(labels, scores)
        ax.plot(fpr, tpr, label=f"{name} (AUC {roc_auc_score(labels, scores):.3f})")
    ax.plot([0, 1], [0, 1], "k:", lw=0.8)
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title=title)
    ax.legend(loc="lower right", fontsize=8)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)

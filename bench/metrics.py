"""Detection metrics: pure functions over numpy arrays, scikit-learn underneath.

Scores are probabilities of "fake" (label 1). Every test set is scored at frame level and at video level
(video score = mean frame probability per video key), with AUC, AP, EER, accuracy at a fixed threshold and a
bootstrap 95% percentile interval for AUC.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

if TYPE_CHECKING:
    from bench.records import Predictions

_BOOTSTRAP_CHUNK = 64  # resamples scored at once; bounds memory at ~chunk x n_unique_scores floats


@dataclass(frozen=True)
class BinaryMetrics:
    auc: float
    ap: float
    eer: float
    acc: float
    auc_ci_low: float  # NaN when the bootstrap is off
    auc_ci_high: float
    n: int
    n_real: int
    n_fake: int


@dataclass(frozen=True)
class TestSetMetrics:
    """Frame- and video-level metrics of one test set."""

    frame: BinaryMetrics
    video: BinaryMetrics

    def as_dict(self) -> dict[str, float]:
        """Flat names the tracker logs as `<test set>/<name>`: auc, ..., n_frames, video_auc, ..., n_videos."""
        out: dict[str, float] = {}
        for prefix, m, count in (("", self.frame, "n_frames"), ("video_", self.video, "n_videos")):
            values = asdict(m)
            for name in ("auc", "ap", "eer", "acc", "auc_ci_low", "auc_ci_high"):
                out[prefix + name] = float(values[name])
            out[count] = float(m.n)
        return out


def _check(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    labels = np.asarray(labels).astype(np.int64, copy=False).ravel()
    scores = np.asarray(scores, dtype=np.float64).ravel()
    if labels.shape != scores.shape:
        raise ValueError(f"labels and scores differ in length: {labels.size} vs {scores.size}")
    if not np.isin(labels, (0, 1)).all():
        raise ValueError("labels must be 0 (real) or 1 (fake)")
    if not np.isfinite(scores).all():
        raise ValueError(f"{int((~np.isfinite(scores)).sum())} scores are NaN or infinite")
    n_fake = int(labels.sum())
    if n_fake in (0, labels.size):
        only = "fake (label 1)" if n_fake else "real (label 0)"
        raise ValueError(f"AUC is undefined: all {labels.size} samples are {only}; a test set needs both classes")
    return labels, scores


def equal_error_rate(labels: np.ndarray, scores: np.ndarray) -> float:
    """The error rate where FPR = FNR (= 1 - TPR), linearly interpolated between the two ROC points around it."""
    fpr, tpr, _ = roc_curve(labels, scores)
    gap = fpr - (1.0 - tpr)  # rises from -1 at (0, 0) to +1 at (1, 1)
    i = int(np.argmax(gap >= 0))  # first ROC point at or past the crossing; i >= 1 since gap[0] = -1
    t = gap[i - 1] / (gap[i - 1] - gap[i])
    return float(fpr[i - 1] + t * (fpr[i] - fpr[i - 1]))


def bootstrap_auc(labels: np.ndarray, scores: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """AUCs of `n` stratified bootstrap resamples, shape (n,).

    Real and fake samples are resampled separately with replacement (pROC's default "stratified" bootstrap),
    so every resample keeps both classes and the class balance of the test set. Each resample's AUC is the
    Mann-Whitney statistic computed from per-score-value counts, so one resample costs O(#samples), not a sort.
    """
    labels, scores = _check(labels, scores)
    uniq, inverse = np.unique(scores, return_inverse=True)  # ties share a bin and count 1/2, as in roc_auc_score
    u = uniq.size
    pos, neg = inverse[labels == 1], inverse[labels == 0]
    rng = np.random.default_rng(seed)
    aucs = np.empty(n)
    for start in range(0, n, _BOOTSTRAP_CHUNK):
        b = min(_BOOTSTRAP_CHUNK, n - start)
        offset = (np.arange(b) * u)[:, None]  # (b, 1): one histogram per resample in a flat bincount
        counts = []
        for cls in (pos, neg):
            draw = cls[rng.integers(0, cls.size, size=(b, cls.size))]  # (b, n_cls) score-bin of each draw
            counts.append(np.bincount((draw + offset).ravel(), minlength=b * u).reshape(b, u))
        w_pos, w_neg = counts  # (b, u) each
        neg_below = np.cumsum(w_neg, axis=1) - w_neg  # (b, u) negatives scored strictly lower
        wins = (w_pos * (neg_below + 0.5 * w_neg)).sum(axis=1)  # (b,)
        aucs[start:start + b] = wins / (pos.size * neg.size)
    return aucs


def binary_metrics(
    labels: np.ndarray, scores: np.ndarray, *, threshold: float = 0.5, bootstrap: int = 1000, seed: int = 0
) -> BinaryMetrics:
    """AUC, AP, EER, accuracy (fake iff score > threshold, as argmax of two logits) and the AUC's 95% CI.

    Raises ValueError when only one class is present (AUC undefined). `bootstrap=0` turns the CI off (NaN).
    """
    labels, scores = _check(labels, scores)
    if bootstrap > 0:
        low, high = np.percentile(bootstrap_auc(labels, scores, bootstrap, seed), [2.5, 97.5])
    else:
        low = high = float("nan")
    n_fake = int(labels.sum())
    return BinaryMetrics(
        auc=float(roc_auc_score(labels, scores)),
        ap=float(average_precision_score(labels, scores)),
        eer=equal_error_rate(labels, scores),
        acc=float(((scores > threshold).astype(np.int64) == labels).mean()),
        auc_ci_low=float(low),
        auc_ci_high=float(high),
        n=int(labels.size),
        n_real=int(labels.size - n_fake),
        n_fake=n_fake,
    )


def video_scores(
    videos: list[str] | np.ndarray, labels: np.ndarray, scores: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean frame probability per video key -> (video ids, video labels, video scores), sorted by video id.

    Raises ValueError when the frames of one video disagree on the label (a key collision across datasets or
    manipulations, which would silently mix real and fake frames).
    """
    if not len(videos) == len(labels) == len(scores):
        raise ValueError(f"videos, labels and scores differ in length: {len(videos)}, {len(labels)}, {len(scores)}")
    frame = pd.DataFrame({"video": np.asarray(videos), "label": np.asarray(labels), "score": np.asarray(scores)})
    per_video = frame.groupby("video", sort=True).agg(
        label=("label", "first"), n_labels=("label", "nunique"), score=("score", "mean")
    )
    conflicts = per_video.index[per_video["n_labels"] > 1]
    if len(conflicts):
        shown = ", ".join(map(str, conflicts[:5]))
        raise ValueError(f"{len(conflicts)} video key(s) hold both real and fake frames (e.g. {shown}); "
                         "video keys must be unique across datasets and manipulations")
    return (per_video.index.to_numpy(), per_video["label"].to_numpy(np.int64), per_video["score"].to_numpy(np.float64))


def evaluate(predictions: Predictions, bootstrap: int = 1000, seed: int = 0) -> TestSetMetrics:
    """Frame-level and video-level metrics of one test set's predictions."""
    frame = binary_metrics(predictions.labels, predictions.scores, bootstrap=bootstrap, seed=seed)
    _, v_labels, v_scores = video_scores(predictions.videos, predictions.labels, predictions.scores)
    video = binary_metrics(v_labels, v_scores, bootstrap=bootstrap, seed=seed)
    return TestSetMetrics(frame=frame, video=video)

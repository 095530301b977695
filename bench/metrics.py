"""Detection metrics: pure functions over numpy arrays, scikit-learn underneath.

Scores are probabilities of "fake" (label 1). Every test set is scored at frame level and at video level
(video score = mean frame probability per video key), with AUC, AP, EER, accuracy at a fixed threshold,
calibration (ECE, TPR at a fixed FPR) and a bootstrap 95% interval for AUC. The frame-level interval resamples
whole videos (`bench.stats`): frames of one video are correlated, so resampling frames alone is too narrow.

Every public function validates its input (labels exactly 0/1, finite scores, resample counts >= 0) and raises
`InvalidInput` — a ValueError that the CLI prints as one line — instead of truncating or dropping anything.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

from bench.errors import BenchError

if TYPE_CHECKING:
    from bench.records import Predictions

ECE_BINS = 15  # equal-width probability bins, as in Guo et al. 2017 ("On calibration of modern neural networks")
FPR_POINTS = {"tpr_at_fpr_1pct": 0.01, "tpr_at_fpr_5pct": 0.05}


class InvalidInput(BenchError, ValueError):
    """Malformed metric input: labels other than 0/1, non-finite scores, misaligned arrays, bad keys."""


@dataclass(frozen=True)
class BinaryMetrics:
    auc: float
    ap: float
    eer: float
    acc: float
    auc_ci_low: float  # NaN when the bootstrap is off
    auc_ci_high: float
    ece: float  # NaN when a score lies outside [0, 1] (not a probability)
    tpr_at_fpr_1pct: float
    tpr_at_fpr_5pct: float
    n: int
    n_real: int
    n_fake: int


METRIC_NAMES = ("auc", "ap", "eer", "acc", "auc_ci_low", "auc_ci_high", "ece", *FPR_POINTS)


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
            out.update({prefix + name: float(values[name]) for name in METRIC_NAMES})
            out[count] = float(m.n)
        return out


# ---- validation ------------------------------------------------------------------------------------------------


def _numeric(values: object, message: str) -> np.ndarray:
    """`values` as a numeric array; an object array is accepted when it holds numbers only (no strings)."""
    arr = np.asarray(values)
    if arr.dtype.kind == "O" and not any(isinstance(v, (str, bytes)) for v in arr.flat):
        try:
            arr = arr.astype(np.float64)
        except (TypeError, ValueError):
            pass
    if arr.dtype.kind not in "biuf":
        raise InvalidInput(f"{message}, got {arr.dtype} values")
    return arr


def check_labels(labels: object) -> np.ndarray:
    """Labels as int64 (N,); exactly 0 or 1 (bool accepted), never rounded: 0.5 or 1.5 is an error."""
    arr = _numeric(labels, "labels must be numbers 0 (real) or 1 (fake)").ravel()
    bad = ~np.isin(arr, (0, 1))  # NaN is not in it either
    if bad.any():
        shown = ", ".join(map(str, pd.unique(arr[bad])[:5]))
        raise InvalidInput(f"labels must be exactly 0 (real) or 1 (fake); found {int(bad.sum())} other value(s): {shown}")
    return arr.astype(np.int64)


def check_scores(scores: object) -> np.ndarray:
    """Scores as float64: (N,) or (R, N) for R runs scored on the same samples; all finite."""
    arr = _numeric(scores, "scores must be numbers").astype(np.float64)
    if arr.ndim not in (1, 2):
        raise InvalidInput(f"scores must be one row per sample (or one row per run), got shape {arr.shape}")
    bad = ~np.isfinite(arr)
    if bad.any():
        raise InvalidInput(f"{int(bad.sum())} score(s) are NaN or infinite")
    return arr


def check_binary(labels: object, scores: object) -> tuple[np.ndarray, np.ndarray]:
    """Validated (labels (N,), scores (N,) or (R, N)) with both classes present (AUC is undefined otherwise)."""
    labels, scores = check_labels(labels), check_scores(scores)
    if scores.shape[-1] != labels.size:
        raise InvalidInput(f"labels and scores differ in length: {labels.size} vs {scores.shape[-1]}")
    n_fake = int(labels.sum())
    if n_fake in (0, labels.size):
        only = "fake (label 1)" if n_fake else "real (label 0)"
        raise InvalidInput(f"AUC is undefined: all {labels.size} samples are {only}; a test set needs both classes")
    return labels, scores


def check_resamples(n: object) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise InvalidInput(f"the number of bootstrap resamples must be an integer >= 0, got {n!r}", key="trainer.bootstrap")
    return int(n)


def check_keys(keys: object, what: str = "video keys") -> np.ndarray:
    """Group keys (N,) with no None / NaN / empty key (such a frame would silently join or leave a group)."""
    arr = np.asarray(keys, dtype=object).ravel()
    missing = pd.isna(arr) | (arr == "")
    if missing.any():
        raise InvalidInput(f"{int(missing.sum())} of {arr.size} {what} are missing (None, NaN or empty)")
    return arr


# ---- point metrics ---------------------------------------------------------------------------------------------


def equal_error_rate(labels: np.ndarray, scores: np.ndarray) -> float:
    """The error rate where FPR = FNR (= 1 - TPR), linearly interpolated between the two ROC points around it."""
    labels, scores = check_binary(labels, scores)
    fpr, tpr, _ = roc_curve(labels, scores)
    gap = fpr - (1.0 - tpr)  # rises from -1 at (0, 0) to +1 at (1, 1)
    i = int(np.argmax(gap >= 0))  # first ROC point at or past the crossing; i >= 1 since gap[0] = -1
    t = gap[i - 1] / (gap[i - 1] - gap[i])
    return float(fpr[i - 1] + t * (fpr[i] - fpr[i - 1]))


def tpr_at_fpr(labels: np.ndarray, scores: np.ndarray, max_fpr: float) -> float:
    """The highest TPR of any threshold whose FPR is at most `max_fpr` (an operating point one can actually set:
    no interpolation between ROC points)."""
    if not 0.0 <= max_fpr <= 1.0:
        raise InvalidInput(f"max_fpr must lie in [0, 1], got {max_fpr!r}")
    labels, scores = check_binary(labels, scores)
    fpr, tpr, _ = roc_curve(labels, scores, drop_intermediate=False)
    return float(tpr[fpr <= max_fpr].max())  # the ROC starts at (0, 0), so the set is never empty


def expected_calibration_error(labels: np.ndarray, scores: np.ndarray, bins: int = ECE_BINS) -> float:
    """ECE of the probability of "fake": Σ_b (n_b / N) |fraction of fakes in b - mean score in b| over `bins`
    equal-width bins of [0, 1] (a score of exactly 1 falls in the last bin). NaN when a score is not a probability.
    """
    if isinstance(bins, bool) or not isinstance(bins, (int, np.integer)) or bins < 1:
        raise InvalidInput(f"the number of calibration bins must be an integer >= 1, got {bins!r}")
    labels, scores = check_labels(labels), check_scores(scores)
    if labels.size != scores.size or scores.ndim != 1:
        raise InvalidInput(f"labels and scores differ in length: {labels.size} vs {scores.size}")
    if labels.size == 0 or scores.min() < 0.0 or scores.max() > 1.0:
        return float("nan")
    b = np.minimum((scores * bins).astype(np.int64), bins - 1)  # (N,) bin of each score
    gap = np.bincount(b, weights=labels - scores, minlength=bins)  # per bin: Σ (label - score)
    return float(np.abs(gap).sum() / labels.size)  # Σ_b n_b/N |mean(label) - mean(score)| = Σ_b |Σ(label - score)|/N


def binary_metrics(
    labels: np.ndarray, scores: np.ndarray, *, threshold: float = 0.5, bootstrap: int = 1000, seed: int = 0,
    groups: np.ndarray | None = None,
) -> BinaryMetrics:
    """AUC, AP, EER, accuracy (fake iff score > threshold, as argmax of two logits), calibration and the AUC's
    95% bootstrap interval — resampling `groups` (e.g. videos) with all their samples when given.

    Raises InvalidInput when only one class is present (AUC undefined). `bootstrap=0` turns the CI off (NaN).
    """
    from bench.stats import auc_interval

    labels, scores = check_binary(labels, scores)
    if scores.ndim != 1:
        raise InvalidInput(f"binary_metrics scores one run: expected shape ({labels.size},), got {scores.shape}")
    bootstrap = check_resamples(bootstrap)
    low, high = auc_interval(labels, scores, bootstrap, seed=seed, groups=groups) if bootstrap else (np.nan, np.nan)
    n_fake = int(labels.sum())
    return BinaryMetrics(
        auc=float(roc_auc_score(labels, scores)),
        ap=float(average_precision_score(labels, scores)),
        eer=equal_error_rate(labels, scores),
        acc=float(((scores > threshold).astype(np.int64) == labels).mean()),
        auc_ci_low=float(low),
        auc_ci_high=float(high),
        ece=expected_calibration_error(labels, scores),
        **{name: tpr_at_fpr(labels, scores, fpr) for name, fpr in FPR_POINTS.items()},
        n=int(labels.size),
        n_real=int(labels.size - n_fake),
        n_fake=n_fake,
    )


def video_scores(
    videos: list[str] | np.ndarray, labels: np.ndarray, scores: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean frame probability per video key -> (video ids, video labels, video scores), sorted by video id.

    Raises InvalidInput on a missing key or score, and when the frames of one video disagree on the label (a key
    collision across datasets or manipulations, which would silently mix real and fake frames).
    """
    if not len(videos) == len(labels) == len(scores):
        raise InvalidInput(f"videos, labels and scores differ in length: {len(videos)}, {len(labels)}, {len(scores)}")
    frame = pd.DataFrame({"video": check_keys(videos), "label": check_labels(labels), "score": check_scores(scores)})
    per_video = frame.groupby("video", sort=True).agg(
        label=("label", "first"), n_labels=("label", "nunique"), score=("score", "mean")
    )
    conflicts = per_video.index[per_video["n_labels"] > 1]
    if len(conflicts):
        shown = ", ".join(map(str, conflicts[:5]))
        raise InvalidInput(f"{len(conflicts)} video key(s) hold both real and fake frames (e.g. {shown}); "
                           "video keys must be unique across datasets and manipulations")
    return (per_video.index.to_numpy(), per_video["label"].to_numpy(np.int64), per_video["score"].to_numpy(np.float64))


def evaluate(predictions: Predictions, bootstrap: int = 1000, seed: int = 0) -> TestSetMetrics:
    """Frame-level and video-level metrics of one test set's predictions.

    Both intervals resample videos (stratified by label): at frame level each drawn video brings all its frames.
    """
    videos = check_keys(predictions.videos)
    frame = binary_metrics(predictions.labels, predictions.scores, bootstrap=bootstrap, seed=seed, groups=videos)
    _, v_labels, v_scores = video_scores(videos, predictions.labels, predictions.scores)
    video = binary_metrics(v_labels, v_scores, bootstrap=bootstrap, seed=seed)
    return TestSetMetrics(frame=frame, video=video)

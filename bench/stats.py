"""Uncertainty of AUCs: (cluster) bootstrap intervals, DeLong's test and a paired bootstrap for two detectors.

- `bootstrap_auc` resamples clusters (videos) with replacement within each class and keeps all frames of every
  drawn video; with no clusters each sample is its own. Each resample is a weighted Mann-Whitney statistic over the
  scores' sorted distinct values, so memory is O(N) whatever the number of resamples, and one resample costs O(N).
  Several runs scored on the same samples (paired) share every resample.
- `delong` is DeLong, DeLong & Clarke-Pearson (1988), "Comparing the areas under two or more correlated receiver
  operating characteristic curves: a nonparametric approach", Biometrics 44(3), computed with the O(N log N)
  midrank algorithm of Sun & Xu (2014), "Fast implementation of DeLong's algorithm ...", IEEE SPL 21(11).
  It treats samples as independent: right for videos, optimistic for frames of multi-frame videos.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from bench.metrics import InvalidInput, check_binary, check_keys, check_resamples


@dataclass(frozen=True)
class PairedAUC:
    """AUC of A and of B on the same samples, their difference A - B, its interval and two-sided p-value."""

    test: str  # "delong" | "bootstrap"
    auc_a: float
    auc_b: float
    delta: float
    ci_low: float
    ci_high: float
    p_value: float
    n: int  # independent units: samples for DeLong, clusters (videos) for the bootstrap
    resamples: int = 0  # bootstrap only


# ---- bootstrap -------------------------------------------------------------------------------------------------


def _clusters(labels: np.ndarray, groups: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(cluster of each sample (N,), real clusters, fake clusters); a cluster must hold one label only."""
    if groups is None:
        codes = np.arange(labels.size)
    else:
        groups = check_keys(groups, "cluster (video) keys")
        if groups.size != labels.size:
            raise InvalidInput(f"groups and labels differ in length: {groups.size} vs {labels.size}")
        codes, _ = pd.factorize(groups)
    n_clusters = int(codes.max()) + 1
    fakes = np.bincount(codes, weights=labels, minlength=n_clusters)
    sizes = np.bincount(codes, minlength=n_clusters)
    mixed = (fakes > 0) & (fakes < sizes)
    if mixed.any():
        raise InvalidInput(f"{int(mixed.sum())} video(s) hold both real and fake frames; a video must have one label")
    is_fake = fakes > 0
    return codes, np.flatnonzero(~is_fake), np.flatnonzero(is_fake)


def bootstrap_auc(
    labels: np.ndarray, scores: np.ndarray, n: int, seed: int = 0, groups: np.ndarray | None = None
) -> np.ndarray:
    """AUCs of `n` stratified bootstrap resamples: shape (n,) for scores (N,), (n, R) for scores (R, N).

    Real and fake clusters (`groups`, e.g. video keys; default: every sample alone) are resampled separately with
    replacement (pROC's "stratified" bootstrap), so every resample keeps both classes and the class balance. A drawn
    cluster brings all its samples. Ties count 1/2, as in roc_auc_score.
    """
    labels, scores = check_binary(labels, scores)
    n = check_resamples(n)
    paired = scores.ndim == 2
    scores = scores if paired else scores[None, :]  # (R, N)
    codes, real, fake = _clusters(labels, groups)
    is_pos = labels == 1
    pos_cluster, neg_cluster = codes[is_pos], codes[~is_pos]  # (N+,), (N-,) cluster of each sample
    bins = []  # per run: (distinct-score bin of each positive, of each negative, number of bins)
    for row in scores:
        uniq, inverse = np.unique(row, return_inverse=True)
        bins.append((inverse[is_pos], inverse[~is_pos], uniq.size))
    rng = np.random.default_rng(seed)
    weight = np.zeros(codes.max() + 1)  # draws of each cluster in the current resample
    out = np.empty((n, len(bins)))
    for b in range(n):
        for members in (real, fake):
            weight[members] = np.bincount(rng.integers(0, members.size, members.size), minlength=members.size)
        w_pos, w_neg = weight[pos_cluster], weight[neg_cluster]  # (N+,), (N-,) weight of each sample
        total = w_pos.sum() * w_neg.sum()
        for r, (pos_bin, neg_bin, u) in enumerate(bins):
            h_pos = np.bincount(pos_bin, weights=w_pos, minlength=u)  # (u,) positive weight per distinct score
            h_neg = np.bincount(neg_bin, weights=w_neg, minlength=u)
            neg_below = np.cumsum(h_neg) - h_neg  # negative weight strictly below each score
            out[b, r] = (h_pos * (neg_below + 0.5 * h_neg)).sum() / total
    return out if paired else out[:, 0]


def auc_interval(labels: np.ndarray, scores: np.ndarray, n: int, seed: int = 0, groups: np.ndarray | None = None,
                 level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of the AUC (`bootstrap_auc` with the same arguments)."""
    tail = 50 * (1 - level)
    low, high = np.percentile(bootstrap_auc(labels, scores, n, seed, groups), [tail, 100 - tail])
    return float(low), float(high)


def bootstrap_p(deltas: np.ndarray) -> float:
    """Two-sided percentile-bootstrap p-value of "difference = 0": the smallest α whose (1 - α) interval excludes 0."""
    if deltas.size == 0:
        return float("nan")
    return float(min(1.0, 2 * min((deltas <= 0).mean(), (deltas >= 0).mean())))


def paired_deltas(labels: np.ndarray, scores_a: np.ndarray, scores_b: np.ndarray, n: int = 1000, seed: int = 0,
                  groups: np.ndarray | None = None) -> tuple[float, float, np.ndarray]:
    """(mean AUC of A's runs, of B's runs, and the bootstrap differences (n,)) from `n` shared (cluster) resamples.

    `scores_a`, `scores_b`: (N,) for one run each, or (R_a, N), (R_b, N) for several runs (seeds) each; then the
    difference is that of the mean AUC over A's runs and over B's runs, every run seeing the same resample.
    """
    a, b = np.atleast_2d(scores_a), np.atleast_2d(scores_b)
    if a.shape[1] != b.shape[1]:
        raise InvalidInput(f"A and B are scored on different numbers of samples: {a.shape[1]} vs {b.shape[1]}")
    labels, both = check_binary(labels, np.vstack([a, b]))
    aucs = bootstrap_auc(labels, both, n, seed, groups)  # (n, R_a + R_b)
    deltas = aucs[:, :len(a)].mean(axis=1) - aucs[:, len(a):].mean(axis=1)
    auc_a, auc_b = (float(np.mean([roc_auc_score(labels, row) for row in m])) for m in (a, b))
    return auc_a, auc_b, deltas


def paired_bootstrap(labels: np.ndarray, scores_a: np.ndarray, scores_b: np.ndarray, n: int = 1000, seed: int = 0,
                     groups: np.ndarray | None = None, level: float = 0.95) -> PairedAUC:
    """Δ = AUC(A) - AUC(B) on the same samples (means over runs, see `paired_deltas`); its percentile interval and
    two-sided p-value from `n` shared (cluster) resamples."""
    auc_a, auc_b, deltas = paired_deltas(labels, scores_a, scores_b, n, seed, groups)
    low, high = delta_interval(deltas, level)
    n_units = len(pd.unique(check_keys(groups))) if groups is not None else len(np.asarray(labels))
    return PairedAUC(test="bootstrap", auc_a=auc_a, auc_b=auc_b, delta=auc_a - auc_b, ci_low=low, ci_high=high,
                     p_value=bootstrap_p(deltas), n=n_units, resamples=n)


def delta_interval(deltas: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    if deltas.size == 0:
        return float("nan"), float("nan")
    tail = 50 * (1 - level)
    low, high = np.percentile(deltas, [tail, 100 - tail])
    return float(low), float(high)


# ---- DeLong ----------------------------------------------------------------------------------------------------


def midranks(x: np.ndarray) -> np.ndarray:
    """Ranks 1..N of `x` (N,), tied values sharing the mean of their ranks."""
    _, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)  # rank of the last member of each distinct value
    return (ends - (counts - 1) / 2.0)[inverse]


def delong_covariance(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """AUCs (R,) and DeLong's covariance matrix of them (R, R) for scores (R, N) (or (N,): R = 1) on the same samples.

    Sun & Xu's midrank form of DeLong's structural components: with m positives and n negatives,
    V10_i = (Tz_i - Tx_i) / n for positive i and V01_j = 1 - (Tz_j - Ty_j) / m for negative j, where Tz, Tx, Ty are
    midranks among all samples, among positives and among negatives; S = cov(V10) / m + cov(V01) / n.
    """
    labels, scores = check_binary(labels, scores)
    scores = np.atleast_2d(scores)  # (R, N)
    pos, neg = scores[:, labels == 1], scores[:, labels == 0]  # (R, m), (R, n)
    m, n = pos.shape[1], neg.shape[1]
    v10, v01 = np.empty_like(pos), np.empty_like(neg)
    for r in range(scores.shape[0]):
        tz = midranks(scores[r])
        v10[r] = (tz[labels == 1] - midranks(pos[r])) / n
        v01[r] = 1.0 - (tz[labels == 0] - midranks(neg[r])) / m
    aucs = v10.mean(axis=1)
    s10 = np.atleast_2d(np.cov(v10)) if m > 1 else np.zeros((len(scores), len(scores)))
    s01 = np.atleast_2d(np.cov(v01)) if n > 1 else np.zeros((len(scores), len(scores)))
    return aucs, s10 / m + s01 / n


def delong(labels: np.ndarray, scores_a: np.ndarray, scores_b: np.ndarray, level: float = 0.95) -> PairedAUC:
    """DeLong's test of AUC(A) = AUC(B) for two detectors scored on the same samples: Δ, its normal-theory
    interval Δ ± z·se and the two-sided p-value of z = Δ / se."""
    a, b = np.asarray(scores_a), np.asarray(scores_b)
    if a.ndim != 1 or a.shape != b.shape:
        raise InvalidInput(f"DeLong compares one run with one run on the same samples; got shapes {a.shape}, {b.shape}")
    aucs, cov = delong_covariance(labels, np.vstack([a, b]))
    delta = float(aucs[0] - aucs[1])
    var = float(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1])
    if var <= 1e-15:  # identical rankings (or both perfect): no spread to test against
        low = high = delta
        p = 1.0 if abs(delta) < 1e-12 else 0.0
    else:
        se = math.sqrt(var)
        z = NormalDist().inv_cdf(0.5 + level / 2)
        low, high = delta - z * se, delta + z * se
        p = math.erfc(abs(delta) / se / math.sqrt(2))  # 2 * (1 - Φ(|Δ| / se))
    return PairedAUC(test="delong", auc_a=float(aucs[0]), auc_b=float(aucs[1]), delta=delta, ci_low=float(low),
                     ci_high=float(high), p_value=float(p), n=int(np.asarray(labels).size))

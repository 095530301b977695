"""bench.stats against independent brute-force computations: naive bootstrap loops, DeLong's structural components
by double loops, the two-sample jackknife, and Hanley & McNeil's published worked example."""

from __future__ import annotations

import time
import tracemalloc

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from bench.metrics import InvalidInput
from bench.stats import auc_interval, bootstrap_auc, delong, delong_covariance, midranks, paired_bootstrap


def _separable(n: int, shift: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    return labels, 1 / (1 + np.exp(-rng.normal(shift * labels - shift / 2, 1.0)))


def _videos(n_videos: int, frames: int, seed: int, video_sd: float = 1.0):
    """Frames of `n_videos` videos sharing a per-video offset (correlated within a video): videos, labels, scores."""
    rng = np.random.default_rng(seed)
    video_label = rng.integers(0, 2, n_videos)
    video_effect = rng.normal(0, video_sd, n_videos)
    v = np.repeat(np.arange(n_videos), frames)
    scores = video_label[v] * 1.0 + video_effect[v] + rng.normal(0, 1, v.size)
    return np.array([f"ds/{i}" for i in v], dtype=object), video_label[v], scores


def _pairwise_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """AUC by its definition: the fraction of (fake, real) pairs ranked right, ties counting 1/2."""
    pos, neg = scores[labels == 1][:, None], scores[labels == 0][None, :]
    return float(((pos > neg) + 0.5 * (pos == neg)).mean())


# ---- bootstrap -------------------------------------------------------------------------------------------------


def test_bootstrap_matches_a_naive_stratified_bootstrap() -> None:
    labels, scores = _separable(300, 1.0, seed=2)
    scores = np.round(scores, 2)  # ties, which count 1/2 in the Mann-Whitney statistic
    fast = bootstrap_auc(labels, scores, 1000, seed=0)
    rng = np.random.default_rng(1)
    pos, neg = np.flatnonzero(labels == 1), np.flatnonzero(labels == 0)
    naive = []
    for _ in range(1000):
        idx = np.r_[rng.choice(pos, pos.size), rng.choice(neg, neg.size)]
        naive.append(_pairwise_auc(labels[idx], scores[idx]))
    assert fast.mean() == pytest.approx(np.mean(naive), abs=0.004)
    assert fast.std() == pytest.approx(np.std(naive), rel=0.1)
    assert np.percentile(fast, [2.5, 97.5]) == pytest.approx(np.percentile(naive, [2.5, 97.5]), abs=0.012)


def test_cluster_bootstrap_matches_a_naive_video_bootstrap() -> None:
    videos, labels, scores = _videos(60, 8, seed=3)
    fast = bootstrap_auc(labels, scores, 1000, seed=0, groups=videos)
    rng = np.random.default_rng(1)
    keys = np.unique(videos)
    label_of = {k: labels[videos == k][0] for k in keys}
    real, fake = [k for k in keys if label_of[k] == 0], [k for k in keys if label_of[k] == 1]
    rows = {k: np.flatnonzero(videos == k) for k in keys}
    naive = []
    for _ in range(1000):  # draw whole videos within each class; concatenate their frames
        drawn = [*rng.choice(real, len(real)), *rng.choice(fake, len(fake))]
        idx = np.concatenate([rows[k] for k in drawn])
        naive.append(_pairwise_auc(labels[idx], scores[idx]))
    assert fast.mean() == pytest.approx(np.mean(naive), abs=0.006)
    assert fast.std() == pytest.approx(np.std(naive), rel=0.1)
    assert np.percentile(fast, [2.5, 97.5]) == pytest.approx(np.percentile(naive, [2.5, 97.5]), abs=0.015)


def test_one_frame_per_video_is_the_ordinary_bootstrap() -> None:
    labels, scores = _separable(200, 1.0, seed=4)
    keys = np.array([f"v{i}" for i in range(200)], dtype=object)
    assert np.array_equal(bootstrap_auc(labels, scores, 300, seed=5, groups=keys),
                          bootstrap_auc(labels, scores, 300, seed=5))


def test_video_bootstrap_is_wider_than_frame_bootstrap_for_correlated_frames() -> None:
    videos, labels, scores = _videos(80, 16, seed=6)
    frame_low, frame_high = auc_interval(labels, scores, 1000)
    video_low, video_high = auc_interval(labels, scores, 1000, groups=videos)
    assert video_low < roc_auc_score(labels, scores) < video_high
    assert (video_high - video_low) > 1.5 * (frame_high - frame_low)


def test_a_video_with_both_labels_is_refused() -> None:
    with pytest.raises(InvalidInput, match="1 video.*both real and fake"):
        bootstrap_auc([0, 1, 0, 1], [0.1, 0.9, 0.2, 0.8], 10, groups=["a", "a", "b", "c"])
    with pytest.raises(InvalidInput, match="missing"):
        bootstrap_auc([0, 1, 0, 1], [0.1, 0.9, 0.2, 0.8], 10, groups=["a", None, "b", "c"])


def test_bootstrap_is_fast_seeded_and_its_memory_does_not_grow_with_resamples() -> None:
    labels, scores = _separable(10_000, 1.0, seed=3)
    start = time.perf_counter()
    a = bootstrap_auc(labels, scores, 1000, seed=7)
    assert time.perf_counter() - start < 10.0  # ~1 s on one loaded core
    assert np.array_equal(a, bootstrap_auc(labels, scores, 1000, seed=7))

    labels, scores = _separable(200_000, 1.0, seed=3)
    peaks = []
    for n in (5, 50):
        tracemalloc.start()
        bootstrap_auc(labels, scores, n)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    assert peaks[1] < 1.2 * peaks[0]  # O(N): ten times the resamples, the same memory
    assert peaks[1] < 40 * 8 * labels.size  # a few dozen float64 per sample at most


def test_paired_bootstrap_shares_resamples() -> None:
    labels, scores = _separable(400, 1.0, seed=8)
    rng = np.random.default_rng(9)
    b = scores + rng.normal(0, 0.05, scores.size)  # nearly the same detector
    same = paired_bootstrap(labels, scores, scores, 500)
    assert (same.delta, same.ci_low, same.ci_high, same.p_value) == (0.0, 0.0, 0.0, 1.0)
    close = paired_bootstrap(labels, scores, b, 500)
    low, high = auc_interval(labels, scores, 500)
    assert close.ci_high - close.ci_low < (high - low) / 3  # pairing cancels the shared test-set noise
    assert close.delta == pytest.approx(roc_auc_score(labels, scores) - roc_auc_score(labels, b))
    # several runs per side: Δ of the mean AUCs
    multi = paired_bootstrap(labels, np.vstack([scores, b]), scores, 200)
    assert multi.delta == pytest.approx(np.mean([roc_auc_score(labels, s) for s in (scores, b)])
                                        - roc_auc_score(labels, scores))


# ---- DeLong ----------------------------------------------------------------------------------------------------


def _psi(x: float, y: float) -> float:
    return 1.0 if x > y else 0.5 if x == y else 0.0


def _delong_by_double_loops(labels, scores):
    """DeLong et al. (1988) eq. for the structural components, literally: V10(X_i) = mean_j ψ(X_i, Y_j), etc."""
    pos, neg = scores[:, labels == 1], scores[:, labels == 0]
    m, n = pos.shape[1], neg.shape[1]
    v10 = np.array([[np.mean([_psi(pos[r, i], neg[r, j]) for j in range(n)]) for i in range(m)] for r in range(len(scores))])
    v01 = np.array([[np.mean([_psi(pos[r, i], neg[r, j]) for i in range(m)]) for j in range(n)] for r in range(len(scores))])
    s10 = (v10 - v10.mean(1, keepdims=True)) @ (v10 - v10.mean(1, keepdims=True)).T / (m - 1)
    s01 = (v01 - v01.mean(1, keepdims=True)) @ (v01 - v01.mean(1, keepdims=True)).T / (n - 1)
    return v10.mean(1), s10 / m + s01 / n


def test_midranks() -> None:
    assert midranks(np.array([3.0, 1.0, 3.0, 2.0, 3.0])).tolist() == [4.0, 1.0, 4.0, 2.0, 4.0]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_delong_matches_its_definition_by_double_loops(seed: int) -> None:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, 40)
    labels[:2] = [0, 1]
    scores = np.round(rng.normal(labels, 1.0, size=(3, 40)), 1)  # three detectors, with ties
    aucs, cov = delong_covariance(labels, scores)
    want_aucs, want_cov = _delong_by_double_loops(labels, scores)
    assert aucs == pytest.approx(want_aucs, abs=1e-12)
    assert aucs == pytest.approx([roc_auc_score(labels, s) for s in scores], abs=1e-12)
    assert cov == pytest.approx(want_cov, abs=1e-12)


def test_delong_covariance_is_the_two_sample_jackknife() -> None:
    # Deleting one positive i moves the AUC by -(V10_i - mean V10)/(m - 1), so the jackknife variance
    # (m-1)/m Σ (θ_(i) - θ̄)² equals cov(V10)/m exactly; likewise for negatives. Computed here with roc_auc_score.
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 2, 60)
    scores = np.round(rng.normal(labels, 1.0, size=(2, 60)), 1)
    jack = np.zeros((2, 2))
    for cls in (0, 1):
        idx = np.flatnonzero(labels == cls)
        theta = np.array([[roc_auc_score(np.delete(labels, i), np.delete(s, i)) for i in idx] for s in scores])
        centred = theta - theta.mean(axis=1, keepdims=True)
        jack += (idx.size - 1) / idx.size * centred @ centred.T
    assert delong_covariance(labels, scores)[1] == pytest.approx(jack, abs=1e-12)


def test_hanley_mcneil_ct_example() -> None:
    # Hanley & McNeil (1982), Radiology 143:29-36, Table 1: CT ratings 1 (definitely normal) .. 5 of 58 normal and
    # 51 abnormal patients; published area 0.893 (Wilcoxon) with standard error 0.032 (their approximation).
    normal, abnormal = [33, 6, 6, 11, 2], [3, 2, 2, 11, 33]
    ratings = np.arange(1, 6)
    labels = np.r_[np.zeros(sum(normal)), np.ones(sum(abnormal))]
    scores = np.r_[np.repeat(ratings, normal), np.repeat(ratings, abnormal)]
    aucs, cov = delong_covariance(labels, scores)
    assert round(float(aucs[0]), 3) == 0.893
    assert np.sqrt(cov[0, 0]) == pytest.approx(0.032, abs=0.002)  # DeLong's estimate, 0.0307, beside theirs


def test_delong_test_agrees_with_the_paired_bootstrap() -> None:
    labels, a = _separable(600, 1.2, seed=10)
    b = a + np.random.default_rng(11).normal(0, 0.3, a.size)
    d, bs = delong(labels, a, b), paired_bootstrap(labels, a, b, 2000)
    assert d.delta == pytest.approx(bs.delta) and d.delta > 0
    assert d.ci_low == pytest.approx(bs.ci_low, abs=0.01) and d.ci_high == pytest.approx(bs.ci_high, abs=0.01)
    assert d.p_value < 0.05 and bs.p_value < 0.05


def test_delong_p_values_are_calibrated_under_the_null() -> None:
    # Two detectors equal in law on the same samples: about 5% of tests reject at α = 0.05.
    rng = np.random.default_rng(12)
    rejections = 0
    for _ in range(400):
        labels = rng.integers(0, 2, 150)
        shared = rng.normal(labels * 0.8, 1.0)
        rejections += delong(labels, shared + rng.normal(0, 1, 150), shared + rng.normal(0, 1, 150)).p_value < 0.05
    assert 8 <= rejections <= 36  # 20 expected; binomial(400, 0.05) lies in [8, 36] with probability > 0.999


def test_delong_degenerate_and_malformed() -> None:
    labels = np.array([0, 0, 1, 1])
    same = delong(labels, [0.1, 0.2, 0.8, 0.9], [0.1, 0.2, 0.8, 0.9])
    assert (same.delta, same.p_value) == (0.0, 1.0)
    with pytest.raises(InvalidInput, match="same samples"):
        delong(labels, [0.1, 0.2, 0.8, 0.9], [0.1, 0.2, 0.8])
    with pytest.raises(InvalidInput, match="exactly 0"):
        delong([0, 0, 1, 0.5], [0.1, 0.2, 0.8, 0.9], [0.1, 0.2, 0.8, 0.9])

"""bench.metrics against hand-computed cases and against a naive scikit-learn bootstrap."""

from __future__ import annotations

import time

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from bench.metrics import binary_metrics, bootstrap_auc, equal_error_rate, evaluate, video_scores
from bench.records import Predictions


def _separable(n: int, shift: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    return labels, 1 / (1 + np.exp(-rng.normal(shift * labels - shift / 2, 1.0)))


def test_perfect_separation() -> None:
    m = binary_metrics([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9], bootstrap=200)
    assert (m.auc, m.ap, m.eer, m.acc) == (1.0, 1.0, 0.0, 1.0)
    assert m.auc_ci_low == m.auc_ci_high == 1.0  # every resample is separable too
    assert (m.n, m.n_real, m.n_fake) == (4, 2, 2)


def test_reversed_scores() -> None:
    m = binary_metrics([0, 0, 1, 1], [0.9, 0.8, 0.2, 0.1], bootstrap=0)
    assert (m.auc, m.eer, m.acc) == (0.0, 1.0, 0.0)
    assert np.isnan(m.auc_ci_low) and np.isnan(m.auc_ci_high)  # bootstrap off


def test_small_example_by_hand() -> None:
    # fakes 0.4, 0.8 vs reals 0.1, 0.6: 3 of the 4 (fake, real) pairs ranked right -> AUC 3/4.
    # Ranked 0.8(F) 0.6(R) 0.4(F) 0.1(R): precision 1/1 at recall 1/2, 2/3 at recall 1 -> AP = (1 + 2/3) / 2.
    # Threshold 0.5 predicts R F R F for R R F F -> 2 of 4 right. ROC passes through (FPR, TPR) = (0.5, 0.5): EER 0.5.
    m = binary_metrics([0, 0, 1, 1], [0.1, 0.6, 0.4, 0.8], bootstrap=0)
    assert m.auc == pytest.approx(0.75)
    assert m.ap == pytest.approx((1 + 2 / 3) / 2)
    assert m.acc == pytest.approx(0.5)
    assert m.eer == pytest.approx(0.5)


def test_eer_symmetric_case() -> None:
    # Fake scores mirror the real ones around 0.5, so FPR = FNR at threshold 0.5: one real of four above it.
    reals = np.array([0.1, 0.2, 0.3, 0.6])
    labels = np.r_[np.zeros(4), np.ones(4)]
    scores = np.r_[reals, 1 - reals]
    assert equal_error_rate(labels, scores) == pytest.approx(np.mean(reals > 0.5))


def test_eer_interpolates_between_roc_points() -> None:
    # A tie: the ROC is the diagonal from (0, 0) to (1, 1); FPR = 1 - TPR halfway.
    assert equal_error_rate(np.array([0, 1]), np.array([0.5, 0.5])) == pytest.approx(0.5)


def test_one_class_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="AUC is undefined.*real"):
        binary_metrics([0, 0, 0], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="length"):
        binary_metrics([0, 1], [0.1, 0.2, 0.3])


def test_ci_contains_estimate_and_narrows_with_more_data() -> None:
    small = binary_metrics(*_separable(200, 1.5, seed=0), bootstrap=500, seed=1)
    large = binary_metrics(*_separable(5000, 1.5, seed=0), bootstrap=500, seed=1)
    for m in (small, large):
        assert m.auc_ci_low < m.auc < m.auc_ci_high
    assert large.auc_ci_high - large.auc_ci_low < (small.auc_ci_high - small.auc_ci_low) / 2


def test_vectorised_bootstrap_matches_a_naive_stratified_bootstrap() -> None:
    labels, scores = _separable(300, 1.0, seed=2)
    scores = np.round(scores, 2)  # ties, which count 1/2 in the Mann-Whitney statistic
    fast = bootstrap_auc(labels, scores, 1000, seed=0)
    rng = np.random.default_rng(1)
    pos, neg = np.flatnonzero(labels == 1), np.flatnonzero(labels == 0)
    naive = []
    for _ in range(1000):
        idx = np.r_[rng.choice(pos, pos.size), rng.choice(neg, neg.size)]
        naive.append(roc_auc_score(labels[idx], scores[idx]))
    assert fast.mean() == pytest.approx(np.mean(naive), abs=0.004)
    assert fast.std() == pytest.approx(np.std(naive), rel=0.1)
    assert np.percentile(fast, [2.5, 97.5]) == pytest.approx(np.percentile(naive, [2.5, 97.5]), abs=0.012)


def test_bootstrap_is_fast_and_seeded() -> None:
    labels, scores = _separable(10_000, 1.0, seed=3)
    start = time.perf_counter()
    a = bootstrap_auc(labels, scores, 1000, seed=7)
    assert time.perf_counter() - start < 5.0  # ~0.2 s on one idle core
    assert np.array_equal(a, bootstrap_auc(labels, scores, 1000, seed=7))


def test_video_scores_are_the_mean_frame_probability() -> None:
    videos = ["ds/b", "ds/a", "ds/b", "ds/a", "ds/c"]
    labels = np.array([1, 0, 1, 0, 0])
    scores = np.array([0.9, 0.2, 0.5, 0.4, 0.3])
    ids, v_labels, v_scores = video_scores(videos, labels, scores)
    assert list(ids) == ["ds/a", "ds/b", "ds/c"]
    assert list(v_labels) == [0, 1, 0]
    expected = [scores[[v == key for v in videos]].mean() for key in ids]
    assert v_scores == pytest.approx(expected)


def test_video_label_conflict_raises() -> None:
    with pytest.raises(ValueError, match="both real and fake.*ffpp/000"):
        video_scores(["ffpp/000", "ffpp/000", "ffpp/001"], np.array([0, 1, 0]), np.array([0.1, 0.9, 0.2]))


def test_evaluate_frame_and_video_level() -> None:
    rng = np.random.default_rng(4)
    videos = [f"synthetic/{'fake' if v % 2 else 'real'}/{v}" for v in range(20) for _ in range(3)]
    labels = np.array([int("fake" in v) for v in videos])
    scores = np.clip(rng.normal(0.35 + 0.3 * labels, 0.2), 0, 1)
    preds = Predictions(keys=[f"{v}#{i % 3}" for i, v in enumerate(videos)], videos=videos,
                        domains=["x"] * len(videos), labels=labels, scores=scores)
    out = evaluate(preds, bootstrap=100, seed=0).as_dict()
    assert set(out) == {"auc", "ap", "eer", "acc", "auc_ci_low", "auc_ci_high", "n_frames",
                        "video_auc", "video_ap", "video_eer", "video_acc", "video_auc_ci_low", "video_auc_ci_high",
                        "n_videos"}
    assert out["auc"] == pytest.approx(roc_auc_score(labels, scores))
    _, v_labels, v_scores = video_scores(videos, labels, scores)
    assert out["video_auc"] == pytest.approx(roc_auc_score(v_labels, v_scores))
    assert (out["n_frames"], out["n_videos"]) == (60, 20)
    assert all(isinstance(v, float) for v in out.values())

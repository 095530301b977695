"""bench.metrics against hand-computed cases; input validation at every public entry point."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from bench.metrics import (InvalidInput, binary_metrics, equal_error_rate, evaluate, expected_calibration_error,
                           tpr_at_fpr, video_scores)
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
    names = {"auc", "ap", "eer", "acc", "auc_ci_low", "auc_ci_high", "ece", "tpr_at_fpr_1pct", "tpr_at_fpr_5pct"}
    assert set(out) == names | {f"video_{n}" for n in names} | {"n_frames", "n_videos"}
    assert out["auc"] == pytest.approx(roc_auc_score(labels, scores))
    _, v_labels, v_scores = video_scores(videos, labels, scores)
    assert out["video_auc"] == pytest.approx(roc_auc_score(v_labels, v_scores))
    assert (out["n_frames"], out["n_videos"]) == (60, 20)
    assert all(isinstance(v, float) for v in out.values())


def test_expected_calibration_error_by_hand() -> None:
    # 15 bins of width 1/15. Bin of 0.1 (bin 1): labels 0, 1 -> fake fraction 0.5 vs mean score 0.1: gap 0.4, weight 2/4.
    # Bin of 0.9 (bin 13): labels 1, 1 -> 1.0 vs 0.9: gap 0.1, weight 2/4.  ECE = 0.5 * 0.4 + 0.5 * 0.1 = 0.25.
    assert expected_calibration_error([0, 1, 1, 1], [0.1, 0.1, 0.9, 0.9]) == pytest.approx(0.25)
    assert expected_calibration_error([0, 1], [0.0, 1.0]) == 0.0  # 1.0 falls in the last bin, not past it
    assert np.isnan(expected_calibration_error([0, 1], [-0.5, 3.0]))  # not probabilities


def test_perfectly_calibrated_scores_have_small_ece() -> None:
    rng = np.random.default_rng(0)
    p = rng.uniform(0, 1, 200_000)
    labels = (rng.uniform(0, 1, p.size) < p).astype(int)  # P(fake | score p) = p
    assert expected_calibration_error(labels, p) < 0.01
    assert expected_calibration_error(labels, p ** 3) > 0.1  # the same ranking, badly calibrated


def test_tpr_at_fpr_takes_an_operating_point_one_can_set() -> None:
    # 100 reals at 0..0.99 and 10 fakes: 5 above every real, 5 between the 4th- and 5th-highest real.
    reals = np.arange(100) / 100
    fakes = np.r_[np.full(5, 2.0), np.full(5, 0.955)]
    labels, scores = np.r_[np.zeros(100), np.ones(10)], np.r_[reals, fakes]
    assert tpr_at_fpr(labels, scores, 0.01) == pytest.approx(0.5)  # FPR 0.04 would be needed for the other 5
    assert tpr_at_fpr(labels, scores, 0.05) == pytest.approx(1.0)
    m = binary_metrics(labels, scores, bootstrap=0)
    assert (m.tpr_at_fpr_1pct, m.tpr_at_fpr_5pct) == (0.5, 1.0)


@pytest.mark.parametrize("labels, match", [
    ([0, 0.5, 1, 1], "exactly 0 .* 1 other value.*0.5"),  # never truncated to 0
    ([0, 1, 1.5, 1], "1.5"),
    ([0, 1, 2, 1], "2"),
    ([0, 1, np.nan, 1], "nan"),
    (["0", "1", "1", "0"], "numbers"),
])
def test_labels_must_be_exactly_zero_or_one(labels, match) -> None:
    for call in (lambda: binary_metrics(labels, [0.1, 0.2, 0.3, 0.4], bootstrap=0),
                 lambda: equal_error_rate(np.array(labels, dtype=object), np.array([0.1, 0.2, 0.3, 0.4])),
                 lambda: video_scores(["a", "b", "c", "d"], labels, [0.1, 0.2, 0.3, 0.4])):
        with pytest.raises(InvalidInput, match=match):
            call()


def test_scores_must_be_finite_and_bootstrap_non_negative() -> None:
    for bad in (np.nan, np.inf, -np.inf):
        with pytest.raises(InvalidInput, match="1 score.*NaN or infinite"):
            binary_metrics([0, 1, 0, 1], [0.1, bad, 0.3, 0.4], bootstrap=0)
        with pytest.raises(InvalidInput, match="NaN or infinite"):
            video_scores(["a", "b", "c", "d"], [0, 1, 0, 1], [0.1, bad, 0.3, 0.4])
    for n in (-1, 2.5, True):
        with pytest.raises(InvalidInput, match="integer >= 0"):
            binary_metrics([0, 1, 0, 1], [0.1, 0.2, 0.3, 0.4], bootstrap=n)
    assert isinstance(InvalidInput("x"), ValueError)  # callers catching ValueError keep working
    with pytest.raises(InvalidInput, match="bins"):
        expected_calibration_error([0, 1], [0.2, 0.8], bins=0)
    with pytest.raises(InvalidInput, match=r"max_fpr must lie in \[0, 1\]"):
        tpr_at_fpr([0, 1], [0.2, 0.8], 5)


def test_video_scores_refuses_missing_keys() -> None:
    for key in (None, np.nan, ""):
        with pytest.raises(InvalidInput, match="1 of 3 video keys are missing"):
            video_scores(["a", key, "b"], [0, 1, 1], [0.1, 0.2, 0.3])

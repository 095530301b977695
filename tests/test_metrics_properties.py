"""Property-based tests (hypothesis) of the metric and resampling functions: what must hold for any input."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from bench.metrics import InvalidInput, binary_metrics, check_labels, expected_calibration_error, video_scores
from bench.stats import auc_interval, bootstrap_auc, delong_covariance

SETTINGS = settings(max_examples=40, deadline=None)
# Dyadic probabilities k / 2**20: exact in floating point, so 1 - s and the maps below keep every order and tie.
probability = st.integers(0, 2**20).map(lambda k: k / 2**20)


@st.composite
def scored(draw, min_per_class: int = 1, max_size: int = 60):
    """(labels, scores) with both classes present; scores in [0, 1], often tied."""
    n_real = draw(st.integers(min_per_class, max_size // 2))
    n_fake = draw(st.integers(min_per_class, max_size // 2))
    labels = np.array([0] * n_real + [1] * n_fake)
    coarse = draw(st.booleans())  # a few distinct values -> many ties
    values = st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.0]) if coarse else probability
    scores = np.array(draw(st.lists(values, min_size=labels.size, max_size=labels.size)))
    order = np.array(draw(st.permutations(range(labels.size))))
    return labels[order], scores[order]


@SETTINGS
@given(scored(), st.sampled_from(["exp", "affine", "cube", "logit"]))
def test_auc_is_invariant_under_strictly_increasing_maps(data, name) -> None:
    labels, scores = data
    f = {"exp": np.exp, "affine": lambda s: 3.0 * s - 7.0, "cube": lambda s: (s - 0.3) ** 3,
         "logit": lambda s: np.log((s + 0.01) / (1.01 - s))}[name]
    assume(np.unique(f(scores)).size == np.unique(scores).size)  # strictly increasing in floating point too
    before, after = binary_metrics(labels, scores, bootstrap=0), binary_metrics(labels, f(scores), bootstrap=0)
    assert after.auc == pytest.approx(before.auc, abs=1e-12)
    assert after.eer == pytest.approx(before.eer, abs=1e-12)
    assert np.array_equal(bootstrap_auc(labels, scores, 20), bootstrap_auc(labels, f(scores), 20))


@SETTINGS
@given(scored())
def test_reversing_scores_mirrors_the_auc(data) -> None:
    labels, scores = data
    auc = binary_metrics(labels, scores, bootstrap=0).auc
    assert binary_metrics(labels, 1.0 - scores, bootstrap=0).auc == pytest.approx(1.0 - auc, abs=1e-12)


@SETTINGS
@given(scored())
def test_every_metric_lies_in_its_range(data) -> None:
    labels, scores = data
    m = binary_metrics(labels, scores, bootstrap=30)
    for value in (m.auc, m.ap, m.eer, m.acc, m.ece, m.tpr_at_fpr_1pct, m.tpr_at_fpr_5pct, m.auc_ci_low, m.auc_ci_high):
        assert 0.0 <= value <= 1.0
    assert m.tpr_at_fpr_1pct <= m.tpr_at_fpr_5pct
    assert m.n == m.n_real + m.n_fake == labels.size


@SETTINGS
@given(scored(min_per_class=8))
def test_bootstrap_interval_contains_the_estimate(data) -> None:
    labels, scores = data
    assume(np.unique(scores).size > 2)  # non-degenerate: the AUC can move
    m = binary_metrics(labels, scores, bootstrap=300)
    assert m.auc_ci_low <= m.auc <= m.auc_ci_high


@SETTINGS
@given(scored(), st.integers(0, 3))
def test_one_frame_per_video_is_the_ordinary_bootstrap(data, seed) -> None:
    labels, scores = data
    keys = np.array([f"video{i}" for i in range(labels.size)], dtype=object)
    assert np.array_equal(bootstrap_auc(labels, scores, 25, seed, groups=keys), bootstrap_auc(labels, scores, 25, seed))


@SETTINGS
@given(scored(min_per_class=2), st.integers(1, 4))
def test_delong_covariance_is_positive_semidefinite(data, runs) -> None:
    labels, scores = data
    rng = np.random.default_rng(runs)
    all_scores = np.vstack([scores, *[np.round(rng.permutation(scores) * 4) / 4 for _ in range(runs - 1)]])
    _, cov = delong_covariance(labels, all_scores)
    assert np.all(np.diag(cov) >= 0)
    assert np.linalg.eigvalsh(cov).min() >= -1e-12
    if runs >= 2:
        assert cov[0, 0] + cov[1, 1] - 2 * cov[0, 1] >= -1e-12  # the variance of a difference


@SETTINGS
@given(scored(), st.integers(1, 5))
def test_video_scores_are_frame_order_invariant_means(data, frames) -> None:
    labels, scores = data
    videos = np.array([f"v{i // frames}-{label}" for i, label in enumerate(labels)], dtype=object)
    ids, v_labels, v_scores = video_scores(videos, labels, scores)
    order = np.random.default_rng(0).permutation(labels.size)
    ids2, v_labels2, v_scores2 = video_scores(videos[order], labels[order], scores[order])
    assert list(ids) == list(ids2) and np.array_equal(v_labels, v_labels2)
    assert v_scores == pytest.approx(v_scores2, abs=1e-12)
    for key, label, score in zip(ids, v_labels, v_scores):
        assert score == pytest.approx(scores[videos == key].mean()) and label == labels[videos == key][0]


@SETTINGS
@given(scored(), st.integers(2, 30))
def test_ece_is_bounded_and_zero_for_matching_frequencies(data, bins) -> None:
    labels, scores = data
    assert 0.0 <= expected_calibration_error(labels, scores, bins) <= 1.0
    assert expected_calibration_error(labels, labels.astype(float), bins) == 0.0  # confident and right


@SETTINGS
@given(st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=1, max_size=20))
def test_labels_are_never_rounded(values) -> None:
    arr = np.array(values)
    if np.isin(arr, (0.0, 1.0)).all():
        assert check_labels(arr).tolist() == [int(v) for v in values]
    else:
        with pytest.raises(InvalidInput):
            check_labels(arr)


@SETTINGS
@given(scored(min_per_class=3), st.integers(-50, -1))
def test_negative_resamples_are_refused(data, n) -> None:
    labels, scores = data
    with pytest.raises(InvalidInput, match=">= 0"):
        auc_interval(labels, scores, n)

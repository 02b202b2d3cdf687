"""Bootstrap CIs against known distributions and analytic standard errors."""

import numpy as np
import pytest

from qtts_bench.report.stats import Estimate, Sample, bootstrap, paired_delta, resample_indices, verdict

Z975 = 1.959963984540054


def test_mean_ci_matches_normal_theory():
    # N(2, 1), n = 400: the percentile CI should match mean ± z·s/√n (independent analytic reference).
    x = np.random.default_rng(1).normal(2.0, 1.0, 400)
    est = bootstrap(Sample(x), n_resamples=4000, seed=3)
    half = Z975 * x.std(ddof=1) / np.sqrt(x.size)
    assert est.value == pytest.approx(x.mean(), abs=1e-12)
    assert est.low == pytest.approx(x.mean() - half, abs=0.1 * half)
    assert est.high == pytest.approx(x.mean() + half, abs=0.1 * half)
    assert est.n == 400


def test_coverage_of_true_mean_is_near_nominal():
    # 400 data sets of n = 40 from N(0, 1): the 95 % CI should contain 0 about 95 % of the time.
    rng = np.random.default_rng(7)
    hits = 0
    trials = 400
    for t in range(trials):
        est = bootstrap(Sample(rng.normal(0.0, 1.0, 40)), n_resamples=1000, seed=t)
        hits += est.low <= 0.0 <= est.high
    coverage = hits / trials
    # percentile bootstrap slightly under-covers at n = 40 (≈ 0.93–0.94); binomial sd ≈ 0.011
    assert 0.90 <= coverage <= 0.98, coverage


def test_level_changes_width_like_normal_quantiles():
    x = np.random.default_rng(2).normal(0, 1, 500)
    wide = bootstrap(Sample(x), n_resamples=4000, level=0.95, seed=0)
    narrow = bootstrap(Sample(x), n_resamples=4000, level=0.50, seed=0)
    ratio = (narrow.high - narrow.low) / (wide.high - wide.low)
    assert ratio == pytest.approx(0.6744897501960817 / Z975, rel=0.1)


def test_ratio_ci_matches_delta_method():
    # corpus WER-like ratio: errors ~ Binomial(words, 0.1); delta-method SE of Σe/Σw.
    rng = np.random.default_rng(4)
    words = rng.integers(5, 30, 600).astype(float)
    errors = rng.binomial(words.astype(int), 0.1).astype(float)
    sample = Sample(errors / words, errors, words, 100.0)
    est = bootstrap(sample, n_resamples=4000, seed=5)
    r = errors.sum() / words.sum()
    se = np.sqrt(((errors - r * words) ** 2).sum()) / words.sum() * 100.0
    assert est.value == pytest.approx(100.0 * r, rel=1e-12)
    assert est.value != pytest.approx(100.0 * np.mean(errors / words), rel=1e-3)  # not the mean of ratios
    assert (est.high - est.low) / 2 == pytest.approx(Z975 * se, rel=0.1)


def test_paired_delta_is_mean_difference_and_tighter_than_unpaired():
    rng = np.random.default_rng(6)
    difficulty = rng.normal(0, 1.0, 300)  # shared per utterance
    a = 3.0 + difficulty + rng.normal(0, 0.1, 300)
    b = 3.05 + difficulty + rng.normal(0, 0.1, 300)
    delta = paired_delta(Sample(a), Sample(b), n_resamples=3000, seed=1)
    assert delta.value == pytest.approx(np.mean(b - a), abs=1e-12)
    half = Z975 * np.std(b - a, ddof=1) / np.sqrt(300)
    assert (delta.high - delta.low) / 2 == pytest.approx(half, rel=0.12)
    assert delta.excludes_zero and delta.low > 0
    unpaired_half = Z975 * np.sqrt(a.var(ddof=1) / 300 + b.var(ddof=1) / 300)
    assert (delta.high - delta.low) / 2 < unpaired_half / 5


def test_seeded_and_deterministic():
    x = np.random.default_rng(0).exponential(1.0, 100)
    assert bootstrap(Sample(x), seed=11) == bootstrap(Sample(x), seed=11)
    assert bootstrap(Sample(x), seed=11) != bootstrap(Sample(x), seed=12)


def test_large_samples_are_chunked():
    chunks = list(resample_indices(1_000_000, 10, seed=0))
    assert sum(c.shape[0] for c in chunks) == 10 and len(chunks) >= 5
    assert all(c.shape[1] == 1_000_000 for c in chunks)


def test_small_samples_have_no_ci():
    assert bootstrap(Sample(np.array([3.0]))) == Estimate(3.0, None, None, 1)
    assert paired_delta(Sample(np.array([1.0])), Sample(np.array([2.0]))).low is None
    with pytest.raises(ValueError):
        paired_delta(Sample(np.ones(3)), Sample(np.ones(4)))


@pytest.mark.parametrize("low,high,direction,expected", [
    (0.1, 0.3, "higher", "better"), (0.1, 0.3, "lower", "worse"),
    (-0.3, -0.1, "higher", "worse"), (-0.3, -0.1, "lower", "better"),
    (-0.1, 0.3, "higher", "no significant difference"), (0.1, 0.3, None, "higher"),
    (None, None, "higher", "not enough utterances"),
])
def test_verdict_only_when_ci_excludes_zero(low, high, direction, expected):
    assert verdict(Estimate(0.2, low, high, 10), direction) == expected

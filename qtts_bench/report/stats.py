"""Seeded, vectorised bootstrap: percentile CIs of aggregates and of paired differences.

Utterances are the resampling unit. A ``mean`` metric's statistic is the mean of the resampled
per-utterance values; a ``ratio`` metric's (corpus WER, aggregate RTF) is
Σ numerator / Σ denominator × scale over the resampled utterances, so its CI is that of the
exact corpus aggregate. Paired differences reuse the same resampled utterances for both sides.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DEFAULT_RESAMPLES = 2000
DEFAULT_LEVEL = 0.95
_CHUNK_ELEMENTS = 2_000_000  # bounds memory: resamples x utterances per chunk


@dataclass(frozen=True)
class Sample:
    """One metric on a fixed list of utterances. Arrays have shape (n,), no NaN.

    ``values``: per-utterance values. For ratio metrics also ``num`` / ``den`` (the sufficient
    statistics) and ``scale``.
    """

    values: np.ndarray
    num: np.ndarray | None = None
    den: np.ndarray | None = None
    scale: float = 1.0

    @property
    def n(self) -> int:
        return int(self.values.shape[0])

    @property
    def is_ratio(self) -> bool:
        return self.num is not None

    def statistic(self, idx: np.ndarray | None = None) -> np.ndarray | float:
        """The aggregate; with ``idx`` of shape (b, n), one aggregate per resample (b,)."""
        if idx is None:
            if self.is_ratio:
                den = float(self.den.sum())
                return float(self.num.sum()) / den * self.scale if den > 0 else float("nan")
            return float(self.values.mean()) if self.n else float("nan")
        if self.is_ratio:
            num, den = self.num[idx].sum(axis=1), self.den[idx].sum(axis=1)
            with np.errstate(divide="ignore", invalid="ignore"):
                return np.where(den > 0, num / den, np.nan) * self.scale
        return self.values[idx].mean(axis=1)


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its percentile CI (None when n < 2) over ``n`` utterances."""

    value: float
    low: float | None
    high: float | None
    n: int

    @property
    def excludes_zero(self) -> bool:
        return self.low is not None and (self.low > 0 or self.high < 0)


def resample_indices(n: int, n_resamples: int, seed: int):
    """Yield int arrays (b, n) of bootstrap indices; same (n, n_resamples, seed) -> same draws."""
    rng = np.random.default_rng(seed)
    per_chunk = max(1, _CHUNK_ELEMENTS // max(n, 1))
    done = 0
    while done < n_resamples:
        b = min(per_chunk, n_resamples - done)
        yield rng.integers(0, n, size=(b, n))
        done += b


def _percentile_ci(draws: np.ndarray, level: float) -> tuple[float, float] | tuple[None, None]:
    draws = draws[np.isfinite(draws)]
    if draws.size == 0:
        return None, None
    tail = (1.0 - level) / 2.0 * 100.0
    low, high = np.percentile(draws, [tail, 100.0 - tail])
    return float(low), float(high)


def bootstrap(sample: Sample, *, n_resamples: int = DEFAULT_RESAMPLES,
              level: float = DEFAULT_LEVEL, seed: int = 0) -> Estimate:
    """Aggregate of ``sample`` with a percentile bootstrap CI."""
    value = sample.statistic()
    if sample.n < 2 or n_resamples < 1:
        return Estimate(value, None, None, sample.n)
    draws = np.concatenate([sample.statistic(idx) for idx in resample_indices(sample.n, n_resamples, seed)])
    low, high = _percentile_ci(draws, level)
    return Estimate(value, low, high, sample.n)


def paired_delta(baseline: Sample, candidate: Sample, *, n_resamples: int = DEFAULT_RESAMPLES,
                 level: float = DEFAULT_LEVEL, seed: int = 0) -> Estimate:
    """candidate aggregate − baseline aggregate over the same utterances (same order), with CI."""
    if baseline.n != candidate.n:
        raise ValueError("paired samples must cover the same utterances")
    value = candidate.statistic() - baseline.statistic()
    if baseline.n < 2 or n_resamples < 1:
        return Estimate(value, None, None, baseline.n)
    draws = np.concatenate([candidate.statistic(idx) - baseline.statistic(idx)
                            for idx in resample_indices(baseline.n, n_resamples, seed)])
    low, high = _percentile_ci(draws, level)
    return Estimate(value, low, high, baseline.n)


def verdict(delta: Estimate, direction: str | None) -> str:
    """'better' / 'worse' (by declared direction) only when the CI excludes zero.

    Without a declared direction: 'higher' / 'lower'. Otherwise 'no significant difference'
    (or 'not enough utterances' when there is no CI).
    """
    if delta.low is None:
        return "not enough utterances"
    if not delta.excludes_zero:
        return "no significant difference"
    up = delta.low > 0
    if direction == "higher":
        return "better" if up else "worse"
    if direction == "lower":
        return "worse" if up else "better"
    return "higher" if up else "lower"

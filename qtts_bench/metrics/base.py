"""Metric interface.

A metric declares once: direction, unit, aggregation, what it requires from an item, and the
sample rate it scores at. ``score`` returns a :class:`Score`; a metric that cannot score an
utterance raises :class:`~qtts_bench.errors.MetricFailure` with the reason, which the runner
records as a missing value (never a 0 or 1).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import ClassVar

from ..audio import Audio
from ..errors import ConfigError

# What an item may provide; a metric lists what it needs. "codes" is provided by the system
# (a token codec), not by the item.
REQUIREMENTS = ("reference", "text", "prompt", "output", "codes")


@dataclass(frozen=True)
class Score:
    """One metric value for one utterance, plus sufficient statistics for exact aggregates.

    ``stats`` holds e.g. {"errors": 3, "ref_words": 12} for WER, so corpus WER is exact.
    ``extra`` holds non-numeric detail (hypothesis text, normalised text) kept in the JSONL.
    """

    value: float
    stats: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Inputs:
    """Everything a metric may look at for one utterance.

    ``estimate``: the system's output; ``reference``: ground-truth audio (codec input, or TTS
    ground truth); ``prompt``: speaker prompt audio; ``codes``: a token codec's integer codes
    (n_codebooks, frames). All optional except ``estimate``.
    """

    item_id: str
    estimate: Audio
    reference: Audio | None = None
    prompt: Audio | None = None
    text: str | None = None
    language: str | None = None
    system_info: dict = field(default_factory=dict)  # e.g. bitrate, timing from the runner
    codes: object = None  # numpy int array (n_codebooks, frames) from a token codec, else None
    spoken_text: str | None = None  # the spoken form of ``text`` (scored by WER when set)
    category: str | None = None


class Metric:
    """Base class. Subclasses set the class attributes and implement ``score``."""

    name: ClassVar[str]
    direction: ClassVar[str]  # "higher" or "lower" is better
    unit: ClassVar[str] = ""
    # "mean": mean of values; "ratio": sum(stats[numerator]) / sum(stats[denominator]) * scale
    aggregation: ClassVar[str] = "mean"
    ratio: ClassVar[tuple[str, str, float] | None] = None
    requires: ClassVar[tuple[str, ...]] = ()
    sample_rate: ClassVar[int | None] = None  # rate audio is resampled to before scoring
    version: ClassVar[str] = "1"
    percentiles: ClassVar[tuple[float, ...]] = ()  # extra percentiles in summary.json (e.g. speed)
    # True for metrics that read the system call's timing (rtf, ttft, peak_memory): an output
    # reused from the output cache was not timed, so they have no value for it (runner.py).
    uses_system_timing: ClassVar[bool] = False
    # Pure CPU work (no model, no device) that scales over processes: the pipelined executor
    # scores these in its worker pool and every other metric in the process that holds the device.
    cpu_bound: ClassVar[bool] = False

    # Accepted parameters with their defaults, for metrics that do not define a constructor of
    # their own (those declare their parameters in its signature and check them there).
    defaults: ClassVar[dict] = {}

    def __init__(self, **params):
        if type(self).__init__ is Metric.__init__:
            unknown = sorted(set(params) - set(self.defaults))
            if unknown:
                accepted = ", ".join(sorted(self.defaults)) or "none"
                raise ConfigError(f"metric '{self.name}': unknown parameter(s) {', '.join(unknown)}; "
                                  f"accepted: {accepted}")
            params = {**self.defaults, **params}
        self.params = params

    def load(self, device: str = "cpu") -> None:
        """Load models. Called once per run, never in the constructor."""

    def unavailable(self) -> str | None:
        """Why this metric cannot run here (a package not installed, with the command that
        installs it), or None. Cheap: it imports and loads nothing; validation calls it."""
        return None

    def settings(self) -> dict:
        """Everything that changes this metric's numbers (mode, model hash, library version)."""
        return {"version": self.version, **self.params}

    def score(self, inputs: Inputs) -> Score:
        raise NotImplementedError

    def aggregate(self, entries: list[dict]) -> dict:
        """Corpus summary of this metric from its stored per-utterance entries.

        ``entries``: one ``{"value": float | None, "reason"?, "not_applicable"?, "stats"?,
        "extra"?}`` per utterance (missing values included). Returns the block written to
        summary.json: the declared aggregate as ``value`` (mean, or the exact ratio of summed
        stats), mean, std, counts, failure reasons and any requested percentiles. A missing value
        flagged ``not_applicable`` (see :class:`~qtts_bench.errors.NotApplicable`) counts in
        ``n_not_applicable`` / ``not_applicable_reasons``, not as a failure; entries without the
        flag (older results too) are failures. Subclasses extend it (``super()`` first).
        """
        values, reasons, not_applicable, num, den = [], Counter(), Counter(), 0.0, 0.0
        for entry in entries:
            if entry.get("value") is None:
                counter = not_applicable if entry.get("not_applicable") is True else reasons
                counter[entry.get("reason", "unknown")] += 1
                continue
            values.append(float(entry["value"]))
            if self.ratio:
                num += float(entry.get("stats", {}).get(self.ratio[0], 0.0))
                den += float(entry.get("stats", {}).get(self.ratio[1], 0.0))
        mean = sum(values) / len(values) if values else None
        std = (math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
               if len(values) > 1 else None)
        value = mean
        if self.aggregation == "ratio" and self.ratio:
            value = num / den * self.ratio[2] if den > 0 else None
        block = {"aggregation": self.aggregation, "value": value, "mean": mean, "std": std,
                 "n_scored": len(values), "n_failed": sum(reasons.values()),
                 "failure_reasons": dict(reasons.most_common()),
                 "n_not_applicable": sum(not_applicable.values()),
                 "not_applicable_reasons": dict(not_applicable.most_common()),
                 "direction": self.direction, "unit": self.unit}
        if self.percentiles:
            block.update(percentiles(values, self.percentiles))
        return block

    @classmethod
    def describe(cls) -> dict:
        return {
            "direction": cls.direction,
            "unit": cls.unit,
            "aggregation": cls.aggregation,
            "ratio": list(cls.ratio) if cls.ratio else None,
            "requires": list(cls.requires),
            "sample_rate": cls.sample_rate,
            "version": cls.version,
            "percentiles": list(cls.percentiles),
        }


PERCENTILE_METHOD = "linear"  # numpy's default (Hyndman & Fan type 7)


def percentiles(values: Iterable[float | None], qs: Iterable[float] = (50, 95)) -> dict[str, float | None]:
    """``{"p50": ..., "p95": ...}`` of the non-missing values (linear interpolation, numpy type 7).

    Missing (None / NaN) values are ignored; with no value left every percentile is None.

    >>> percentiles([1, 2, 3, 4], qs=(50, 75))
    {'p50': 2.5, 'p75': 3.25}
    """
    import numpy as np

    kept = [float(v) for v in values if v is not None and not math.isnan(float(v))]
    qs = list(qs)
    if not kept:
        return {f"p{q:g}": None for q in qs}
    result = np.percentile(np.asarray(kept, dtype=np.float64), qs, method=PERCENTILE_METHOD)
    return {f"p{q:g}": float(v) for q, v in zip(qs, result)}

"""Metric interface.

A metric declares once: direction, unit, aggregation, what it requires from an item, and the
sample rate it scores at. ``score`` returns a :class:`Score`; a metric that cannot score an
utterance raises :class:`~qtts_bench.errors.MetricFailure` with the reason, which the runner
records as a missing value (never a 0 or 1).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from ..audio import Audio

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
    pooled: ClassVar[bool] = False  # summary.json adds corpus codebook usage from the stats' histograms

    def __init__(self, **params):
        self.params = params

    def load(self, device: str = "cpu") -> None:
        """Load models. Called once per run, never in the constructor."""

    def settings(self) -> dict:
        """Everything that changes this metric's numbers (mode, model hash, library version)."""
        return {"version": self.version, **self.params}

    def score(self, inputs: Inputs) -> Score:
        raise NotImplementedError

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
            "pooled": cls.pooled,
        }

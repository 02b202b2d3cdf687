"""Transcript vs reference text -> WER or CER with S/D/I counts (no audio, no ASR)."""

from __future__ import annotations

from dataclasses import dataclass

from ...errors import MetricFailure
from .normalize import CHARACTER_LANGUAGES, normalize, tokens
from .wer import EditCounts, align

# Tokens per side that score_text aligns: the time grows with the product of the lengths
# (two unrelated texts of 150,000 words: ~45 s on one CPU core; close ones: ~2 s).
MAX_TOKENS = 200_000


@dataclass(frozen=True)
class TextScore:
    """One utterance: error rate (fraction) with its sufficient statistics and normalised texts."""

    unit: str  # "word" or "char"
    counts: EditCounts
    reference_normalized: str
    hypothesis_normalized: str

    @property
    def value(self) -> float:
        return self.counts.rate()

    @property
    def length_key(self) -> str:
        return "ref_words" if self.unit == "word" else "ref_chars"

    def stats(self) -> dict:
        """Sufficient statistics: corpus rate = sum(errors) / sum(ref_words or ref_chars)."""
        c = self.counts
        hyp_key = "hyp_words" if self.unit == "word" else "hyp_chars"
        return {"errors": c.errors, self.length_key: c.ref_len, "substitutions": c.substitutions,
                "deletions": c.deletions, "insertions": c.insertions, hyp_key: c.hyp_len}


def check_unit(unit: str, language: str | None) -> None:
    """WER is undefined for languages written without word boundaries."""
    if unit == "word" and language in CHARACTER_LANGUAGES:
        raise MetricFailure(f"WER is undefined for language '{language}' (no word boundaries); use CER")


def score_text(*, reference: str, hypothesis: str, profile: str, language: str | None,
               unit: str = "word") -> TextScore:
    """Normalise both texts with ``profile`` and align them at ``unit`` level.

    Raises MetricFailure when the reference is empty after normalisation (rate undefined),
    when WER is asked for a character-level language, or when a side has more than
    :data:`MAX_TOKENS` tokens. An empty hypothesis is scored
    (every reference token is a deletion).

    >>> score_text(reference="Hello, world!", hypothesis="hello word", profile="seedtts",
    ...            language="en").value
    0.5
    """
    check_unit(unit, language)
    ref_norm = normalize(reference or "", profile, language)
    if not ref_norm:
        raise MetricFailure(f"reference text is empty after '{profile}' normalisation: {reference!r}")
    hyp_norm = normalize(hypothesis or "", profile, language, hypothesis=True)
    ref_tokens, hyp_tokens = tokens(ref_norm, unit, language), tokens(hyp_norm, unit, language)
    for side, sequence in (("reference", ref_tokens), ("hypothesis", hyp_tokens)):
        if len(sequence) > MAX_TOKENS:
            what = "words" if unit == "word" else "characters"
            raise MetricFailure(
                f"{side} has {len(sequence):,} {what} after normalisation; alignment takes up to "
                f"{MAX_TOKENS:,} per side (its time grows with the product of the lengths): score the text in parts")
    counts = align(ref_tokens, hyp_tokens)
    return TextScore(unit, counts, ref_norm, hyp_norm)

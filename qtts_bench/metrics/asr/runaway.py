"""Runaway ASR hypotheses: Whisper stuck in a loop on repetitive speech.

On text such as "Buffalo buffalo Buffalo buffalo buffalo buffalo Buffalo buffalo." Whisper base
can emit the same word until its token budget runs out (223 inserted words for an 8-word
sentence), so one utterance can dominate a corpus WER. The value is kept (it is what the ASR
heard) but the utterance is flagged, so summaries can also report the corpus value without it.

A hypothesis is a runaway when either criterion fires (each can be switched off with ``None``):

* **length**: hypothesis words > max(``word_ratio`` × reference words, reference words +
  ``word_margin``) — defaults 2.0 and 10: an 8-word sentence may grow to 18 words, a 40-word one
  to 80, before it is called a loop;
* **compression**: the gzip (zlib) compression ratio of the normalised hypothesis — Whisper's
  own loop detector, bytes / compressed bytes — is > ``compression_ratio`` (default 2.4,
  Whisper's threshold) *and* ≥ ``compression_vs_reference`` (default 1.5) × the normalised
  reference's own ratio. The second condition matters on hard TTS text: the correct
  "buffalo buffalo …" sentence compresses at 2.46 raw / 3.32 normalised, above Whisper's 2.4,
  and is not a loop.

"Words" are the whitespace-separated tokens of the normalised texts (characters for zh/ja/yue,
which the normalisers split into characters).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

from ...errors import ConfigError

DEFAULT_WORD_RATIO = 2.0
DEFAULT_WORD_MARGIN = 10
DEFAULT_COMPRESSION_RATIO = 2.4
DEFAULT_COMPRESSION_VS_REFERENCE = 1.5


def compression_ratio(text: str) -> float:
    """len(utf-8 bytes) / len(zlib-compressed bytes), as Whisper and faster-whisper compute it; 0 for ''."""
    data = text.encode("utf-8")
    return len(data) / len(zlib.compress(data)) if data else 0.0


@dataclass(frozen=True)
class RunawayRule:
    """Thresholds of the two criteria; ``None`` switches a criterion off."""

    word_ratio: float | None = DEFAULT_WORD_RATIO
    word_margin: int = DEFAULT_WORD_MARGIN
    compression_ratio: float | None = DEFAULT_COMPRESSION_RATIO
    compression_vs_reference: float = DEFAULT_COMPRESSION_VS_REFERENCE

    def __post_init__(self):
        if self.word_ratio is not None and not float(self.word_ratio) >= 1:
            raise ConfigError(f"runaway_word_ratio must be >= 1 or null (off), not {self.word_ratio!r}")
        if int(self.word_margin) < 0:
            raise ConfigError(f"runaway_word_margin must be >= 0, not {self.word_margin!r}")
        if self.compression_ratio is not None and not float(self.compression_ratio) > 0:
            raise ConfigError(f"runaway_compression_ratio must be > 0 or null (off), not {self.compression_ratio!r}")
        if not float(self.compression_vs_reference) >= 0:
            raise ConfigError(f"runaway_compression_vs_reference must be >= 0, not {self.compression_vs_reference!r}")

    def describe(self) -> dict:
        return {"word_ratio": self.word_ratio, "word_margin": self.word_margin,
                "compression_ratio": self.compression_ratio, "compression_vs_reference": self.compression_vs_reference,
                "rule": "runaway when hypothesis words > max(word_ratio x reference words, reference words + "
                        "word_margin), or when the zlib compression ratio of the normalised hypothesis > "
                        "compression_ratio and >= compression_vs_reference x the normalised reference's ratio; "
                        "null switches a criterion off; flagged values are kept"}

    def check(self, reference_normalized: str, hypothesis_normalized: str) -> Runaway:
        ref_words = len(reference_normalized.split())
        hyp_words = len(hypothesis_normalized.split())
        hyp_cr = compression_ratio(hypothesis_normalized)
        ref_cr = compression_ratio(reference_normalized)
        reasons = []
        word_limit = None
        if self.word_ratio is not None:
            word_limit = max(self.word_ratio * ref_words, ref_words + int(self.word_margin))
            if hyp_words > word_limit:
                reasons.append(f"{hyp_words} hypothesis words > {word_limit:g} (max({self.word_ratio:g} x "
                               f"{ref_words}, {ref_words} + {int(self.word_margin)}) reference words)")
        if (self.compression_ratio is not None and hyp_cr > self.compression_ratio
                and hyp_cr >= self.compression_vs_reference * ref_cr):
            reasons.append(f"hypothesis compression ratio {hyp_cr:.2f} > {self.compression_ratio:g} and >= "
                           f"{self.compression_vs_reference:g} x the reference's {ref_cr:.2f}")
        return Runaway(bool(reasons), "; ".join(reasons), ref_words, hyp_words, word_limit, hyp_cr, ref_cr)


@dataclass(frozen=True)
class Runaway:
    """Outcome of :meth:`RunawayRule.check` for one utterance."""

    flagged: bool
    reason: str
    ref_words: int
    hyp_words: int
    word_limit: float | None
    compression_ratio: float
    reference_compression_ratio: float

    def extra(self) -> dict:
        out = {"runaway": self.flagged,
               "runaway_check": {"ref_words": self.ref_words, "hyp_words": self.hyp_words,
                                 "word_limit": self.word_limit,
                                 "compression_ratio": round(self.compression_ratio, 4),
                                 "reference_compression_ratio": round(self.reference_compression_ratio, 4)}}
        if self.flagged:
            out["runaway_reason"] = self.reason
        return out

"""WER/CER of a given transcript against a reference text, for users who bring their own ASR.

Used by ``qtts-bench score --text REF --hypothesis HYP [--normalizer ...] [--language ...]``.
"""

from __future__ import annotations

from ..metrics.asr.metric import check_language
from ..metrics.asr.normalize import CHARACTER_LANGUAGES, check_profile, library_versions
from ..metrics.asr.scoring import score_text


def score_transcript(reference: str, hypothesis: str, normalizer: str = "whisper",
                     language: str | None = "en") -> dict:
    """WER (or CER for zh/ja/yue) of ``hypothesis`` against ``reference`` as a JSON-ready dict.

    Keys: metric ("wer"/"cer"), value (fraction), errors, substitutions, deletions, insertions,
    ref_words/ref_chars, hyp_words/hyp_chars, normalizer, language, the normalised texts and the
    normaliser packages' versions. Raises MetricFailure when the reference normalises to
    nothing (the rate is undefined), ConfigError for an unknown normaliser.
    """
    check_profile(normalizer)
    lang = check_language(language, "--language")
    unit = "char" if lang in CHARACTER_LANGUAGES else "word"
    result = score_text(reference=reference, hypothesis=hypothesis, profile=normalizer, language=lang, unit=unit)
    return {
        "metric": "wer" if unit == "word" else "cer",
        "value": result.value,
        **result.stats(),
        "normalizer": normalizer,
        "language": lang,
        "reference": reference,
        "hypothesis": hypothesis,
        "reference_normalized": result.reference_normalized,
        "hypothesis_normalized": result.hypothesis_normalized,
        "libraries": library_versions(normalizer),
    }

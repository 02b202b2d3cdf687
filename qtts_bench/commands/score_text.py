"""WER/CER of a given transcript against a reference text, for users who bring their own ASR.

Used by ``qtts-bench score --text REF --hypothesis HYP [--normalizer ...] [--language ...]``
(or ``--text-file`` / ``--hypothesis-file`` for long texts).
"""

from __future__ import annotations

from pathlib import Path

from ..errors import ConfigError
from ..metrics.asr.metric import check_language
from ..metrics.asr.normalize import CHARACTER_LANGUAGES, check_profile, library_versions
from ..metrics.asr.scoring import score_text

# Bytes (UTF-8) per side. Normalising 2 MB takes ~5 s with the whisper profile; the alignment
# itself is bounded in tokens by scoring.MAX_TOKENS (200,000 words or characters per side).
MAX_TEXT_BYTES = 2_000_000


def read_text_file(path: str | Path, what: str) -> str:
    """The UTF-8 text of ``path``, or ConfigError naming the file (missing, too large, not UTF-8)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{what} file not found: {path}")
    size = path.stat().st_size
    if size > MAX_TEXT_BYTES:
        raise ConfigError(f"{what} file {path} is {size / 1e6:.1f} MB; text scoring accepts up to "
                          f"{MAX_TEXT_BYTES / 1e6:g} MB per side: score it in parts")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{what} file {path} is not UTF-8 ({exc.reason} at byte {exc.start}); "
                          "convert it, e.g. iconv -f latin1 -t utf-8") from None


def check_text_size(text: str, what: str) -> None:
    """ConfigError when ``text`` is larger than :data:`MAX_TEXT_BYTES` in UTF-8."""
    size = len(text.encode("utf-8", errors="surrogatepass"))
    if size > MAX_TEXT_BYTES:
        raise ConfigError(f"{what} text is {size / 1e6:.1f} MB; text scoring accepts up to "
                          f"{MAX_TEXT_BYTES / 1e6:g} MB per side: score it in parts")


def score_transcript(reference: str, hypothesis: str, normalizer: str = "whisper",
                     language: str | None = "en") -> dict:
    """WER (or CER for zh/ja/yue) of ``hypothesis`` against ``reference`` as a JSON-ready dict.

    Keys: metric ("wer"/"cer"), value (fraction), errors, substitutions, deletions, insertions,
    ref_words/ref_chars, hyp_words/hyp_chars, normalizer, language, the normalised texts and the
    normaliser packages' versions. Raises MetricFailure when the reference normalises to
    nothing (the rate is undefined) or has more tokens than the alignment takes
    (``scoring.MAX_TOKENS``), ConfigError for an unknown normaliser or a text larger than
    :data:`MAX_TEXT_BYTES`.
    """
    check_profile(normalizer)
    check_text_size(reference, "reference")
    check_text_size(hypothesis, "hypothesis")
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

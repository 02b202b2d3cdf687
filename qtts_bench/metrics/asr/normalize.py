"""Text normalisation profiles applied to both the reference text and the ASR hypothesis.

Profiles (``PROFILES``):

``seedtts``
    seed-tts-eval's ``run_wer.py`` rules, exactly: delete every character of
    ``zhon.hanzi.punctuation + string.punctuation`` except the apostrophe ``'``; replace double
    spaces once; English is lowercased, Chinese is split into characters (not lowercased), then
    jiwer's default transform (collapse whitespace runs, strip, split on spaces). The
    hypothesis of a Chinese item is first converted traditional -> simplified with
    ``zhconv.convert(text, "zh-cn")`` (seed-tts-eval does this to the ASR output only).
    seed-tts-eval defines only ``en`` and ``zh``; here Japanese/Cantonese are split into
    characters like Chinese and every other language is lowercased like English.
``whisper``
    Whisper's normalisers (package ``whisper-normalizer``, a copy of openai-whisper's): the
    English normaliser for ``en`` (numbers to digits, British -> American spellings,
    contractions, currency, punctuation); the basic normaliser for other languages.
``basic``
    Whisper's multilingual basic normaliser for every language (lowercase, drop bracketed text,
    replace punctuation and symbols by spaces, collapse whitespace). No number handling.

For ``whisper`` and ``basic``, Chinese is converted traditional -> simplified on both sides.
Languages written without word boundaries (``CHARACTER_LANGUAGES``) are scored by character;
their whitespace is not counted.
"""

from __future__ import annotations

import re
import string
from functools import lru_cache

from ...errors import ConfigError, require

PROFILES = ("seedtts", "whisper", "basic")
CHARACTER_LANGUAGES = frozenset({"zh", "ja", "yue"})
EXTRA = "asr"

_LANGUAGE_ALIASES = {"cmn": "zh", "zho": "zh", "chi": "zh", "jpn": "ja", "eng": "en"}
_WHITESPACE_RUN = re.compile(r"\s\s+")  # jiwer's RemoveMultipleSpaces


def canonical_language(code: str | None) -> str | None:
    """'en-US' -> 'en', 'zh_CN' -> 'zh', 'cmn' -> 'zh'; None or '' -> None."""
    if not code:
        return None
    primary = re.split(r"[-_]", code.strip().lower(), maxsplit=1)[0]
    return _LANGUAGE_ALIASES.get(primary, primary) or None


def check_profile(profile: str) -> str:
    if profile not in PROFILES:
        raise ConfigError(f"unknown text normaliser '{profile}' (choose from {', '.join(PROFILES)})")
    return profile


@lru_cache(maxsize=1)
def _seedtts_deletions() -> dict:
    zhon_hanzi = require("zhon.hanzi", EXTRA, "the seedtts text normaliser")
    chars = set(zhon_hanzi.punctuation + string.punctuation) - {"'"}
    return str.maketrans({c: None for c in chars})


@lru_cache(maxsize=1)
def _english_normalizer():
    module = require("whisper_normalizer.english", EXTRA, "the whisper text normaliser")
    return module.EnglishTextNormalizer()


@lru_cache(maxsize=1)
def _basic_normalizer():
    module = require("whisper_normalizer.basic", EXTRA, "the whisper/basic text normaliser")
    return module.BasicTextNormalizer()


def to_simplified(text: str) -> str:
    """Traditional -> simplified Chinese with zhconv (seed-tts-eval's converter)."""
    import warnings

    with warnings.catch_warnings():  # zhconv imports the deprecated pkg_resources
        warnings.simplefilter("ignore")
        zhconv = require("zhconv", EXTRA, "traditional -> simplified Chinese conversion")
    return zhconv.convert(text, "zh-cn")


def _jiwer_default(text: str) -> str:
    return _WHITESPACE_RUN.sub(" ", text).strip()


def _seedtts(text: str, language: str | None) -> str:
    text = text.translate(_seedtts_deletions())
    text = text.replace("  ", " ")
    if language in CHARACTER_LANGUAGES:
        text = " ".join(text)
    else:
        text = text.lower()
    return _jiwer_default(text)


def _whisper_family(text: str, language: str | None, profile: str) -> str:
    if language == "zh":
        text = to_simplified(text)
    if profile == "whisper" and language == "en":
        text = _english_normalizer()(text)
    else:
        text = _basic_normalizer()(text)
    if language in CHARACTER_LANGUAGES:
        text = " ".join(c for c in text if not c.isspace())
    return _jiwer_default(text)


def normalize(text: str, profile: str, language: str | None, *, hypothesis: bool = False) -> str:
    """Normalised text, tokens separated by single spaces (characters for zh/ja/yue).

    ``hypothesis=True`` applies the hypothesis-only steps (seedtts: zh traditional ->
    simplified). ``language`` is a canonical code (see :func:`canonical_language`).
    """
    check_profile(profile)
    if profile == "seedtts":
        if hypothesis and language == "zh":
            text = to_simplified(text)
        return _seedtts(text, language)
    return _whisper_family(text, language, profile)


def tokens(normalized: str, unit: str, language: str | None) -> list[str]:
    """Split normalised text into words or characters.

    ``unit="word"``: space-separated tokens. ``unit="char"``: characters; spaces count for
    languages with word boundaries (jiwer's CER convention) and are dropped for zh/ja/yue.
    """
    if unit == "word":
        return normalized.split(" ") if normalized else []
    if unit == "char":
        if language in CHARACTER_LANGUAGES:
            return [c for c in normalized if not c.isspace()]
        return list(normalized)
    raise ValueError(f"unit must be 'word' or 'char', not {unit!r}")


def library_versions(profile: str) -> dict:
    """Versions of the packages a profile uses (for provenance)."""
    from ...provenance import package_version

    names = {"seedtts": ("zhon", "zhconv"), "whisper": ("whisper-normalizer", "zhconv"),
             "basic": ("whisper-normalizer", "zhconv")}[check_profile(profile)]
    return {name: package_version(name) for name in names}

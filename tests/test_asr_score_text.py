"""score_transcript: the function behind `qtts-bench score --text --hypothesis`."""

import json

import pytest

pytest.importorskip("whisper_normalizer", reason="whisper-normalizer not installed (pip install 'qtts-bench[asr]')")
pytest.importorskip("zhon", reason="zhon not installed (pip install 'qtts-bench[asr]')")

from qtts_bench.commands.score_text import score_transcript  # noqa: E402
from qtts_bench.errors import ConfigError, MetricFailure  # noqa: E402


def test_english_wer_with_counts_and_profiles():
    ref, hyp = "It's twenty-five dollars, please.", "it is 25 dollars please"
    whisper = score_transcript(ref, hyp, "whisper", "en")
    # whisper: "it is $25 please" on both sides -> exact match
    assert whisper["metric"] == "wer" and whisper["value"] == 0.0 and whisper["ref_words"] == 4
    seed = score_transcript(ref, hyp, "seedtts", "en")
    # seedtts: "it's twentyfive dollars please" vs "it is 25 dollars please": 2 S + 1 I over 4 words
    assert (seed["substitutions"], seed["deletions"], seed["insertions"]) == (2, 0, 1)
    assert seed["value"] == pytest.approx(3 / 4)
    assert seed["errors"] == 3 and seed["hyp_words"] == 5
    json.dumps(seed)  # JSON-ready


def test_chinese_is_cer():
    out = score_transcript("今天天气很好。", "今天天氣很好", "seedtts", "zh")
    assert out["metric"] == "cer" and out["ref_chars"] == 6 and out["value"] == 0.0  # 氣 -> 气 on the hypothesis
    out = score_transcript("今天天气很好。", "今天天好", "basic", "zh-CN")
    assert out["deletions"] == 2 and out["value"] == pytest.approx(2 / 6)


def test_empty_hypothesis_is_all_deletions_and_empty_reference_fails():
    out = score_transcript("one two three", "", "basic", "en")
    assert out["deletions"] == 3 and out["value"] == 1.0
    with pytest.raises(MetricFailure):
        score_transcript("...", "one", "basic", "en")


def test_unknown_normaliser():
    with pytest.raises(ConfigError):
        score_transcript("a", "a", "nope", "en")

"""Normalisation profiles: a table of cases per profile, and seed-tts-eval's WER reproduced."""

import string

import pytest

pytest.importorskip("zhon", reason="zhon not installed (pip install 'qtts-bench[asr]')")
pytest.importorskip("zhconv", reason="zhconv not installed (pip install 'qtts-bench[asr]')")
pytest.importorskip("whisper_normalizer", reason="whisper-normalizer not installed (pip install 'qtts-bench[asr]')")

from qtts_bench.errors import ConfigError, MetricFailure  # noqa: E402
from qtts_bench.metrics.asr.normalize import canonical_language, normalize, tokens  # noqa: E402
from qtts_bench.metrics.asr.scoring import score_text  # noqa: E402

# (text, language, seedtts, whisper, basic): expected outputs written from each profile's rules.
# seedtts: delete punctuation except "'", lowercase (en), zh/ja split into characters.
# whisper: Whisper's English normaliser (numbers, spellings, contractions) for en, basic otherwise.
# basic: lowercase, punctuation/symbols -> space, bracketed text dropped, no number handling.
TABLE = [
    # punctuation
    ("Hello, World!", "en", "hello world", "hello world", "hello world"),
    ("a  b   c", "en", "a b c", "a b c", "a b c"),
    ("[music] OK (laughs) go", "en", "music ok laughs go", "ok go", "ok go"),
    # apostrophes: kept by seedtts, expanded by whisper, split by basic
    ("It's twenty-five dollars.", "en", "it's twentyfive dollars", "it is $25", "it s twenty five dollars"),
    ("Colour, honour; Mr. Smith's car", "en", "colour honour mr smith's car",
     "color honor mister smith is car", "colour honour mr smith s car"),
    ("don’t stop", "en", "dont stop", "don t stop", "don t stop"),  # curly quote is zhon punctuation
    ("C'est l'été!", "fr", "c'est l'été", "c est l été", "c est l été"),
    # numbers: only whisper converts spelled-out numbers; seedtts deletes the decimal point
    ("I have 3 apples and 12.5 kg", "en", "i have 3 apples and 125 kg", "i have 3 apples and 12.5 kg",
     "i have 3 apples and 12 5 kg"),
    ("Twenty five percent of 1,000 people.", "en", "twenty five percent of 1000 people", "25% of 1000 people",
     "twenty five percent of 1 000 people"),
    ("Tengo 25 años.", "es", "tengo 25 años", "tengo 25 años", "tengo 25 años"),
    # Chinese / Japanese: characters; seedtts keeps case and (on the reference side) traditional forms
    ("你好，世界！", "zh", "你 好 世 界", "你 好 世 界", "你 好 世 界"),
    ("語言處理。", "zh", "語 言 處 理", "语 言 处 理", "语 言 处 理"),
    ("我有ABC。", "zh", "我 有 A B C", "我 有 a b c", "我 有 a b c"),
    ("こんにちは、世界。", "ja", "こ ん に ち は 世 界", "こ ん に ち は 世 界", "こ ん に ち は 世 界"),
]


@pytest.mark.parametrize("text, lang, seedtts, whisper, basic", TABLE)
def test_normalisation_table(text, lang, seedtts, whisper, basic):
    assert normalize(text, "seedtts", lang) == seedtts
    assert normalize(text, "whisper", lang) == whisper
    assert normalize(text, "basic", lang) == basic


def test_seedtts_converts_chinese_hypothesis_to_simplified_only():
    assert normalize("語言處理", "seedtts", "zh", hypothesis=True) == "语 言 处 理"
    assert normalize("語言處理", "seedtts", "zh") == "語 言 處 理"
    assert normalize("Don't", "seedtts", "en", hypothesis=True) == "don't"


def test_tokens_words_and_characters():
    assert tokens("ab c", "word", "en") == ["ab", "c"]
    assert tokens("ab c", "char", "en") == ["a", "b", " ", "c"]  # jiwer's CER counts spaces
    assert tokens("你 好", "char", "zh") == ["你", "好"]
    assert tokens("", "word", "en") == []


def test_language_codes():
    assert canonical_language("en-US") == "en"
    assert canonical_language("zh_CN") == "zh"
    assert canonical_language("cmn") == "zh"
    assert canonical_language("") is None and canonical_language(None) is None


def test_unknown_profile():
    with pytest.raises(ConfigError, match="seedtts"):
        normalize("x", "nope", "en")


def test_empty_reference_after_normalisation_is_a_failure():
    with pytest.raises(MetricFailure, match="empty"):
        score_text(reference="?!", hypothesis="hello", profile="seedtts", language="en")


def test_wer_undefined_for_chinese():
    with pytest.raises(MetricFailure, match="CER"):
        score_text(reference="你好", hypothesis="你好", profile="seedtts", language="zh", unit="word")


def _seed_tts_eval_wer(hypo, truth, lang):
    """seed-tts-eval run_wer.py process_one, transcribed literally (jiwer for the alignment)."""
    import jiwer
    import zhconv
    from zhon.hanzi import punctuation

    if lang == "zh":
        hypo = zhconv.convert(hypo, "zh-cn")  # done to paraformer's output in run_asr
    for x in punctuation + string.punctuation:
        if x == "'":
            continue
        truth = truth.replace(x, "")
        hypo = hypo.replace(x, "")
    truth = truth.replace("  ", " ")
    hypo = hypo.replace("  ", " ")
    if lang == "zh":
        truth = " ".join([x for x in truth])
        hypo = " ".join([x for x in hypo])
    else:
        truth = truth.lower()
        hypo = hypo.lower()
    return jiwer.process_words(truth, hypo).wer


PAIRS = [
    ("Hello, world! It's a test.", "hello world its a test", "en"),
    ("The quick brown fox -- jumps over the lazy dog.", "The quick brown fox jumps over a lazy dog", "en"),
    ("Mr. Smith paid $25.50 (cash).", "mister smith paid twenty five dollars fifty cash", "en"),
    ("  Spaces   everywhere  ", "spaces everywhere", "en"),
    ("今天天气很好，我们去公园吧！", "今天天氣很好我們去公園", "zh"),
    ("他说：“你好”。", "他说你好啊", "zh"),
]


@pytest.mark.parametrize("truth, hypo, lang", PAIRS)
def test_seedtts_profile_reproduces_seed_tts_eval(truth, hypo, lang):
    pytest.importorskip("jiwer", reason="jiwer (used by seed-tts-eval) not installed")
    unit = "char" if lang == "zh" else "word"
    ours = score_text(reference=truth, hypothesis=hypo, profile="seedtts", language=lang, unit=unit).value
    assert ours == pytest.approx(_seed_tts_eval_wer(hypo, truth, lang), abs=1e-12)

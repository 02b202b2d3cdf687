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


# --- long texts from files, bounded (issue 10, item 3) --------------------------------------

def _cli(*args):
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "qtts_bench.cli", "score", *args], capture_output=True, text=True,
                          timeout=300)


def test_text_and_hypothesis_files_score_a_long_pair(tmp_path):
    """A 100 KB pair could not be passed on the command line (argument list too long) nor aligned
    in reasonable memory (~10 GB); from files it takes well under a second of alignment."""
    import random

    rng = random.Random(0)
    vocab = [f"word{k}" for k in range(3000)]
    ref = [rng.choice(vocab) for _ in range(14000)]
    hyp = [w for w in ref]
    for k in range(0, len(hyp), 50):
        hyp[k] = "oops"  # 280 substitutions
    (tmp_path / "ref.txt").write_text(" ".join(ref), encoding="utf-8")
    (tmp_path / "hyp.txt").write_text(" ".join(hyp), encoding="utf-8")
    assert (tmp_path / "ref.txt").stat().st_size > 100_000
    out = _cli("--text-file", str(tmp_path / "ref.txt"), "--hypothesis-file", str(tmp_path / "hyp.txt"),
               "--normalizer", "basic", "--json")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert (result["substitutions"], result["deletions"], result["insertions"]) == (280, 0, 0)
    assert result["ref_words"] == 14000 and result["value"] == pytest.approx(0.02)
    # mixing a file and inline text on one side is refused
    out = _cli("--text", "a b", "--text-file", str(tmp_path / "ref.txt"), "--hypothesis", "a")
    assert out.returncode == 2 and "give --text or --text-file, not both" in out.stderr


def test_text_size_is_bounded_with_a_clear_error(tmp_path):
    from qtts_bench.commands.score_text import MAX_TEXT_BYTES
    from qtts_bench.metrics.asr.scoring import MAX_TOKENS, score_text

    big = tmp_path / "big.txt"
    big.write_text("word " * (MAX_TEXT_BYTES // 5 + 1), encoding="utf-8")
    out = _cli("--text-file", str(big), "--hypothesis", "word")
    assert out.returncode == 2
    assert f"reference file {big} is 2.0 MB; text scoring accepts up to 2 MB per side" in out.stderr
    with pytest.raises(ConfigError, match="hypothesis text is 2.0 MB"):
        score_transcript("word", "word " * (MAX_TEXT_BYTES // 5 + 1), "basic", "en")
    with pytest.raises(MetricFailure, match="reference has 200,001 words after normalisation; alignment takes up to"):
        score_text(reference="a " * (MAX_TOKENS + 1), hypothesis="a", profile="basic", language="en")


def test_a_text_file_that_is_not_utf8_is_named(tmp_path):
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("café crème".encode("latin-1"))
    out = _cli("--text-file", str(latin1), "--hypothesis", "cafe")
    assert out.returncode == 2 and f"reference file {latin1} is not UTF-8" in out.stderr
    out = _cli("--text", "a", "--hypothesis-file", str(tmp_path / "missing.txt"))
    assert out.returncode == 2 and "hypothesis file not found" in out.stderr

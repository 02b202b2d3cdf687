"""Edit-distance alignment (S/D/I) against analytic cases, brute force and jiwer."""

import random
from functools import lru_cache

import pytest

from qtts_bench.metrics.asr.wer import EditCounts, align


@pytest.mark.parametrize("ref, hyp, expected", [
    ("a b c", "a b c", (3, 0, 0, 0)),
    ("a b c", "a x c", (2, 1, 0, 0)),
    ("a b c", "a c", (2, 0, 1, 0)),
    ("a c", "a b c", (2, 0, 0, 1)),
    ("a b c", "", (0, 0, 3, 0)),
    ("a", "x y z", (0, 1, 0, 2)),
    ("the cat sat on the mat", "the cat sat on mat", (5, 0, 1, 0)),
    ("a b", "b c", (0, 2, 0, 0)),  # two substitutions, as jiwer counts it
])
def test_analytic_cases(ref, hyp, expected):
    c = align(ref.split(), hyp.split())
    assert (c.hits, c.substitutions, c.deletions, c.insertions) == expected


def test_rate_and_lengths():
    c = align("one two three four".split(), "one too three four five".split())
    assert c.errors == 2 and c.ref_len == 4 and c.hyp_len == 5
    assert c.rate() == pytest.approx(0.5)
    with pytest.raises(ValueError):
        EditCounts(0, 0, 0, 2).rate()


def _brute_distance(ref, hyp):
    """Levenshtein distance by plain recursion (independent of the DP table)."""
    @lru_cache(maxsize=None)
    def d(i, j):
        if i == 0:
            return j
        if j == 0:
            return i
        return min(d(i - 1, j) + 1, d(i, j - 1) + 1, d(i - 1, j - 1) + (ref[i - 1] != hyp[j - 1]))
    return d(len(ref), len(hyp))


def _random_pairs(n, seed=0):
    rng = random.Random(seed)
    for _ in range(n):
        vocab = "abcde"[: rng.randint(1, 5)]
        yield ([rng.choice(vocab) for _ in range(rng.randint(1, 9))],
               [rng.choice(vocab) for _ in range(rng.randint(0, 9))])


def test_total_errors_equal_brute_force_distance():
    for ref, hyp in _random_pairs(1500):
        c = align(ref, hyp)
        assert c.errors == _brute_distance(tuple(ref), tuple(hyp))
        assert c.ref_len == len(ref) and c.hyp_len == len(hyp)


def test_against_jiwer():
    jiwer = pytest.importorskip("jiwer", reason="jiwer (independent WER implementation) not installed")
    agree = total = 0
    for ref, hyp in _random_pairs(3000, seed=1):
        if not hyp:
            continue
        out = jiwer.process_words(" ".join(ref), " ".join(hyp))
        c = align(ref, hyp)
        # the total is unique; its split into S/D/I may differ between equal-cost alignments
        assert c.errors == out.substitutions + out.deletions + out.insertions
        assert c.rate() == pytest.approx(out.wer, abs=1e-12)
        total += 1
        agree += (c.substitutions, c.deletions, c.insertions) == (out.substitutions, out.deletions, out.insertions)
    assert agree / total > 0.99

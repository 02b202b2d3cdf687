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


# --- long texts (issue 10, item 3): linear memory, same counts ------------------------------

def _original_align(reference, hypothesis):
    """The pure-Python DP this module used before issue 10 (O(n*m) memory), kept as the oracle."""
    ref, hyp = list(reference), list(hypothesis)
    n, m = len(ref), len(hyp)
    cost = [list(range(m + 1))]
    for i in range(1, n + 1):
        row = [i] + [0] * m
        prev = cost[i - 1]
        r = ref[i - 1]
        for j in range(1, m + 1):
            row[j] = min(prev[j - 1] + (r != hyp[j - 1]), prev[j] + 1, row[j - 1] + 1)
        cost.append(row)
    hits = subs = dels = ins = 0
    i, j = n, m
    while i > 0 or j > 0:
        if i > 0 and cost[i][j] == cost[i - 1][j] + 1:
            dels, i = dels + 1, i - 1
        elif i > 0 and j > 0 and cost[i][j] == cost[i - 1][j - 1] + (ref[i - 1] != hyp[j - 1]):
            hits, subs = hits + (ref[i - 1] == hyp[j - 1]), subs + (ref[i - 1] != hyp[j - 1])
            i, j = i - 1, j - 1
        else:
            ins, j = ins + 1, j - 1
    return hits, subs, dels, ins


def _noisy_copy(rng, words, vocab, error_rate):
    out = []
    for w in words:
        r = rng.random()
        if r < error_rate / 3:
            continue
        out.append(rng.choice(vocab) if r < 2 * error_rate / 3 else w)
        if r > 1 - error_rate / 3:
            out.append(rng.choice(vocab))
    return out


def _counts(c):
    return c.hits, c.substitutions, c.deletions, c.insertions


def test_the_table_path_keeps_the_original_split_exactly():
    rng = random.Random(7)
    for _ in range(1500):
        vocab = [str(k) for k in range(rng.randint(1, 12))]
        ref = [rng.choice(vocab) for _ in range(rng.randint(0, 60))]
        hyp = (_noisy_copy(rng, ref, vocab, rng.random()) if rng.random() < 0.7
               else [rng.choice(vocab) for _ in range(rng.randint(0, 60))])
        assert _counts(align(ref, hyp)) == _original_align(ref, hyp), (ref, hyp)
    ref = [rng.choice("abcdefgh") for _ in range(600)]
    hyp = _noisy_copy(rng, ref, "abcdefgh", 0.3)
    assert _counts(align(ref, hyp)) == _original_align(ref, hyp)


def test_the_linear_path_finds_the_same_distance_and_jiwers_split(monkeypatch):
    from qtts_bench.metrics.asr import wer

    jiwer = pytest.importorskip("jiwer", reason="jiwer (independent WER implementation) not installed")
    rng = random.Random(11)
    pairs = []
    for _ in range(400):
        vocab = [f"w{k}" for k in range(rng.randint(1, 30))]
        ref = [rng.choice(vocab) for _ in range(rng.randint(1, 300))]
        pairs.append((ref, _noisy_copy(rng, ref, vocab, rng.random()) or ["x"]))
    table = [align(ref, hyp) for ref, hyp in pairs]
    monkeypatch.setattr(wer, "EXACT_CELLS", 0)  # force rapidfuzz
    for (ref, hyp), exact in zip(pairs, table):
        linear = align(ref, hyp)
        out = jiwer.process_words(" ".join(ref), " ".join(hyp))
        # the total is unique; the split among equal-cost alignments is rapidfuzz's (= jiwer's),
        # which differs from the table's backtrace on ~25 % of these small-vocabulary, high-error pairs
        assert linear.errors == exact.errors and (linear.ref_len, linear.hyp_len) == (len(ref), len(hyp))
        assert _counts(linear) == (out.hits, out.substitutions, out.deletions, out.insertions)


def _align_in_a_subprocess(n_words: int, address_space_bytes: int, timeout: float) -> dict:
    """Align a generated ~n_words pair in a child with a capped address space; its counts and peak RSS."""
    import json
    import subprocess
    import sys

    code = f"""
import json, random, resource, time
resource.setrlimit(resource.RLIMIT_AS, ({address_space_bytes}, {address_space_bytes}))
from qtts_bench.metrics.asr.wer import align
rng = random.Random(3)
vocab = [f"w{{k}}" for k in range(2000)]
ref = [rng.choice(vocab) for _ in range({n_words})]
hyp = []
for w in ref:
    r = rng.random()
    if r < 0.04: continue
    hyp.append(rng.choice(vocab) if r < 0.08 else w)
    if r > 0.97: hyp.append(rng.choice(vocab))
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
c = align(ref, hyp)
print(json.dumps({{"counts": [c.hits, c.substitutions, c.deletions, c.insertions], "seconds": time.perf_counter() - start,
                  "peak_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "before_kb": before}}))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, out.stderr[-1500:]
    return json.loads(out.stdout)


def test_a_100_kb_transcript_pair_aligns_in_little_memory_and_time():
    """~15,000 words a side (100 KB of text): was ~100 s and ~10 GB (quadratic table of Python ints)."""
    result = _align_in_a_subprocess(15000, address_space_bytes=3 * 2**30, timeout=60)
    assert result["peak_kb"] - result["before_kb"] < 100_000, result  # < 100 MB over the interpreter
    assert result["seconds"] < 20, result
    hits, subs, dels, ins = result["counts"]
    assert hits + subs + dels == 15000 and 0.05 < (subs + dels + ins) / 15000 < 0.15

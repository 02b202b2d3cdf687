"""Codebook usage metrics: analytic entropies of known code sequences, pooling, and a run."""

import json
import math

import numpy as np
import pytest

from qtts_bench.audio import Audio
from qtts_bench.errors import MetricFailure
from qtts_bench.metrics.base import Inputs
from qtts_bench.metrics.codebook import (CodebookEntropy, CodebookPerplexity, aggregate_usage,
                                         pooled_usage, sparse_histograms)


def _entropy_bits(counts):
    """Shannon entropy (bits) of a histogram, written out from the definition."""
    total = sum(counts)
    return -sum(c / total * math.log2(c / total) for c in counts if c)


def _inputs(codes, size=16):
    audio = Audio(np.zeros(320 * codes.shape[1], dtype=np.float32), 16000)
    return Inputs("u", audio, codes=codes, system_info={"codebook_size": size, "frame_rate": 50})


def test_perplexity_and_entropy_of_known_codes():
    codes = np.stack([np.arange(32) % 8, np.zeros(32, dtype=np.int64)])  # uniform over 8, constant
    score = CodebookPerplexity().score(_inputs(codes))
    assert score.value == pytest.approx((8.0 + 1.0) / 2, abs=1e-12)
    assert score.extra["perplexity"] == [8.0, 1.0]
    assert CodebookEntropy().score(_inputs(codes)).value == pytest.approx(1.5, abs=1e-12)  # (3 + 0) / 2


def test_pooled_usage_equals_the_histogram_of_all_codes():
    rng = np.random.default_rng(0)
    utterances = [rng.integers(0, 16, size=(3, n)) for n in (5, 40, 17)]
    stats = [CodebookPerplexity().score(_inputs(c)).stats for c in utterances]
    json.loads(json.dumps(stats))  # what the store keeps must be JSON
    pooled = pooled_usage(stats)
    direct = aggregate_usage(utterances, 16, 50)
    assert pooled["perplexity"] == pytest.approx(direct["perplexity"], abs=1e-12)
    assert pooled["dead_fraction"] == direct["dead_fraction"] and pooled["n_utterances"] == 3
    everything = np.concatenate(utterances, axis=1)
    for k in range(3):
        counts = np.bincount(everything[k], minlength=16)
        assert pooled["entropy_bits"][k] == pytest.approx(_entropy_bits(counts.tolist()), abs=1e-12)
        assert pooled["dead_fraction"][k] == pytest.approx(np.mean(counts == 0))


def test_sparse_histograms_keep_only_used_codes():
    assert sparse_histograms(np.array([[0, 1, 0, 2, 0, 0, 0, 0]])) == [[[1, 3], [1, 2]]]


def test_not_a_token_codec_or_bad_codes_is_a_reasoned_failure():
    audio = Audio(np.zeros(320, dtype=np.float32), 16000)
    with pytest.raises(MetricFailure, match="not a token codec"):
        CodebookPerplexity().score(Inputs("u", audio))
    with pytest.raises(MetricFailure, match="invalid codes: codes out of range"):
        CodebookPerplexity().score(_inputs(np.array([[0, 99]])))


SUITE = """
name: usage
datasets:
  syn: {dataset: synthetic, params: {n: 3, seconds: 1.0}}
systems:
  tok: {system: dummy_token_codec, params: {n_codebooks: 2, codebook_size: 16}}
metrics:
  codebook_perplexity: {}
  codebook_entropy: {}
  bitrate: {}
"""


def test_run_records_per_utterance_usage_and_pools_it_in_the_summary(write_suite, tmp_path, cli):
    proc = cli("run", str(write_suite(SUITE)), "--out", str(tmp_path / "out"), "--no-progress")
    assert proc.returncode == 0, proc.stderr
    folder = tmp_path / "out" / "usage" / "syn" / "tok"
    records = [json.loads(line) for line in (folder / "items.jsonl").read_text().splitlines()]
    # 1 s = 50 frames: codes 0..15 of codebook 0 occur 4, 4, 3, ... times (50 = 3 * 16 + 2)
    counts = [4, 4] + [3] * 14
    per_utt = (2 ** _entropy_bits(counts) + 1.0) / 2
    for record in records:
        assert record["metrics"]["codebook_perplexity"]["value"] == pytest.approx(per_utt, abs=1e-9)
        assert record["metrics"]["codebook_entropy"]["value"] == pytest.approx(_entropy_bits(counts) / 2, abs=1e-9)
    pooled = json.loads((folder / "summary.json").read_text())["metrics"]["codebook_perplexity"]["pooled"]
    assert pooled["perplexity"][0] == pytest.approx(2 ** _entropy_bits([12, 12] + [9] * 14), abs=1e-9)
    assert pooled["perplexity"][1] == 1.0 and pooled["dead_fraction"] == [0.0, 15 / 16]
    assert pooled["frames"] == 150 and pooled["bitrate"] == 50 * 2 * 4


def test_codebook_metric_without_any_token_codec_warns_at_validation(write_suite, cli):
    text = SUITE.replace("tok: {system: dummy_token_codec, params: {n_codebooks: 2, codebook_size: 16}}",
                         "passthrough: {}")
    proc = cli("validate", str(write_suite(text)))
    assert proc.returncode == 0, proc.stderr
    assert "metrics.codebook_perplexity" in proc.stderr and "no selected system emits them" in proc.stderr


def test_other_systems_of_a_mixed_suite_record_the_reason(write_suite, tmp_path, cli):
    text = SUITE.replace("metrics:", "  passthrough: {}\nmetrics:")
    proc = cli("run", str(write_suite(text)), "--out", str(tmp_path / "out"), "--no-progress")
    assert proc.returncode == 0, proc.stderr
    folder = tmp_path / "out" / "usage" / "syn" / "passthrough"
    record = json.loads((folder / "items.jsonl").read_text().splitlines()[0])
    entry = record["metrics"]["codebook_perplexity"]
    assert entry["value"] is None and "not a token codec" in entry["reason"]
    summary = json.loads((folder / "summary.json").read_text())["metrics"]["codebook_perplexity"]
    assert summary["n_failed"] == 0 and summary["n_not_applicable"] == 3 and summary["pooled"] is None

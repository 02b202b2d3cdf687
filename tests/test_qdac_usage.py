"""Codebook usage statistics (analytic cases) and that every shipped training config parses."""

import math
from pathlib import Path

import numpy as np
import pytest

from qtts_bench.errors import ConfigError
from qtts_bench.qdac.config import QdacConfig, load_run_config
from qtts_bench.metrics.codebook import aggregate_usage, codebook_usage

REPO = Path(__file__).resolve().parents[1]


def test_uniform_and_constant_codebooks():
    size = 8
    uniform = np.tile(np.arange(size), 4)  # every code used equally often
    constant = np.zeros(4 * size, dtype=np.int64)
    usage = codebook_usage(np.stack([uniform, constant]), size, frame_rate=50)
    assert usage["entropy_bits"] == pytest.approx([3.0, 0.0])
    assert usage["perplexity"] == pytest.approx([8.0, 1.0])
    assert usage["dead_fraction"] == pytest.approx([0.0, 7 / 8])
    assert usage["bitrate"] == 50 * 2 * 3
    assert usage["entropy_bitrate"] == pytest.approx(50 * 3.0)


def test_aggregate_sums_histograms():
    # two utterances each using half the codebook: together all of it, uniformly
    a = np.array([[0, 1, 0, 1]])
    b = np.array([[2, 3, 2, 3]])
    assert codebook_usage(a, 4, 25)["perplexity"] == pytest.approx([2.0])
    total = aggregate_usage([a, b], 4, 25)
    assert total["perplexity"] == pytest.approx([4.0]) and total["frames"] == 8
    assert total["dead_fraction"] == [0.0]


def test_out_of_range_codes_rejected():
    with pytest.raises(ValueError, match="out of range"):
        codebook_usage(np.array([[0, 9]]), 8, 50)


def test_bitrate_of_paper_configuration():
    cfg = QdacConfig(frame_rate=50, n_codebooks=16, codebook_size=2048)
    assert cfg.bitrate == 50 * 16 * 11 and cfg.hop == 320
    assert QdacConfig(frame_rate=25).hop == 640
    assert math.isclose(QdacConfig(frame_rate=25, n_codebooks=8).bitrate, 2200.0)


def test_invalid_model_config_names_the_problem():
    with pytest.raises(ConfigError, match="frame_rate must be one of"):
        QdacConfig(frame_rate=75)
    with pytest.raises(ConfigError, match="multiply to 160, not the hop 320"):
        QdacConfig(encoder="waveform", encoder_strides=(2, 4, 4, 5))


@pytest.mark.parametrize("path", sorted((REPO / "configs" / "qdac").glob("*.yaml")), ids=lambda p: p.name)
def test_training_configs_parse(path):
    run = load_run_config(str(path))
    assert run.data and run.model.n_codebooks >= 1

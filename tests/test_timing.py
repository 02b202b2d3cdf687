"""Device-aware timer: wall time of a sleeping call, TTFT of a sleeping generator, peak memory.

Tolerances: a sleep of s seconds must measure >= s (time.sleep never returns early) and at most
s + 0.25 s (scheduling slack on a loaded 2-core machine).
"""

import time

import numpy as np
import pytest

from qtts_bench.errors import ConfigError
from qtts_bench.timing import (
    device_name,
    measure,
    memory_method,
    provenance,
    stream_timing,
)

SLACK = 0.25


def test_measure_returns_result_and_wall_time_of_a_sleep():
    result, seconds, peak = measure(lambda: (time.sleep(0.2), "done")[1], "cpu")
    assert result == "done"
    assert 0.2 <= seconds <= 0.2 + SLACK
    assert peak is not None and peak > 0


def test_peak_memory_sees_a_large_temporary_allocation_and_resets_per_call():
    size = 200 * 2**20

    def allocate():
        a = np.ones(size // 8)  # touched pages: 200 MiB resident
        return float(a[-1])

    _, _, baseline = measure(lambda: None, "cpu")
    _, _, peak = measure(allocate, "cpu")
    assert peak >= baseline + 0.9 * size
    if memory_method("cpu").startswith("linux"):  # per-call peak (the high-water mark is reset)
        _, _, after = measure(lambda: None, "cpu")
        assert after < peak - 0.5 * size


def test_stream_timing_ttft_is_time_to_first_audio_chunk():
    def generator():
        time.sleep(0.15)
        yield np.zeros(160, np.float32)
        for _ in range(2):
            time.sleep(0.1)
            yield np.zeros(160, np.float32)

    chunks, ttft, total = stream_timing(generator(), "cpu")
    assert len(chunks) == 3
    assert 0.15 <= ttft <= 0.15 + SLACK
    assert 0.35 <= total <= 0.35 + SLACK
    assert ttft < total


def test_stream_timing_skips_empty_chunks_and_accepts_a_callable():
    def generator():
        yield np.zeros(0, np.float32)  # no audio yet: not the first chunk
        time.sleep(0.1)
        yield np.ones(10, np.float32)

    chunks, ttft, total = stream_timing(generator, "cpu")
    assert len(chunks) == 2
    assert 0.1 <= ttft <= total


def test_stream_without_audio_has_no_ttft():
    chunks, ttft, _ = stream_timing(iter([np.zeros(0)]), "cpu")
    assert ttft is None and len(chunks) == 1


def test_measure_composes_with_stream_timing_for_peak_memory():
    def generator():
        time.sleep(0.05)
        yield np.ones(100)

    (_chunks, ttft, total), seconds, peak = measure(lambda: stream_timing(generator, "cpu"), "cpu")
    assert ttft <= total <= seconds and peak > 0


def test_cuda_requested_without_cuda_is_a_config_error():
    try:
        import torch
    except ImportError:
        torch = None
    if torch is not None and torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    with pytest.raises(ConfigError, match="cuda"):
        measure(lambda: None, "cuda:0")


def test_provenance_names_device_timer_and_memory_method():
    info = provenance("cpu")
    assert info["device"] == "cpu" and info["device_name"] == device_name("cpu") != ""
    assert info["timer"] == "time.perf_counter" and info["cuda_synchronize"] is False
    assert info["peak_memory"] == memory_method("cpu")

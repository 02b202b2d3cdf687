"""RTF, TTFT, peak memory and bitrate metrics; checked analytically and against systems that sleep
a known time (tolerance: measured >= the sleep, at most 0.25 s of scheduling slack above it)."""

import statistics
import time

import numpy as np
import pytest

from qtts_bench.audio import Audio
from qtts_bench.errors import MetricFailure
from qtts_bench.metrics.base import Inputs
from qtts_bench.metrics.bitrate import Bitrate, nominal_bitrate, token_bitrate
from qtts_bench.metrics.speed import PeakMemory, Rtf, Ttft, percentiles
from qtts_bench.timing import measure, stream_timing

SR = 16000
SLACK = 0.25


def _inputs(**info):
    return Inputs(item_id="u", estimate=Audio(np.zeros(SR, np.float32), SR), system_info=info)


# --- RTF ---------------------------------------------------------------------------------
def test_rtf_is_compute_over_audio_seconds_with_exact_ratio_stats():
    score = Rtf().score(_inputs(seconds=0.5, audio_seconds=2.0, device="cpu"))
    assert score.value == pytest.approx(0.25)
    assert score.stats == {"seconds": 0.5, "audio_seconds": 2.0}
    assert Rtf.aggregation == "ratio" and Rtf.ratio == ("seconds", "audio_seconds", 1.0)
    assert Rtf.percentiles == (50, 95)


def test_aggregate_rtf_is_sum_over_sum_not_mean_of_ratios():
    scores = [Rtf().score(_inputs(seconds=s, audio_seconds=a)) for s, a in [(1.0, 1.0), (1.0, 9.0)]]
    num = sum(s.stats["seconds"] for s in scores)
    den = sum(s.stats["audio_seconds"] for s in scores)
    assert num / den == pytest.approx(0.2)  # 2 s of compute for 10 s of audio
    assert np.mean([s.value for s in scores]) == pytest.approx((1 + 1 / 9) / 2)


@pytest.mark.parametrize("info, reason", [
    ({"audio_seconds": 1.0}, "no 'seconds'"),
    ({"seconds": 1.0}, "no 'audio_seconds'"),
    ({"seconds": 1.0, "audio_seconds": 0.0}, "no audio"),
])
def test_rtf_missing_inputs_are_missing_values(info, reason):
    with pytest.raises(MetricFailure, match=reason):
        Rtf().score(_inputs(**info))


class SleepingTTS:
    """Returns ``audio_seconds`` of a tone after sleeping ``delay`` s; streams in 4 chunks with
    ``first_delay`` before the first one."""

    def __init__(self, delay=0.2, first_delay=0.15, audio_seconds=1.0):
        self.delay, self.first_delay, self.audio_seconds = delay, first_delay, audio_seconds
        self.calls = 0

    def _tone(self):
        t = np.arange(int(self.audio_seconds * SR)) / SR
        return (0.1 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)

    def synthesize(self, text):
        self.calls += 1
        time.sleep(self.delay)
        return self._tone()

    def stream(self, text):
        audio = self._tone()
        time.sleep(self.first_delay)
        n = len(audio) // 4
        for i in range(4):
            if i:
                time.sleep(0.05)
            yield audio[i * n:(i + 1) * n]


def test_rtf_of_a_system_that_sleeps_a_known_time():
    tts = SleepingTTS(delay=0.2, audio_seconds=1.0)
    tts.synthesize("warm-up")  # warm-up call: made and discarded, as the runner does
    audio, seconds, _peak = measure(lambda: tts.synthesize("hello"), "cpu")
    score = Rtf().score(_inputs(seconds=seconds, audio_seconds=len(audio) / SR, device="cpu"))
    assert 0.2 <= score.value <= 0.2 + SLACK  # 0.2 s of work per 1 s of audio
    assert tts.calls == 2


def test_ttft_of_a_generator_that_sleeps_before_its_first_chunk():
    tts = SleepingTTS(first_delay=0.15, audio_seconds=1.0)
    chunks, ttft, total = stream_timing(lambda: tts.stream("hello"), "cpu")
    score = Ttft().score(_inputs(ttft_seconds=ttft, seconds=total, audio_seconds=1.0))
    assert 0.15 <= score.value <= 0.15 + SLACK
    assert total >= 0.15 + 3 * 0.05
    assert sum(len(c) for c in chunks) == SR


def test_ttft_of_a_non_streaming_system_is_missing():
    with pytest.raises(MetricFailure, match="does not stream"):
        Ttft().score(_inputs(seconds=1.0, audio_seconds=1.0, ttft_seconds=None))


def test_peak_memory_metric_reads_system_info():
    score = PeakMemory().score(_inputs(peak_memory_bytes=123456789, device="cpu"))
    assert score.value == 123456789 and score.extra["kind"] == "peak_rss"
    assert PeakMemory().score(_inputs(peak_memory_bytes=5, device="cuda:0")).extra["kind"] == "cuda_max_allocated"
    with pytest.raises(MetricFailure):
        PeakMemory().score(_inputs(device="cpu"))


# --- percentiles -------------------------------------------------------------------------
def test_percentiles_match_statistics_inclusive_quantiles():
    rng = np.random.default_rng(0)
    values = list(rng.gamma(2.0, 0.1, size=37))
    ref = statistics.quantiles(values, n=100, method="inclusive")  # type 7, independent code
    got = percentiles(values + [None, float("nan")])
    assert got["p50"] == pytest.approx(ref[49], abs=1e-12)
    assert got["p95"] == pytest.approx(ref[94], abs=1e-12)
    assert percentiles([1, 2, 3, 4]) == {"p50": 2.5, "p95": pytest.approx(3.85)}
    assert percentiles([None]) == {"p50": None, "p95": None}


# --- bitrate -----------------------------------------------------------------------------
def test_token_bitrate_analytic():
    assert token_bitrate(75, 8, 1024) == 6000.0  # EnCodec 6 kbps
    assert token_bitrate(50, 12, 1024) == 6000.0  # DAC 16 kHz, 12 codebooks
    assert token_bitrate(12.5, 8, 2048) == pytest.approx(1100.0)  # Mimi 8 codebooks
    with pytest.raises(ValueError):
        token_bitrate(50, 0, 1024)


def test_bitrate_measured_from_encoded_bits_with_nominal_recorded():
    # a token codec: 2 s of input, 101 frames x 8 codebooks x 10 bits
    info = {"encoded_bits": 101 * 8 * 10, "input_seconds": 2.0, "nominal_bitrate": None,
            "frame_rate": 50.0, "n_codebooks": 8, "codebook_size": 1024}
    score = Bitrate().score(_inputs(**info))
    assert score.value == pytest.approx(4040.0)
    assert score.stats == {"encoded_bits": 8080.0, "input_seconds": 2.0}
    assert score.extra["nominal_bitrate"] == score.extra["codebook_bitrate"] == 4000.0
    assert nominal_bitrate({"nominal_bitrate": 1200}) == 1200.0
    assert Bitrate.aggregation == "ratio" and Bitrate.ratio == ("encoded_bits", "input_seconds", 1.0)


def test_bitrate_without_encoded_bits_is_missing_with_the_nominal_in_the_reason():
    with pytest.raises(MetricFailure, match="nominal 1200 bit/s"):
        Bitrate().score(_inputs(encoded_bits=None, input_seconds=1.0, nominal_bitrate=1200))
    with pytest.raises(MetricFailure, match="codecs only"):
        Bitrate().score(_inputs(encoded_bits=100, input_seconds=None))


def test_bitrate_of_real_codec2_1200_frames():
    pycodec2 = pytest.importorskip("pycodec2")
    codec = pycodec2.Codec2(1200)
    spf, bpf = codec.samples_per_frame(), codec.bits_per_frame()
    seconds = 2.0
    n_frames = int(seconds * 8000) // spf
    score = Bitrate().score(_inputs(encoded_bits=n_frames * bpf, input_seconds=n_frames * spf / 8000,
                                    nominal_bitrate=1200))
    assert score.value == pytest.approx(1200.0)  # 48 bits every 40 ms

"""Speed metrics read from the runner's timing of each system call (``Inputs.system_info``).

- ``rtf``: real-time factor = compute seconds / seconds of audio produced. Per utterance, and the
  aggregate is the exact ratio Σ seconds / Σ audio_seconds (not the mean of ratios).
- ``ttft``: seconds until the first audio chunk of a streaming TTS; not applicable (missing with
  ``not_applicable``) for non-streaming systems.
- ``peak_memory``: bytes; CUDA max allocated on GPU, peak process RSS on CPU, during the call.

Warm-up calls are made by the runner before timing and never reach these metrics. The device and
its name travel in each score's ``extra``. ``percentiles`` asks summary.json for p50/p95
of the per-utterance values (see :func:`percentiles`). A system whose audio was made outside the
harness says why it has no timing (``system_info["untimed"]``): the speed metrics then do not
apply (:class:`~qtts_bench.errors.NotApplicable`), which is not a failure.
"""

from __future__ import annotations

import math

from ..errors import MetricFailure, NotApplicable
from .base import PERCENTILE_METHOD, Inputs, Metric, Score, percentiles  # noqa: F401 (re-exported)


TIMING_KEYS = ("seconds", "ttft_seconds", "peak_memory_bytes")  # absent from untimed systems


def _number(info: dict, key: str, what: str) -> float:
    value = info.get(key)
    if value is None:
        if key in TIMING_KEYS and info.get("untimed"):  # the system's reason it has no timing
            raise NotApplicable(info["untimed"])
        raise MetricFailure(f"system_info has no '{key}' ({what})")
    value = float(value)
    if not math.isfinite(value):
        raise MetricFailure(f"system_info '{key}' is not finite ({value})")
    return value


def _device_extra(info: dict) -> dict:
    return {k: info[k] for k in ("device", "device_name") if info.get(k) is not None}


class _SpeedMetric(Metric):
    direction = "lower"
    requires = ()
    uses_system_timing = True
    percentiles = (50, 95)  # p50/p95 of per-utterance values in summary.json

    def settings(self) -> dict:
        return {**super().settings(), "timer": "time.perf_counter", "percentile_method": PERCENTILE_METHOD}


class Rtf(_SpeedMetric):
    """Real-time factor: wall seconds of the system call / seconds of output audio (< 1: faster
    than real time). Aggregate = Σ seconds / Σ audio_seconds."""

    name = "rtf"
    unit = "x real time"
    aggregation = "ratio"
    ratio = ("seconds", "audio_seconds", 1.0)

    def score(self, inputs: Inputs) -> Score:
        info = inputs.system_info
        seconds = _number(info, "seconds", "the runner did not time this call")
        audio_seconds = _number(info, "audio_seconds", "duration of the output audio")
        if seconds < 0:
            raise MetricFailure(f"negative compute time {seconds} s")
        if audio_seconds <= 0:
            raise MetricFailure("the system produced no audio (0 s), so RTF is undefined")
        return Score(seconds / audio_seconds, stats={"seconds": seconds, "audio_seconds": audio_seconds},
                     extra=_device_extra(info))


class Ttft(_SpeedMetric):
    """Time to first audio chunk (seconds) of a streaming system; not applicable when it does not stream."""

    name = "ttft"
    unit = "s"

    def score(self, inputs: Inputs) -> Score:
        info = inputs.system_info
        if info.get("ttft_seconds") is None:
            raise NotApplicable(info.get("untimed") or "the system does not stream (no time to first chunk)")
        ttft = _number(info, "ttft_seconds", "time to first chunk")
        stats = {"ttft_seconds": ttft}
        if info.get("seconds") is not None:
            stats["seconds"] = float(info["seconds"])
        return Score(ttft, stats=stats, extra=_device_extra(info))


class PeakMemory(_SpeedMetric):
    """Peak memory during the system call, in bytes: CUDA max allocated on GPU, peak process RSS
    on CPU (it includes the loaded models, so it is comparable only within one device type)."""

    name = "peak_memory"
    unit = "bytes"

    def score(self, inputs: Inputs) -> Score:
        info = inputs.system_info
        peak = _number(info, "peak_memory_bytes", "the runner did not measure memory")
        if peak <= 0:
            raise MetricFailure(f"invalid peak memory {peak} bytes")
        device = str(info.get("device") or "unknown")
        kind = "cuda_max_allocated" if device.startswith("cuda") else "peak_rss"
        return Score(peak, stats={"peak_memory_bytes": peak}, extra={**_device_extra(info), "kind": kind})

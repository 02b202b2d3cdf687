"""Device-aware timing of one system call: wall seconds, time to first chunk, peak memory.

Wall time is ``time.perf_counter``. On CUDA (and only there, when torch is importable) the device
is synchronised before the clock starts and before it stops, so queued kernels are counted, and
peak memory is ``torch.cuda.max_memory_allocated`` after resetting the peak counter. On CPU, peak
memory is the process's peak resident set size during the call: Linux lets us reset the
high-water mark (``/proc/self/clear_refs``, then ``VmHWM``); elsewhere a psutil sampling thread
is used, and as a last resort ``resource.getrusage`` (the peak since process start, not per call).
:func:`memory_method` names which one is in force, for provenance.

Warm-up is the caller's job: call the function once untimed before measuring.
"""

from __future__ import annotations

import os
import platform
import re
import sys
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from .errors import ConfigError

_STATUS = "/proc/self/status"
_CLEAR_REFS = "/proc/self/clear_refs"
_PSUTIL_INTERVAL = 0.002  # seconds between RSS samples in the fallback sampler


def is_cuda(device: str | None) -> bool:
    """True for "cuda", "cuda:1", ...; raises ConfigError when CUDA is asked for but unusable."""
    if not device or not str(device).startswith("cuda"):
        return False
    try:
        import torch
    except ImportError:
        raise ConfigError(f"device '{device}' needs torch with CUDA, and torch is not installed") from None
    if not torch.cuda.is_available():
        raise ConfigError(f"device '{device}' requested but torch.cuda.is_available() is False")
    return True


def _sync(device: str) -> None:
    import torch

    torch.cuda.synchronize(device)


# --- CPU peak RSS --------------------------------------------------------------------------
def _read_hwm() -> int | None:
    try:
        with open(_STATUS, encoding="ascii") as fh:
            match = re.search(r"VmHWM:\s+(\d+) kB", fh.read())
    except OSError:
        return None
    return int(match.group(1)) * 1024 if match else None


def _reset_hwm() -> bool:
    try:
        with open(_CLEAR_REFS, "w", encoding="ascii") as fh:
            fh.write("5")  # "5" resets the peak RSS (VmHWM) to the current RSS (Linux >= 4.0)
        return True
    except OSError:
        return False


_METHOD: str | None = None


def memory_method(device: str = "cpu") -> str:
    """How peak memory is measured on ``device`` (recorded in provenance)."""
    global _METHOD
    if is_cuda(device):
        return "torch.cuda.max_memory_allocated"
    if _METHOD is None:
        if _read_hwm() is not None and _reset_hwm():
            _METHOD = "linux VmHWM after clear_refs (peak RSS during the call)"
        else:
            try:
                import psutil  # noqa: F401

                _METHOD = f"psutil RSS sampled every {_PSUTIL_INTERVAL * 1000:g} ms"
            except ImportError:
                _METHOD = "resource.getrusage ru_maxrss (peak since process start)"
    return _METHOD


class _RssSampler:
    """Background thread recording the largest RSS seen (psutil fallback)."""

    def __init__(self):
        import psutil

        self._proc = psutil.Process()
        self.peak = self._proc.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self._proc.memory_info().rss)
            self._stop.wait(_PSUTIL_INTERVAL)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._proc.memory_info().rss)


def _ru_maxrss() -> int:
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)  # bytes on macOS, KiB on Linux


class _PeakMemory:
    """Context manager; ``peak`` holds bytes after exit."""

    def __init__(self, device: str):
        self.device = device
        self.peak: int | None = None
        self._sampler = None

    def __enter__(self):
        method = memory_method(self.device)
        if method.startswith("torch.cuda"):
            import torch

            torch.cuda.reset_peak_memory_stats(self.device)
        elif method.startswith("linux"):
            _reset_hwm()
        elif method.startswith("psutil"):
            self._sampler = _RssSampler().__enter__()
        return self

    def __exit__(self, *exc):
        method = memory_method(self.device)
        if method.startswith("torch.cuda"):
            import torch

            self.peak = int(torch.cuda.max_memory_allocated(self.device))
        elif method.startswith("linux"):
            self.peak = _read_hwm()
        elif self._sampler is not None:
            self._sampler.__exit__(*exc)
            self.peak = int(self._sampler.peak)
        else:
            self.peak = _ru_maxrss()


# --- public API ----------------------------------------------------------------------------
def measure(fn: Callable[[], Any], device: str = "cpu") -> tuple[Any, float, int | None]:
    """Run ``fn()`` once: ``(result, wall_seconds, peak_memory_bytes)``.

    On CUDA the device is synchronised before the clock starts and before it stops.
    ``peak_memory_bytes`` is CUDA max allocated (GPU) or peak process RSS (CPU) during the call.

    >>> result, seconds, peak = measure(lambda: sum(range(1000)))
    """
    cuda = is_cuda(device)
    with _PeakMemory(device) as mem:
        if cuda:
            _sync(device)
        start = time.perf_counter()
        result = fn()
        if cuda:
            _sync(device)
        seconds = time.perf_counter() - start
    return result, seconds, mem.peak


def _has_audio(chunk: Any) -> bool:
    size = getattr(chunk, "size", None)
    if size is None:
        try:
            size = len(chunk)
        except TypeError:
            return True
    return int(size) > 0


def stream_timing(chunks: Iterable | Callable[[], Iterable], device: str = "cpu") -> tuple[list, float | None, float]:
    """Consume a stream of audio chunks: ``(chunks, ttft_seconds, total_seconds)``.

    ``chunks``: an iterable (a generator is lazy, so its work starts on the first ``next``) or a
    zero-argument callable returning one; the clock starts before the call / first ``next``.
    TTFT is the time until the first chunk holding at least one sample (None when none does).
    On CUDA the device is synchronised at the start, at the first chunk and at the end.
    For peak memory as well, wrap it: ``measure(lambda: stream_timing(gen, dev), dev)``.
    """
    cuda = is_cuda(device)
    if cuda:
        _sync(device)
    start = time.perf_counter()
    iterator = iter(chunks() if callable(chunks) else chunks)
    out: list = []
    ttft = None
    for chunk in iterator:
        if ttft is None and _has_audio(chunk):
            if cuda:
                _sync(device)
            ttft = time.perf_counter() - start
        out.append(chunk)
    if cuda:
        _sync(device)
    return out, ttft, time.perf_counter() - start


def device_name(device: str = "cpu") -> str:
    """Human-readable device name: the GPU model on CUDA, the CPU model otherwise."""
    if is_cuda(device):
        import torch

        return torch.cuda.get_device_name(device)
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def provenance(device: str = "cpu") -> dict:
    """Timer, synchronisation and memory method, device and its name (for run.json)."""
    cuda = is_cuda(device)
    info = {
        "timer": "time.perf_counter",
        "device": str(device),
        "device_name": device_name(device),
        "cuda_synchronize": cuda,
        "peak_memory": memory_method(device),
        "cpu_count": os.cpu_count(),
    }
    if cuda:
        import torch

        info["torch_cuda"] = torch.version.cuda
    return info

"""Executors: run a run's chunks of work somewhere and hand back their results.

The runner (:mod:`qtts_bench.runner`) builds the work of one run (dataset x system point) as a
list of tasks, chunks of utterances; an executor maps the run's ``_work`` over them and yields
``(task_index, records, timing)`` as chunks finish. The runner writes every finished chunk to
the results store at once (the store is keyed by (id, draw), so completion order does not
matter), so whatever executor ran it, a killed run resumes.

- ``local`` (default): in this process (``jobs: 1``) or in forked worker processes
  (``jobs: N`` / ``auto``), which inherit the loaded system and metrics: one model load.
- ``pipelined``: the system and model metrics in this process (any device), CPU-bound metrics
  in forked workers, overlapping (:mod:`qtts_bench.executors.pipelined`).
- ``ray``: Ray actors, one model load per actor (:mod:`qtts_bench.executors.ray`); optional
  extra ``ray``; imported only when chosen.
"""

from __future__ import annotations

import os

from ..errors import ConfigError

EXECUTORS = ("local", "pipelined", "ray")


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity mask, else the machine's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return max(1, os.cpu_count() or 1)


def resolve_jobs(value) -> int:
    """``jobs`` as given (int, numeric string or ``auto``) -> worker count (auto: usable cores)."""
    if value is None:
        return 1
    if isinstance(value, str):
        if value.strip().lower() == "auto":
            return usable_cores()
        if not value.strip().isdigit():
            raise ConfigError(f"jobs: expected a number >= 1 or 'auto', got '{value}'")
        value = int(value)
    if isinstance(value, bool) or int(value) < 1:
        raise ConfigError(f"jobs: expected a number >= 1 or 'auto', got {value!r}")
    return int(value)


_OPENBLAS_SET = ("openblas_set_num_threads", "openblas_set_num_threads64_", "scipy_openblas_set_num_threads64_",
                 "scipy_openblas_set_num_threads")
_OPENBLAS_GET = ("openblas_get_num_threads", "openblas_get_num_threads64_", "scipy_openblas_get_num_threads64_",
                 "scipy_openblas_get_num_threads")


def _openblas_libraries():
    """ctypes handles of the OpenBLAS copies loaded in this process (numpy's and scipy's wheels
    each bundle one), found in /proc/self/maps (Linux)."""
    import ctypes

    paths = set()
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                path = line.rsplit(" ", 1)[-1].strip()
                if "openblas" in path.lower() and ".so" in path:
                    paths.add(path)
    except OSError:
        return []
    libs = []
    for path in sorted(paths):
        try:
            libs.append(ctypes.CDLL(path))
        except OSError:
            continue
    return libs


def blas_threads(n: int | None = None) -> int | None:
    """Set the BLAS thread count of this process to ``n`` (None: leave it) -> the count before.

    Scoring runs one BLAS thread per worker process: the workers are the parallelism, and
    numpy's dot products (SI-SDR) both run 3-7x slower with two BLAS threads per worker on a
    busy 2-core machine (measured: 6.7 vs 0.9 ms for 16,000 samples) and sum in a different
    order, so the last bits of a value would depend on the thread count. threadpoolctl is used
    when installed, else OpenBLAS's own ``*_set_num_threads`` (any BLAS but OpenBLAS is then
    left alone).
    """
    try:
        from threadpoolctl import threadpool_info, threadpool_limits

        before = max((i["num_threads"] for i in threadpool_info() if i.get("user_api") == "blas"), default=None)
        if n is not None:
            threadpool_limits(n, user_api="blas")
        return before
    except ImportError:
        pass
    before = None
    for lib in _openblas_libraries():
        get = next((getattr(lib, name) for name in _OPENBLAS_GET if hasattr(lib, name)), None)
        setter = next((getattr(lib, name) for name in _OPENBLAS_SET if hasattr(lib, name)), None)
        if get is not None:
            before = max(before or 0, int(get()))
        if setter is not None and n is not None:
            setter(int(n))
    return before


def make_executor(name, jobs: int, address: str | None = None, jobs_given: bool = True):
    """``name`` ("local" / "pipelined" / "ray" / None) -> an executor; an executor object is returned as is.
    ``jobs_given``: False when ``jobs`` is only the default (Ray then uses the cluster's CPUs)."""
    if name is not None and not isinstance(name, str):
        return name
    name = name or "local"
    if name == "local":
        if address:
            raise ConfigError("--address is for --executor ray")
        from .local import LocalExecutor

        return LocalExecutor(jobs)
    if name == "pipelined":
        if address:
            raise ConfigError("--address is for --executor ray")
        from .pipelined import PipelinedExecutor

        return PipelinedExecutor(jobs)
    if name == "ray":
        from .ray import RayExecutor

        return RayExecutor(jobs, address, jobs_given=jobs_given)
    raise ConfigError(f"executor '{name}': expected one of {', '.join(EXECUTORS)}")

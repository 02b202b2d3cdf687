"""Executors: run a run's chunks of work somewhere and hand back their results.

The runner (:mod:`qtts_bench.runner`) builds the work of one run (dataset x system point) as a
list of tasks, chunks of utterances; an executor maps the run's ``_work`` over them and yields
``(task_index, records, timing)`` as chunks finish. The runner writes every finished chunk to
the results store at once (the store is keyed by (id, draw), so completion order does not
matter), so whatever executor ran it, a killed run resumes.

- ``local`` (default): in this process (``jobs: 1``) or in forked worker processes
  (``jobs: N`` / ``auto``), which inherit the loaded system and metrics: one model load.
- ``ray``: Ray actors, one model load per actor (:mod:`qtts_bench.executors.ray`); optional
  extra ``ray``; imported only when chosen.
"""

from __future__ import annotations

import os

from ..errors import ConfigError

EXECUTORS = ("local", "ray")


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


def make_executor(name, jobs: int, address: str | None = None, jobs_given: bool = True):
    """``name`` ("local" / "ray" / None) -> an executor; an executor object is returned as is.
    ``jobs_given``: False when ``jobs`` is only the default (Ray then uses the cluster's CPUs)."""
    if name is not None and not isinstance(name, str):
        return name
    name = name or "local"
    if name == "local":
        if address:
            raise ConfigError("--address is for --executor ray")
        from .local import LocalExecutor

        return LocalExecutor(jobs)
    if name == "ray":
        from .ray import RayExecutor

        return RayExecutor(jobs, address, jobs_given=jobs_given)
    raise ConfigError(f"executor '{name}': expected one of {', '.join(EXECUTORS)}")

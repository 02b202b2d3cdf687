"""Pipelined executor: the system and the model metrics in this process, CPU metrics in workers.

For each chunk of new utterances this process runs the system (on the run's device, CUDA
included), hands the outputs of the chunk to a pool of forked worker processes that score the
CPU-bound metrics (those with ``Metric.cpu_bound``: PESQ, STOI, ESTOI, SI-SDR), and meanwhile
scores the other metrics (ASR, speaker, MOS models: batched, on the device, one load) itself,
then goes on to the next chunk while the workers are still busy. At most ``jobs`` chunks wait
for the workers (a bounded queue: memory stays flat on long datasets). Results come back in
task order. Chunks that add metrics to existing records ("fill") run in this process.

When it pays: a system or model metrics on a GPU (the local executor cannot fork on CUDA, so
there it scores everything in one process). On a CPU-only machine the local executor's forked
workers already keep every core busy, and this one is no faster (docs/scale.md).

Workers are forked after the metrics are loaded and set up as the local executor's
(:func:`.local.init_forked_worker`: one BLAS and torch thread each, no folder lock, they die
with this process); this process scores with one BLAS thread, so values match ``jobs: 1``.
"""

from __future__ import annotations

import time
from collections import deque

_WORKER_METRICS = None  # {key: Metric} the forked workers score (set in the parent before forking)
_WORKER_TIMED = None


def _score_in_worker(inputs: list) -> tuple[list[dict], dict]:
    from ..runner import _score_all

    seconds: dict = {}
    started = time.perf_counter()
    entries = _score_all(_WORKER_METRICS, inputs, seconds, _WORKER_TIMED)
    return entries, {"metrics": seconds, "chunk": time.perf_counter() - started}


def split_metrics(metrics: dict) -> tuple[dict, dict]:
    """-> (CPU-bound metrics scored in the workers, the rest scored in this process)."""
    cpu = {k: m for k, m in metrics.items() if getattr(m, "cpu_bound", False)}
    return cpu, {k: m for k, m in metrics.items() if k not in cpu}


class PipelinedExecutor:
    name = "pipelined"

    def __init__(self, jobs: int = 1):
        self.jobs = max(1, int(jobs))

    def workers_for(self, n_tasks: int) -> int:
        return self.jobs

    def map(self, run, tasks: list):
        """Yield ``(index, records, timing)`` for every task, in task order."""
        import multiprocessing
        import os
        from concurrent.futures import ProcessPoolExecutor
        from concurrent.futures.process import BrokenProcessPool

        from ..errors import QttsBenchError

        from ..runner import _chunk_timing, _score_all
        from . import blas_threads
        from .local import init_forked_worker

        global _WORKER_METRICS, _WORKER_TIMED
        cpu, local = split_metrics(run.metrics)
        _WORKER_METRICS = cpu
        _WORKER_TIMED = {k: t for k, t in run.timed.items() if k in cpu}
        local_timed = {k: t for k, t in run.timed.items() if k in local}
        order = list(run.metrics)
        before = blas_threads(1)
        pool = None
        if cpu and any(task[0] != "fill" for task in tasks):
            pool = ProcessPoolExecutor(self.jobs, mp_context=multiprocessing.get_context("fork"),
                                       initializer=init_forked_worker, initargs=(os.getpid(), run.store))
        waiting: deque = deque()  # (index, records or Generated, local entries, future, timing), task order

        def finish(entry):
            index, generated, local_entries, future, timing = entry
            if future is None:
                return index, generated, timing
            try:
                worker_entries, worker_timing = future.result()
            except BrokenProcessPool as exc:
                raise QttsBenchError(
                    "a scoring worker process died (killed, or out of memory?); the utterances finished before "
                    "are stored: run the suite again to resume") from exc
            timing["chunk"] += worker_timing["chunk"]
            for key, seconds in worker_timing["metrics"].items():
                timing["metrics"][key] = timing["metrics"].get(key, 0.0) + seconds
            merged = [{k: both[k] for k in order if k in both}
                      for both in ({**a, **b} for a, b in zip(local_entries, worker_entries))]
            generated.attach(merged)
            return index, generated.records, timing

        try:
            for index, task in enumerate(tasks):
                if task[0] == "fill" or pool is None:
                    records, timing = run._work(task)
                    waiting.append((index, records, None, None, timing))
                else:
                    timing = _chunk_timing()
                    started = time.perf_counter()
                    generated = run._generate(task[1], timing)
                    future = pool.submit(_score_in_worker, generated.inputs) if generated.inputs else None
                    local_entries = _score_all(local, generated.inputs, timing["metrics"], local_timed)
                    timing["chunk"] = time.perf_counter() - started
                    if future is None:
                        generated.attach(local_entries)
                        waiting.append((index, generated.records, None, None, timing))
                    else:
                        waiting.append((index, generated, local_entries, future, timing))
                while waiting and (len(waiting) > self.jobs or waiting[0][3] is None or waiting[0][3].done()):
                    yield finish(waiting.popleft())
            while waiting:
                yield finish(waiting.popleft())
        finally:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
            _WORKER_METRICS = _WORKER_TIMED = None
            if before:
                blas_threads(before)

    def close(self) -> None:
        pass

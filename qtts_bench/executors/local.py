"""Local executor: chunks in this process, or in forked workers that inherit the loaded run.

Workers are forked after the system and metrics are loaded (one model load for all of them),
die with their parent (``PR_SET_PDEATHSIG``, else a watcher thread), drop the parent's folder
lock, and run torch and BLAS single-threaded (the workers are the parallelism); ``jobs: 1``
scores in this process with one BLAS thread too, so values do not depend on ``jobs``.
Results come back in task order.
"""

from __future__ import annotations

import sys
import time

_WORKER_RUN = None  # the run a forked worker computes for (set in the parent before forking)


def _worker_work(task):
    return _WORKER_RUN._work(task)


def _init_worker(parent_pid: int) -> None:
    init_forked_worker(parent_pid, _WORKER_RUN.store if _WORKER_RUN is not None else None)


def init_forked_worker(parent_pid: int, store=None) -> None:
    """Set up a worker process forked from a run (local and pipelined executors): it dies with
    ``parent_pid``, drops the inherited lock of ``store`` (the parent holds the folder lock; a
    worker must not keep it) and runs torch and BLAS single-threaded."""
    exit_with_parent(parent_pid)
    if store is not None:
        store.forget_lock()
    # A forked child that reuses the parent's OpenMP thread pool deadlocks in torch; one
    # thread per worker avoids it (the workers are the parallelism).
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)
    from . import blas_threads

    blas_threads(1)


PR_SET_PDEATHSIG = 1


def exit_with_parent(parent_pid: int, use_prctl: bool = True) -> str:
    """Make this (forked worker) process die when ``parent_pid`` does, even by SIGKILL.

    Linux: ``prctl(PR_SET_PDEATHSIG, SIGKILL)``; then the parent is checked once more, since it
    may have died before the call (the signal only comes for a death after it). Elsewhere, or
    when prctl fails: a daemon thread polls ``os.getppid()`` twice a second and ``os._exit``s
    once the process has been re-parented. -> which mechanism is in place.
    """
    import os
    import signal

    mechanism = None
    if use_prctl and sys.platform.startswith("linux"):
        import ctypes

        try:
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) == 0:
                mechanism = "prctl"
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent_pid:  # the parent died before (or while) we set this up
        os._exit(1)
    if mechanism is None:
        import threading

        def _watch() -> None:
            while os.getppid() == parent_pid:
                time.sleep(0.5)
            os._exit(1)

        threading.Thread(target=_watch, name="qtts-bench-parent-watch", daemon=True).start()
        mechanism = "thread"
    return mechanism


class LocalExecutor:
    name = "local"

    def __init__(self, jobs: int = 1):
        self.jobs = max(1, int(jobs))

    def workers_for(self, n_tasks: int) -> int:
        return min(self.jobs, n_tasks) if n_tasks > 1 else 1

    def map(self, run, tasks: list):
        """Yield ``(index, records, timing)`` for every task, in task order."""
        if self.workers_for(len(tasks)) == 1:
            from . import blas_threads

            before = blas_threads(1)  # as in the workers: the same values with any jobs
            try:
                for index, task in enumerate(tasks):
                    records, timing = run._work(task)
                    yield index, records, timing
            finally:
                if before:
                    blas_threads(before)
            return
        import multiprocessing
        import os
        from concurrent.futures import ProcessPoolExecutor

        global _WORKER_RUN
        _WORKER_RUN = run
        try:
            with ProcessPoolExecutor(self.workers_for(len(tasks)), mp_context=multiprocessing.get_context("fork"),
                                     initializer=_init_worker, initargs=(os.getpid(),)) as pool:
                for index, (records, timing) in enumerate(pool.map(_worker_work, tasks)):
                    yield index, records, timing
        finally:
            _WORKER_RUN = None

    def close(self) -> None:
        pass

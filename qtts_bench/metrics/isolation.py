"""Run native-code metric functions in a guarded worker process.

A crash inside a C extension (the ITU PESQ code overflows its 50-utterance table with a
SIGSEGV, for instance) kills the Python process that called it: a whole run, for one bad
utterance. :func:`call` runs a function in a persistent child process instead. A crash of
the child becomes :class:`~qtts_bench.errors.MetricFailure` ("metric process crashed: SIGSEGV"),
recorded as that utterance's missing value; the next call starts a new child.

Metrics opt in; they call :func:`call` themselves, so every path that scores them (the runner
with any ``jobs``, ``qtts-bench score``, library use) gets the guard. The signal metrics do it
with the class attribute ``isolate = True`` (PESQ); any other metric can wrap its native call::

    from qtts_bench.metrics import isolation
    value = isolation.call(my_module_level_function, reference, estimate, mode="wb")

What crosses the process boundary is pickled: the function must be importable by name (a
module-level function, or a bound method of a picklable object such as a metric whose state is
its parameters), and its arguments and result picklable. An exception raised by the function is
re-raised in the caller unchanged.

The worker is a fresh interpreter (``subprocess``, not ``fork``: nothing of the caller's threads,
locks or loaded models is inherited) that reads requests on its stdin and answers on a private
copy of its stdout; whatever the native code prints goes to stderr. It is started on first use,
reused across calls (measured: ~0.4 ms per PESQ call for a 2.7 s utterance, against ~27 ms for
PESQ itself; the start, once per process, ~0.2 s) and exits when its parent goes away (end of
file on its stdin), so it never outlives a killed run. A process that forks (the runner's ``jobs`` workers) does not share
its parent's worker: each process starts its own.

Time limits: ``Worker.call(..., timeout=SECONDS)`` kills the child when no reply came within
that time (:class:`~qtts_bench.errors.MetricFailure` "timed out after N s"); the next call
starts a new one. :class:`TimedMetric` uses it for a suite's ``timeout:`` on a metric: the metric
is built from its registry name and parameters and loaded in a worker of its own (loading is
not timed), and each utterance's score must come back within the limit.
"""

from __future__ import annotations

import atexit
import json
import os
import pickle
import select
import signal
import struct
import subprocess
import sys
import threading
import weakref
from pathlib import Path

from ..errors import MetricFailure

_HEADER = struct.Struct("<Q")  # length prefix of every pickled message


def call(func, /, *args, **kwargs):
    """``func(*args, **kwargs)`` in this process's isolation worker; its result or its exception.

    Raises:
        MetricFailure: the worker died during the call ("metric process crashed: SIGSEGV", or the
            exit code); the worker is restarted on the next call.
    """
    return _worker().call(func, args, kwargs)


def timeout_reason(seconds: float) -> str:
    """The missing-value reason for a call that ran longer than ``seconds``."""
    return f"timed out after {seconds:g} s"


def crash_reason(returncode: int | None) -> str:
    """The missing-value reason for a worker that ended with ``returncode`` (negative: a signal)."""
    if returncode is not None and returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"metric process crashed: {name}"
    return f"metric process exited unexpectedly (exit code {returncode})"


class Worker:
    """One persistent child interpreter that runs pickled calls; restarted after a crash."""

    def __init__(self) -> None:
        self._proc: subprocess.Popen | None = None
        self._owner = os.getpid()
        self._lock = threading.Lock()
        self.starts = 0  # how many children this worker has started (tests, diagnostics)
        _ALL_WORKERS.add(self)

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    def call(self, func, args: tuple = (), kwargs: dict | None = None, timeout: float | None = None):
        """``func(*args, **kwargs)`` in the child. ``timeout`` (s): no reply by then kills the
        child and raises MetricFailure ("timed out after N s")."""
        request = pickle.dumps((func, args, kwargs or {}), protocol=pickle.HIGHEST_PROTOCOL)
        with self._lock:
            proc = self._running()
            try:
                _send(proc.stdin, request)
                # One request, one reply: nothing is buffered between calls, so the pipe itself shows
                # whether the reply (or the end of a crashed child) has come.
                answered = timeout is None or bool(select.select([proc.stdout], [], [], timeout)[0])
                reply = _receive(proc.stdout) if answered else None
            except (EOFError, OSError):  # the child died: crashed in the call, or before it
                reason = crash_reason(self._reap())
                raise MetricFailure(reason) from None
            except BaseException:  # interrupted mid-call: the reply would desynchronise the pipe
                self.close(kill=True)
                raise
            if reply is None:  # still busy after `timeout` s: stop it (threads cannot be killed; processes can)
                self.close(kill=True)
                raise MetricFailure(timeout_reason(timeout))
        status, value = pickle.loads(reply)
        if status == "ok":
            return value
        raise value

    def close(self, kill: bool = False) -> None:
        """Stop the child (end of input, then SIGKILL if it does not exit within 2 s)."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if kill:
            proc.kill()
        for stream in (proc.stdin, proc.stdout):
            try:
                stream.close()
            except OSError:
                pass
        try:
            proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def _running(self) -> subprocess.Popen:
        if self._proc is not None and self._proc.poll() is not None:
            self._reap()
        if self._proc is None:
            self._proc = _start()
            self.starts += 1
        return self._proc

    def _reap(self) -> int | None:
        proc, self._proc = self._proc, None
        if proc is None:
            return None
        for stream in (proc.stdin, proc.stdout):
            try:
                stream.close()
            except OSError:
                pass
        try:
            return proc.wait(timeout=10)
        except subprocess.TimeoutExpired:  # alive but not answering: not trustworthy any more
            proc.kill()
            proc.wait()
            return proc.returncode

    def _forget_after_fork(self) -> None:
        """In a forked child: drop (without stopping) the parent's worker; start our own on demand."""
        proc, self._proc = self._proc, None
        self._lock = threading.Lock()
        self._owner = os.getpid()
        if proc is not None:
            for stream in (proc.stdin, proc.stdout):
                try:  # our copies of the parent's pipe ends; closing them leaves the parent's open
                    stream.close()
                except (OSError, ValueError):
                    pass
            proc.returncode = 0  # not our child: keep Popen.__del__ from waiting on it


_WORKER: Worker | None = None  # the shared worker of call()
_ALL_WORKERS: weakref.WeakSet = weakref.WeakSet()  # every Worker of this process (fork and exit handling)


def _worker() -> Worker:
    global _WORKER
    if _WORKER is None:
        _WORKER = Worker()
    return _WORKER


def _after_fork_in_child() -> None:
    for worker in list(_ALL_WORKERS):
        worker._forget_after_fork()


def _at_exit() -> None:
    for worker in list(_ALL_WORKERS):
        if worker._owner == os.getpid():
            worker.close()


# ------------------------------------------------------------------------------ time limits
class TimedMetric:
    """One metric scored in a worker process of its own, each utterance within ``seconds``.

    The worker builds the metric with ``METRICS.create(name, **params)`` (so it must be a
    registered metric: built in or a plugin) and loads it on ``device`` when it starts, untimed.
    :meth:`score` raises MetricFailure("timed out after N s") when a score takes longer; the
    worker is killed, and the next call starts and loads a new one.
    """

    def __init__(self, name: str, params: dict, device: str, seconds: float):
        self.spec = (name, dict(params), device)
        self.seconds = float(seconds)
        self.worker = Worker()
        self._ready: int | None = None  # pid of the worker process holding the loaded metric

    def score(self, inputs):
        """-> the metric's Score for ``inputs`` (an Inputs), or its exception, raised here."""
        if self._ready is None or self.worker.pid != self._ready:
            self.worker.call(_load_metric, (self.spec,))
            self._ready = self.worker.pid
        return self.worker.call(_score_metric, (self.spec, inputs), timeout=self.seconds)

    def close(self) -> None:
        self.worker.close()
        self._ready = None


_LOADED_METRICS: dict[str, object] = {}  # in a worker: spec -> the loaded metric


def _metric(spec: tuple):
    key = json.dumps(spec, sort_keys=True, default=str)
    if key not in _LOADED_METRICS:
        from ..registry import METRICS

        name, params, device = spec
        metric = METRICS.create(name, **params)
        metric.load(device)
        _LOADED_METRICS[key] = metric
    return _LOADED_METRICS[key]


def _load_metric(spec: tuple) -> None:
    _metric(spec)


def _score_metric(spec: tuple, inputs):
    return _metric(spec).score(inputs)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
atexit.register(_at_exit)


# ------------------------------------------------------------------------------ the child
def _start() -> subprocess.Popen:
    package_root = str(Path(__file__).resolve().parents[2])
    code = (f"import sys; sys.path.insert(0, {package_root!r}); "
            "from qtts_bench.metrics.isolation import _serve; _serve()")
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            close_fds=True)
    # The caller's import path, so functions defined in its modules unpickle in the child.
    _send(proc.stdin, pickle.dumps([p for p in sys.path if isinstance(p, str)]))
    return proc


def _serve() -> None:
    """Child main loop: requests on stdin, replies on the original stdout; exits at end of input."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    replies = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # anything printed by the native code goes to stderr, not into the protocol
    requests = sys.stdin.buffer
    try:
        parent_path = pickle.loads(_receive(requests))
    except EOFError:
        return
    sys.path[:] = list(dict.fromkeys([*parent_path, *sys.path]))
    while True:
        try:
            request = _receive(requests)
        except EOFError:  # the parent closed the pipe or died
            return
        try:
            func, args, kwargs = pickle.loads(request)
            reply = ("ok", func(*args, **kwargs))
        except BaseException as exc:  # noqa: BLE001 - every failure goes back to the caller
            reply = ("error", exc)
        _send(replies, _dumps_reply(reply))


def _dumps_reply(reply: tuple) -> bytes:
    try:
        data = pickle.dumps(reply, protocol=pickle.HIGHEST_PROTOCOL)
        pickle.loads(data)  # some exceptions pickle but cannot be rebuilt (custom __init__)
        return data
    except Exception as exc:  # noqa: BLE001
        status, value = reply
        what = value if status == "error" else exc
        substitute = RuntimeError(f"{type(what).__name__}: {what} (in the isolated metric process)")
        return pickle.dumps(("error", substitute), protocol=pickle.HIGHEST_PROTOCOL)


def _send(stream, data: bytes) -> None:
    stream.write(_HEADER.pack(len(data)))
    stream.write(data)
    stream.flush()


def _receive(stream) -> bytes:
    header = _read_exactly(stream, _HEADER.size)
    return _read_exactly(stream, _HEADER.unpack(header)[0])


def _read_exactly(stream, n: int) -> bytes:
    chunks, remaining = [], n
    while remaining:
        chunk = stream.read(remaining)
        if not chunk:
            raise EOFError("isolation pipe closed")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)

"""Ray executor: a run's chunks on Ray actors, one model load per actor.

``qtts-bench run SUITE --executor ray [--address ADDR] [--jobs N]``. The driver (this process)
validates the suite, holds the run folder's lock, writes run.json, items.jsonl and
summary.json; the actors compute. Each actor rebuilds the run from the validated suite
(pickled before any model is loaded), loads the system and the metrics once, warms the system
up like the local executor does, then runs the runner's own ``_Run._work`` on the chunks it is
given, so values are those of the local executor. Saved outputs travel back with the records
and the driver writes them, so a cluster needs no shared file system for results (adding a
metric to a run whose outputs sit on the driver's disk re-runs the system on an actor that
cannot see them; its output hash is checked).

Chunks are handed out two per actor and stored in the order they finish (the store is keyed
by (id, draw)). An actor that dies (killed, out of memory, node lost) is replaced and its
chunks re-queued, up to ``max_retries`` times per chunk; a chunk that fails more often, or a
cluster that goes away, ends the run with a message; what was stored stays, and the next run
resumes from it.

Actors: ``--jobs`` of them (``auto``: the usable cores here); with ``--address`` and no
``--jobs``, one per CPU of the cluster. Each asks for one CPU, and one GPU when the device is
CUDA. Without ``--address`` a local Ray instance with ``jobs`` CPUs is started (no dashboard)
and stopped at the end.
"""

from __future__ import annotations

import logging
from collections import deque

from ..errors import ConfigError, QttsBenchError

log = logging.getLogger("qtts_bench")


def _require_ray():
    try:
        import ray
    except ImportError:
        raise ConfigError("--executor ray needs Ray, which is not installed: pip install 'qtts-bench[ray]'") from None
    return ray


class _Worker:
    """The actor body (wrapped by ``ray.remote`` lazily, so importing this module needs no Ray)."""

    def __init__(self, validated, spec: dict):
        from pathlib import Path

        from ..runner import _Run

        device = spec["device"]
        for metric in validated.metrics.values():
            metric.load(device)
        dataset = validated.datasets[spec["dataset_key"]]
        items = dataset.items[:spec["n_items"]]
        point = next(p for p in validated.points if p.label == spec["label"])
        self.run = _Run(validated, spec["dataset_key"], dataset, items, point,
                        validated.metrics_for(spec["dataset_key"]),
                        Path(spec["out_root"]), device, False, spec["command"], spec["env"], spec["jobs"])
        self.run.return_audio = True
        from . import blas_threads

        blas_threads(1)
        self.run.system.load(device)
        self.run.open_output_cache()  # this node's cache folder (nothing is shared through the driver)
        if spec.get("warmup_item") is not None:
            self.run._warmup(next(i for i in items if i.id == spec["warmup_item"]))

    def pid(self) -> int:
        import os

        return os.getpid()

    def work(self, task):
        return self.run._work(task)


class RayExecutor:
    name = "ray"
    max_retries = 3
    in_flight_per_actor = 2

    def __init__(self, jobs: int = 1, address: str | None = None, jobs_given: bool = True):
        self.ray = _require_ray()
        self.jobs, self.address, self.jobs_given = jobs, address, jobs_given
        self._started_here = False
        self._validated = None
        self.device = "cpu"
        self.actors: list = []
        self.requeued = 0

    # -- lifecycle
    def prepare(self, validated, device: str) -> None:
        """Connect (or start a local instance) and ship the validated suite, before any model loads."""
        ray = self.ray
        if not ray.is_initialized():
            try:
                if self.address:
                    ray.init(address=self.address, log_to_driver=False)
                else:
                    ray.init(num_cpus=self.jobs, include_dashboard=False, log_to_driver=False)
                    self._started_here = True
            except Exception as exc:  # ConnectionError, RuntimeError, ...
                raise ConfigError(f"--executor ray: cannot connect to Ray"
                                  f"{' at ' + self.address if self.address else ''}: {exc}") from None
        if self.address and not self.jobs_given:
            self.jobs = max(1, int(ray.cluster_resources().get("CPU", 1)))
        self.device = device
        self._validated = ray.put(validated)

    def close(self) -> None:
        self._kill_actors()
        if self._started_here and self.ray.is_initialized():
            self.ray.shutdown()
            self._started_here = False

    def workers_for(self, n_tasks: int) -> int:
        return max(1, min(self.jobs, n_tasks))

    # -- work
    def _spec(self, run) -> dict:
        return {"device": run.device, "dataset_key": run.dataset_key, "n_items": len(run.items),
                "label": run.point.label, "out_root": str(run.out_root), "command": run.command,
                "env": run.env, "jobs": run.jobs,
                "warmup_item": run.items[0].id if run.items and run.v.suite.warmup else None}

    def _new_actor(self, spec: dict):
        # one BLAS thread, as in the local executor's workers (same values; see blas_threads)
        env = {name: "1" for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
        remote = self.ray.remote(_Worker).options(
            num_cpus=1, num_gpus=1 if spec["device"].startswith("cuda") else 0, max_restarts=0,
            runtime_env={"env_vars": env})
        return remote.remote(self._validated, spec)

    def _kill_actors(self) -> None:
        for actor in self.actors:
            try:
                self.ray.kill(actor)
            except Exception:  # already gone
                pass
        self.actors = []

    def map(self, run, tasks: list):
        """Yield ``(index, records, timing)`` as chunks finish (any order)."""
        ray = self.ray
        if self._validated is None:
            raise QttsBenchError("RayExecutor.prepare() was not called")
        from ray.exceptions import GetTimeoutError, RayActorError, RayTaskError

        spec = self._spec(run)
        queue = deque(range(len(tasks)))
        attempts = [0] * len(tasks)
        self.actors = [self._new_actor(spec) for _ in range(self.workers_for(len(tasks)))]
        in_flight: dict = {}  # ObjectRef -> (task index, actor)
        load: dict = {}       # actor -> chunks in flight

        def feed(actor):
            while queue and load.get(actor, 0) < self.in_flight_per_actor:
                index = queue.popleft()
                attempts[index] += 1
                in_flight[actor.work.remote(tasks[index])] = (index, actor)
                load[actor] = load.get(actor, 0) + 1

        try:
            for actor in self.actors:
                feed(actor)
            while in_flight:
                ready, _ = ray.wait(list(in_flight), num_returns=1)
                ref = ready[0]
                index, actor = in_flight.pop(ref)
                load[actor] -= 1
                try:
                    records, timing = ray.get(ref)
                except RayTaskError as exc:  # the runner's own code failed: not a worker's death
                    cause = exc.as_instanceof_cause() if hasattr(exc, "as_instanceof_cause") else exc
                    if isinstance(cause, QttsBenchError):
                        raise cause from None
                    raise QttsBenchError(f"a Ray worker failed on chunk {index} of "
                                         f"{run.dataset_key}/{run.point.label}: {exc}") from None
                except (RayActorError, GetTimeoutError) as exc:
                    if attempts[index] > self.max_retries:
                        raise QttsBenchError(
                            f"Ray workers died {attempts[index]} times on one chunk of {run.dataset_key}/"
                            f"{run.point.label} ({type(exc).__name__}); what was stored is kept: re-run to "
                            "resume, or use --executor local") from None
                    log.warning("a Ray worker died (%s); chunk %d re-queued", type(exc).__name__, index)
                    self.requeued += 1
                    queue.appendleft(index)
                    if actor in self.actors:  # replace it once; its other chunks fail and re-queue too
                        self.actors.remove(actor)
                        try:
                            ray.kill(actor)
                        except Exception:
                            pass
                        fresh = self._new_actor(spec)
                        self.actors.append(fresh)
                        feed(fresh)
                    else:
                        for live in self.actors:
                            feed(live)
                    continue
                except Exception as exc:  # the cluster went away
                    raise QttsBenchError(f"Ray failed during {run.dataset_key}/{run.point.label}: "
                                         f"{type(exc).__name__}: {exc}; what was stored is kept: re-run to resume")
                yield index, records, timing
                feed(actor)
        finally:
            self._kill_actors()

"""Runner: a validated suite -> per-utterance records in the results store.

For each run (dataset x system x grid point): load the system once, warm it up on the first
item (untimed, unscored), then per utterance: read and resample the input, run the system
(timed), check its output, score every metric, and append one JSON line. Completed ids are
skipped on resume. Failures become records with reasons; the run goes on.

A deterministic system's outputs are kept in the output cache (:mod:`qtts_bench.output_cache`)
shared by every run folder: a later run of the same system on the same inputs takes the output
from there instead of calling the system (``output_cache`` in the suite; docs/scale.md).

The runner builds each run's work as tasks (chunks of utterances: new ones, or existing records
that lack a metric added to the suite since); an executor (:mod:`qtts_bench.executors`: local
processes, or Ray) runs them through :meth:`_Run._work` and the runner stores the results. Every
run times itself: system calls, each metric, and the harness around them (summary.json
``timing``; docs/results-format.md).
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from . import RESULTS_SCHEMA_VERSION
from .audio import Audio, AudioError, check_usable, provenance as audio_provenance, read_audio, write_audio
from .cache import audio_key
from .data.manifest import Dataset, Item
from .errors import ConfigError, MetricFailure, QttsBenchError, SystemFailure
from .executors import make_executor, resolve_jobs
from .executors.local import PR_SET_PDEATHSIG, exit_with_parent  # noqa: F401  (public here since 0.x)
from .metrics.base import Inputs, Metric
from .output_cache import NOT_TIMED, OutputCache, default_location, resolve_mode, system_identity
from .provenance import environment, resolve_device
from .registry import SYSTEMS
from .store import RunStore, record_key, summarize, unwritable as store_unwritable
from .suite import SystemPoint, ValidatedSuite
from .systems.base import Generation, Request

log = logging.getLogger("qtts_bench")

@dataclass
class RunOutcome:
    label: str
    dataset: str
    folder: Path
    summary: dict
    computed: int   # utterances computed in this invocation (0 when fully resumed)
    filled: int = 0  # existing utterances given metrics added since they were computed
    retried: int = 0  # of ``computed``: utterances whose system had failed before (--retry-failed)
    startup: dict | None = None  # first outcome only: the suite's start-up (device, metric loads)


def item_seed(suite_seed: int, item_id: str) -> int:
    """Deterministic per-utterance seed, independent of order and of --limit."""
    return int(hashlib.sha256(f"{suite_seed}:{item_id}".encode()).hexdigest()[:8], 16)


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    if "torch" in sys.modules:
        sys.modules["torch"].manual_seed(seed)


# ------------------------------------------------------------------------------- system call
@dataclass
class SystemCall:
    """What the runner keeps from one system call (or from its output reused from the cache)."""

    estimate: Audio                 # the output, float32 (n,) at the system's rate
    info: dict                      # the record's "system" block (timing, bits, seed, device, ...)
    inputs: dict[str, Audio]        # the item's usable reference / prompt audio, as read
    unusable: dict[str, str]        # field -> why its audio could not be used
    codes: np.ndarray | None        # int (n_codebooks, frames) of a token system, else None
    cache: dict                     # the record's "output_cache" block: computed or reused, key, file


def _as_output(samples, what: str) -> np.ndarray:
    out = np.asarray(samples, dtype=np.float32)
    if out.ndim != 1:
        out = np.squeeze(out)
        if out.ndim != 1:
            raise SystemFailure(f"{what} has shape {np.shape(samples)}; expected mono (n,)")
    try:
        check_usable(out, what)
    except AudioError as exc:
        raise SystemFailure(str(exc)) from None
    return out


def _system_info(generation: Generation, audio: np.ndarray, sample_rate: int, request: Request) -> dict:
    """The runner's record of one system call (read by the speed, bitrate and codebook metrics)."""
    return {"seconds": generation.seconds, "peak_memory_bytes": generation.peak_memory,
            "ttft_seconds": generation.ttft, "audio_seconds": len(audio) / sample_rate,
            "input_seconds": len(request.reference) / sample_rate if request.reference is not None else None,
            "encoded_bits": generation.encoded_bits, "nominal_bitrate": generation.nominal_bitrate,
            **generation.code_info, **generation.extra}


# ------------------------------------------------------------------------------- scoring
def _score_all(metrics: dict[str, Metric], inputs: list[Inputs], seconds: dict | None = None,
               timed: dict | None = None) -> list[dict]:
    """Score every metric on a chunk of utterances -> per-utterance {metric_key: entry}.

    ``seconds``: when given, each metric's wall time on the chunk is added to ``seconds[key]``.
    ``timed``: metric key -> :class:`~qtts_bench.metrics.isolation.TimedMetric` for the metrics
    with a ``timeout``; they score one utterance at a time in their own worker process.
    """
    entries = [{} for _ in inputs]
    for key, metric in metrics.items():
        started = time.perf_counter()
        if not inputs:
            results = []
        elif timed and key in timed:
            results = []
            for inp in inputs:
                try:
                    results.append(timed[key].score(inp))
                except Exception as exc:  # a timeout or crash is a MetricFailure with its reason
                    results.append(exc)
        elif hasattr(metric, "score_batch"):
            try:
                results = metric.score_batch(inputs)
            except Exception as exc:  # one bad batch must not hide per-item reasons
                results = [exc] * len(inputs)
        else:
            results = []
            for inp in inputs:
                try:
                    results.append(metric.score(inp))
                except Exception as exc:
                    results.append(exc)
        if seconds is not None:
            seconds[key] = seconds.get(key, 0.0) + time.perf_counter() - started
        for slot, result in zip(entries, results):
            slot[key] = metric_entry(result)
    return entries


def metric_entry(result) -> dict:
    """A Score or the exception a metric raised -> the JSON entry stored for one utterance.

    A metric that does not apply (NotApplicable) is stored with ``"not_applicable": true``:
    summaries and reports count it apart from failures.
    """
    from .errors import NotApplicable

    if isinstance(result, BaseException):
        if isinstance(result, NotApplicable):
            return {"value": None, "reason": str(result), "not_applicable": True}
        if isinstance(result, (MetricFailure, AudioError)):
            return {"value": None, "reason": str(result)}
        return {"value": None, "reason": f"metric error: {type(result).__name__}: {result}"}
    value = float(result.value)
    if not np.isfinite(value):
        return {"value": None, "reason": f"metric returned a non-finite value ({value})"}
    entry = {"value": value}
    if result.stats:
        entry["stats"] = result.stats
    if result.extra:
        entry["extra"] = result.extra
    return entry


# ------------------------------------------------------------------------------- one run
FLUSH_RECORDS = 64    # finished records buffered at most before items.jsonl is appended (and fsynced)
FLUSH_SECONDS = 1.0   # ... or this long since the last append


def timed_metrics(validated: ValidatedSuite, metrics: dict[str, Metric], device: str) -> dict:
    """The suite's metrics that have a ``timeout``: key -> TimedMetric (a worker started on first use)."""
    from .metrics.isolation import TimedMetric

    return {spec.key: TimedMetric(spec.name, spec.params, device, spec.timeout)
            for spec in validated.suite.metrics if spec.timeout is not None and spec.key in metrics}


def _chunk_timing() -> dict:
    """Seconds spent in one chunk of work, by where (summed into the run's timing block)."""
    return {"chunk": 0.0, "system": 0.0, "audio_in": 0.0, "audio_out": 0.0, "output_cache": 0.0,
            "warmup": 0.0, "metrics": {}}


def _add_timing(total: dict, part: dict) -> None:
    for key, value in part.items():
        if isinstance(value, dict):
            _add_timing(total.setdefault(key, {}), value)
        else:
            total[key] = total.get(key, 0.0) + value


class _Run:
    def __init__(self, validated: ValidatedSuite, dataset_key: str, dataset: Dataset, items: list[Item],
                 point: SystemPoint, metrics: dict[str, Metric], out_root: Path, device: str,
                 progress: bool, command: list[str], env: dict, jobs: int = 1, executor=None,
                 timed: dict | None = None, retry_failed: bool = False):
        self.v, self.dataset_key, self.dataset, self.items = validated, dataset_key, dataset, items
        self.jobs = jobs
        self.retry_failed = retry_failed  # recompute failed system calls and failed metric values
        self.executor = executor
        self.point, self.metrics, self.device, self.progress = point, metrics, device, progress
        self.command, self.env = command, env
        self.out_root = Path(out_root)
        self.store = RunStore(self.out_root / validated.suite.name / dataset_key / point.label)
        self.system = SYSTEMS.create(point.name, **point.params)
        self.system.device = device
        # Metrics with a suite `timeout` score in killable worker processes (metrics/isolation.py).
        timed = timed if timed is not None else timed_metrics(validated, metrics, device)
        self.timed = {k: t for k, t in timed.items() if k in metrics}  # a dataset may restrict the metrics
        # Declared metadata + settings of every metric, once per run (settings may hash models). A
        # timeout is recorded beside the settings: it decides which values are missing, not any value.
        self.metrics_meta = {k: {**m.describe(), "settings": m.settings()} for k, m in self.metrics.items()}
        for key, limited in self.timed.items():
            self.metrics_meta[key]["timeout_seconds"] = limited.seconds
        self.kept_metrics: dict = {}   # metrics of earlier sessions no longer in the suite (kept, not summarised)
        self.return_audio = False      # Ray actors: hand saved outputs back to the driver instead of writing
        self._system_loaded = False
        self._warm = False             # warmed up in this process (a forked worker inherits the parent's)
        self.output_cache: OutputCache | None = None  # set by open_output_cache() once the system is loaded
        self.output_cache_reads = False  # False: outputs are only stored (never reused) in this run
        self.output_cache_info: dict | None = None    # run.json / summary.json "output_cache"
        self._output_cache_unwritable = False

    def _check_resume_compatible(self) -> None:
        """Resume only what the existing folder's results are compatible with.

        The system and its parameters must match. Metrics: one the folder already holds with
        other settings refuses (its old values would be mixed with new ones); one added to the
        suite is filled in for the existing records; one removed from it keeps its values in
        items.jsonl (listed in run.json ``metrics_not_summarised``) but is not summarised.
        """
        previous = self.store.read_run()
        if previous is None:
            return
        old = {"system": previous["system"]["name"], "params": previous["run"]["params"]}
        new = {"system": self.point.name, "params": self.point.params}
        if json_norm(old) != json_norm(new):
            diff = [k for k in new if json_norm(old.get(k)) != json_norm(new[k])]
            raise ConfigError(
                f"{self.store.folder} holds results made with different {', '.join(diff)}; "
                f"resuming would mix them. Use --out for a new folder or delete that one.")
        old_metrics = {**previous.get("metrics_not_summarised", {}), **previous.get("metrics", {})}
        changed = [k for k in self.metrics if k in old_metrics
                   and json_norm(old_metrics[k].get("settings")) != json_norm(self.metrics_meta[k]["settings"])]
        if changed:
            detail = "; ".join(
                f"{k}: " + ", ".join(f"{s}: {json_norm(old_metrics[k]['settings']).get(s)!r} -> "
                                     f"{json_norm(self.metrics_meta[k]['settings']).get(s)!r}"
                                     for s in sorted(set(old_metrics[k]["settings"]) | set(self.metrics_meta[k]["settings"]))
                                     if json_norm(old_metrics[k]["settings"]).get(s)
                                     != json_norm(self.metrics_meta[k]["settings"]).get(s))
                for k in changed)
            raise ConfigError(
                f"{self.store.folder} holds results made with different metrics settings ({detail}); "
                f"resuming would mix old and new values of {', '.join(changed)}. Give the changed metric a "
                "new key in the suite (e.g. `pesq_wb_pad: {metric: pesq_wb, params: ...}`: only it is then "
                "computed, from the saved outputs when kept), use --out for a new folder, or delete that one.")
        self.kept_metrics = {k: v for k, v in old_metrics.items() if k not in self.metrics}

    def execute(self) -> RunOutcome:
        """Run the missing utterances, holding the folder's lock throughout (a second run into
        the same folder fails at once, naming this one)."""
        with self.store.locked(self.command):
            return self._execute()

    def _plan(self, existing: list[dict]):
        """-> (new (item, draw) pairs, tasks, fill groups, retried pairs) for the current item set.

        With ``retry_failed``, an utterance whose system failed is computed again ("redo": its
        new record replaces the old one), and a metric value recorded as failed (not one that
        does not apply) is scored again on the existing output, like an added metric.
        """
        draws = range(self.v.suite.samples)
        by_key = {record_key(r): r for r in existing}
        todo, redo, fills = [], [], {}
        for item in self.items:
            for d in draws:
                record = by_key.get((item.id, d))
                if record is None:
                    todo.append((item, d))
                    continue
                if self.retry_failed and record.get("status") != "ok":
                    redo.append((item, d))
                    continue
                entries = record.get("metrics") or {}
                missing = tuple(k for k in self.metrics if k not in entries
                                or (self.retry_failed and _failed(entries[k])))
                if missing:
                    fills.setdefault(missing, []).append((item, d, record))
        chunk = max([int(m.params.get("batch_size", 1)) for m in self.metrics.values()] + [1])
        tasks = [("new", todo[i:i + chunk]) for i in range(0, len(todo), chunk)]
        tasks += [("redo", redo[i:i + chunk]) for i in range(0, len(redo), chunk)]
        for keys, group in fills.items():
            tasks += [("fill", group[i:i + chunk], keys) for i in range(0, len(group), chunk)]
        return todo + redo, tasks, fills, redo

    def _fill_needs_system(self, fills: dict) -> bool:
        for keys, group in fills.items():
            if any("codes" in self.metrics[k].requires for k in keys):
                return True
            for _item, _draw, record in group:
                if record.get("status") == "ok" and not self._saved_output(record):
                    return True
        return False

    def _saved_output(self, record: dict) -> Path | None:
        rel = record.get("output_audio")
        path = self.store.folder / rel if rel else None
        return path if path is not None and path.is_file() else None

    def _execute(self) -> RunOutcome:
        started = time.perf_counter()
        clock = {"system_load": 0.0, "warmup": 0.0, "output_cache": 0.0, "store": 0.0}
        self._check_resume_compatible()
        t = time.perf_counter()
        existing = self.store.read_records(repair=True)
        n_dropped = self.store.n_duplicates_dropped
        clock["store"] += time.perf_counter() - t
        todo, tasks, fills, redo = self._plan(existing)
        n_fill = sum(len(g) for g in fills.values())
        chunks = _chunk_timing()
        process_wall, workers = 0.0, 1
        filled: dict[tuple[str, int], dict] = {}
        if tasks:
            if todo or self._fill_needs_system(fills):
                t = time.perf_counter()
                self.system.load(self.device)
                self._system_loaded = True
                clock["system_load"] += time.perf_counter() - t
                t = time.perf_counter()
                self.open_output_cache()
                clock["output_cache"] += time.perf_counter() - t
                # Reading the cache, warm up lazily: before the first output not found there (a run
                # that reuses every output never calls the system).
                if not self.output_cache_reads:
                    t = time.perf_counter()
                    self._warmup((todo[0][0] if todo else next(iter(fills.values()))[0][0]))
                    clock["warmup"] += time.perf_counter() - t
            t = time.perf_counter()
            self._write_run_json(finished=False)
            clock["store"] += time.perf_counter() - t
            executor = self.executor or make_executor("local", self.jobs)
            workers = executor.workers_for(len(tasks))
            bar = _progress(len(todo) + n_fill, f"{self.dataset_key}/{self.point.label}", self.progress)
            t_process = time.perf_counter()
            store_in_process = 0.0
            pending, last_flush = [], time.perf_counter()

            def flush():
                nonlocal pending, last_flush
                if pending:
                    self.store.append(pending)
                pending, last_flush = [], time.perf_counter()

            try:
                for index, records, timing in executor.map(self, tasks):
                    _add_timing(chunks, timing)
                    t = time.perf_counter()
                    self._write_pending_audio(records)
                    if tasks[index][0] == "new":
                        pending += records
                        # finished chunks are saved within a second (one fsync per flush, not per chunk)
                        if len(pending) >= FLUSH_RECORDS or t - last_flush >= FLUSH_SECONDS:
                            flush()
                    else:  # "fill" and "redo" replace existing records
                        filled.update((record_key(r), r) for r in records)
                    store_in_process += time.perf_counter() - t
                    bar.update(len(records))
            finally:  # an executor's failure still stores what finished
                t = time.perf_counter()
                flush()
                store_in_process += time.perf_counter() - t
            bar.close()
            process_wall = time.perf_counter() - t_process
            clock["store"] += store_in_process
            t = time.perf_counter()
            if filled:  # one atomic rewrite: a kill before it loses only the fill-in and retried work
                self.store.rewrite(lambda record: filled.get(record_key(record), record))
            self._write_run_json(finished=True)
            clock["store"] += time.perf_counter() - t
            process_wall -= store_in_process
        t = time.perf_counter()
        draws = range(self.v.suite.samples)
        wanted = {(item.id, d) for item in self.items for d in draws}
        records = [r for r in self.store.read_records() if record_key(r) in wanted]
        summary = summarize(records, self.metrics, len(self.items),
                            {"label": self.point.label, "dataset": self.dataset_key,
                             "system": self.point.name, "suite": self.v.suite.name,
                             "samples": self.v.suite.samples},
                            n_duplicates_dropped=n_dropped)
        new_keys = {(item.id, d) for item, d in todo}
        fill_keys = {(item.id, d): keys for keys, group in fills.items() for item, d, _ in group}
        for key, block in summary["metrics"].items():
            computed = sum(1 for r in records if record_key(r) in new_keys
                           or key in fill_keys.get(record_key(r), ()))
            block["n_computed"], block["n_reused"] = computed, len(records) - computed
        if self.kept_metrics:
            summary["metrics_not_summarised"] = sorted(self.kept_metrics)
        summary["system_outputs"] = self._output_counts(records, new_keys)
        clock["store"] += time.perf_counter() - t
        summary["timing"] = self._timing_block(time.perf_counter() - started, clock, chunks, process_wall, workers)
        self.store.write_summary(summary)
        return RunOutcome(self.point.label, self.dataset_key, self.store.folder, summary, len(todo), n_fill,
                          retried=len(redo))

    def _output_counts(self, records: list[dict], new_keys: set) -> dict:
        """summary.json ``system_outputs``: this invocation's new outputs, computed by the system or
        reused from the output cache, and the records already stored before it."""
        new = [r for r in records if record_key(r) in new_keys]
        reused = sum(1 for r in new if (r.get("output_cache") or {}).get("status") == "reused")
        return {"n_computed": len(new) - reused, "n_from_cache": reused,
                "n_stored_before": len(records) - len(new), "output_cache": self.output_cache_info}

    def _timing_block(self, wall: float, clock: dict, chunks: dict, process_wall: float, workers: int) -> dict:
        """Where this invocation's time on this run went (docs/results-format.md, ``timing``).

        Chunk seconds are summed over the workers that computed them; ``parallelism`` is that
        sum over the wall time of the processing phase, and every part is also given as wall
        seconds (divided by it), so system + metrics + harness = wall.
        """
        busy = chunks["chunk"]
        parallelism = busy / process_wall if process_wall > 0 and busy > 0 else 1.0
        parallelism = max(parallelism, 1.0)
        metric_s = {k: chunks["metrics"].get(k, 0.0) for k in self.metrics}
        system_s, metrics_total = chunks["system"], sum(metric_s.values())
        harness = {"system_load": clock["system_load"], "warmup": clock["warmup"] + chunks["warmup"] / parallelism,
                   "audio_in": chunks["audio_in"] / parallelism, "audio_out": chunks["audio_out"] / parallelism,
                   "output_cache": clock["output_cache"] + chunks["output_cache"] / parallelism,
                   "store": clock["store"]}
        accounted = (system_s + metrics_total) / parallelism + sum(harness.values())
        harness["other"] = max(0.0, wall - accounted)
        overhead = sum(harness.values())
        return {"wall_seconds": wall, "executor": getattr(self.executor, "name", "local"), "jobs": self.jobs,
                "workers": workers, "parallelism": parallelism, "worker_seconds": busy,
                "system_seconds": system_s, "metric_seconds": metric_s,
                "system_wall_seconds": system_s / parallelism, "metrics_wall_seconds": metrics_total / parallelism,
                "harness_seconds": harness, "overhead_seconds": overhead,
                "overhead_share": overhead / wall if wall > 0 else None,
                "suite_startup_seconds": getattr(self, "suite_startup_seconds", None)}

    def _write_run_json(self, finished: bool) -> None:
        previous = self.store.read_run() or {}
        suite = self.v.suite
        run = {
            "schema_version": RESULTS_SCHEMA_VERSION,
            "suite": {"name": suite.name, "path": str(suite.path), "files": [str(f) for f in suite.files],
                      "sha256": suite.sha256(), "resolved": suite.raw},
            "run": {"dataset": self.dataset_key, "system": self.point.key, "label": self.point.label,
                    "params": self.point.params, "axes": self.point.axes},
            "dataset": {"name": self.dataset.name, "params": self.dataset.params, "source": self.dataset.source,
                        "n_items": len(self.items), "n_items_total": len(self.dataset.items),
                        "items_sha256": self.dataset.items_sha256()},
            "system": {"name": self.point.name, "kind": self.system.kind,
                       "target": SYSTEMS.entry(self.point.name).target, "params": self.point.params,
                       "sample_rate": self.system.sample_rate, "nominal_bitrate": self.system.nominal_bitrate
                       if hasattr(self.system, "nominal_bitrate") else None,
                       "provenance": self._system_provenance(previous)},
            "metrics": self.metrics_meta,
            "audio": {**audio_provenance(), "input": "reference resampled to the system rate; "
                      "each metric resamples to its own rate"},
            "environment": self.env,
            "seed": suite.seed, "warmup": suite.warmup, "jobs": self.jobs,
            "executor": getattr(self.executor, "name", "local"),
            "item_seed": "sha256(f'{seed}:{id}')[:8] as int",
            "command": self.command,
            "started": previous.get("started") or _now(),
            "sessions": previous.get("sessions", 0) + (0 if finished else 1),
            "finished": _now() if finished else None,
        }
        if self.kept_metrics:
            run["metrics_not_summarised"] = self.kept_metrics
        output_cache = self.output_cache_info or previous.get("output_cache")
        if output_cache:
            run["output_cache"] = output_cache
        self.store.write_run(run)

    def _system_provenance(self, previous: dict) -> dict:
        """The loaded system's provenance; when only saved outputs were scored (system not
        loaded), the previous session's (a loader may measure things, e.g. codec delay)."""
        if getattr(self, "_system_loaded", False) or not previous:
            return self.system.provenance()
        return (previous.get("system") or {}).get("provenance") or self.system.provenance()

    def _warmup(self, item: Item) -> None:
        """Call the system ``warmup`` times on ``item``, untimed and unscored, never from the cache."""
        self._warm = True
        for _ in range(self.v.suite.warmup):
            try:
                self._call_system(item, use_cache=False)
            except Exception as exc:  # the real call reports it per utterance
                log.debug("warm-up on %s failed: %s", item.id, exc)

    def open_output_cache(self) -> None:
        """Decide whether this run reads and writes the output cache (the system is loaded: its
        identity includes what the load found, e.g. checkpoint hashes). Sets ``output_cache``,
        ``output_cache_reads`` and the run.json block ``output_cache_info``."""
        suite = self.v.suite
        mode = resolve_mode(suite.output_cache)
        root = Path(suite.output_cache_path).expanduser() if suite.output_cache_path else default_location()
        info = {"mode": mode, "location": str(root.absolute()), "reads": False, "writes": False, "reason": None}
        self.output_cache, self.output_cache_reads = None, False
        why_not = self.system.not_cacheable() if mode != "off" else None
        if mode == "off":
            info["reason"] = "turned off (suite output_cache: false, --output-cache off or $QTTS_BENCH_OUTPUT_CACHE=off)"
        elif why_not:
            info["reason"] = f"not used for this system: {why_not}"
        else:
            entry = SYSTEMS.entry(self.point.name)
            identity = system_identity(self.point.name, entry.target, {**entry.defaults, **self.point.params},
                                       self.system, self.device)
            self.output_cache = OutputCache(identity, root)
            timed = [k for k, m in self.metrics.items() if getattr(m, "uses_system_timing", False)]
            self.output_cache_reads = not (mode == "auto" and timed)
            info.update(reads=self.output_cache_reads, writes=True, folder=str(self.output_cache.dir.absolute()),
                        identity_sha256=self.output_cache.identity_sha256, code_sha256=identity["code_sha256"])
            if not self.output_cache_reads:
                info["reason"] = (f"auto: this run scores {', '.join(timed)}, which time the system, so every "
                                  "output is computed (and stored for other runs); output_cache: true reuses "
                                  "them, leaving those metrics without values for reused outputs")
        self.output_cache_info = info

    def _read_inputs(self, item: Item) -> tuple[dict[str, Audio], dict[str, str]]:
        """The item's reference and prompt audio -> ({field: Audio}, {field: why unusable}).

        An unusable file fails the utterance when the system needs it; otherwise only the
        metrics that require it record the reason.
        """
        audio, unusable = {}, {}
        for need, path in (("reference", item.audio), ("prompt", item.prompt_audio)):
            if not path:
                continue
            try:
                audio[need] = read_audio(path)
                check_usable(audio[need].samples, f"{need} audio {path}")
            except AudioError as exc:
                if need in self.system.needs:
                    raise
                audio.pop(need, None)
                unusable[need] = str(exc)
        return audio, unusable

    def _call_system(self, item: Item, draw: int = 0, timing: dict | None = None,
                     use_cache: bool = True) -> SystemCall:
        """Run the system on one (item, draw), or take its output from the output cache.

        A computed output is stored in the cache (when this run writes it); a reused one has no
        timing (``info["untimed"]``: speed metrics say why they have no value).
        """
        timing = timing if timing is not None else _chunk_timing()
        seed = item_seed(self.v.suite.seed, item.id if draw == 0 else f"{item.id}#{draw}")
        _seed_everything(seed)
        t0 = time.perf_counter()
        inputs, unusable = self._read_inputs(item)
        rate = self.system.sample_rate

        def at_rate(field):
            return inputs[field].at(rate).samples if field in inputs else None

        request = Request(item.id, text=item.text, language=item.language,
                          reference=at_rate("reference") if "reference" in self.system.needs else None,
                          prompt_audio=at_rate("prompt"), prompt_text=item.prompt_text, seed=seed)
        timing["audio_in"] += time.perf_counter() - t0
        cache = self.output_cache if use_cache else None
        key = cache.key(request, rate) if cache is not None else None
        reused = self._cached_output(key, timing) if self.output_cache_reads and key else None
        if reused is not None:
            generation = reused
        else:
            if not self._warm:  # lazy warm-up (reading the cache); it draws random numbers: re-seed after
                t = time.perf_counter()
                self._warmup(item)
                timing["warmup"] += time.perf_counter() - t
                _seed_everything(seed)
            t1 = time.perf_counter()
            try:
                generation = self.system.generate(request)
            finally:
                timing["system"] += time.perf_counter() - t1
        estimate = _as_output(generation.audio, "system output")
        info = _system_info(generation, estimate, rate, request)
        info.update(device=self.device, sample_rate=rate, seed=seed, draw=draw)
        if reused is not None:
            info["untimed"] = NOT_TIMED
            block = {"status": "reused", "key": key, "file": str(cache.path(key))}
        else:
            block = {"status": "computed"}
            if key:
                block.update(key=key, file=self._store_output(key, estimate, generation, info, item, timing))
        return SystemCall(Audio(estimate, rate), info, inputs, unusable, generation.codes, block)

    def _cached_output(self, key: str, timing: dict) -> Generation | None:
        """The output stored under ``key`` as an untimed Generation, or None (absent or invalid)."""
        t = time.perf_counter()
        try:
            entry = self.output_cache.get(key)
        finally:
            timing["output_cache"] += time.perf_counter() - t
        if entry is None:
            return None
        meta = entry.meta
        return Generation(entry.audio, codes=entry.codes, code_info=meta.get("code_info") or {},
                          encoded_bits=meta.get("encoded_bits"), nominal_bitrate=meta.get("nominal_bitrate"),
                          extra=meta.get("extra") or {})

    def _store_output(self, key: str, estimate: np.ndarray, generation: Generation, info: dict, item: Item,
                      timing: dict) -> str | None:
        """Write a computed output to the cache -> the entry's path, or None when it could not be
        written (a full or read-only cache folder costs reuse later, never this run; after the
        first failure this process stops trying, with one warning)."""
        if self._output_cache_unwritable:
            return None
        meta = {"item_id": item.id, "run_folder": str(self.store.folder), "device": self.device,
                "sample_rate": self.system.sample_rate, "code_info": generation.code_info,
                "encoded_bits": generation.encoded_bits, "nominal_bitrate": generation.nominal_bitrate,
                "extra": generation.extra,
                # kept for people inspecting the cache; never reported as a timing of a later run
                "timing_when_computed": {k: info.get(k) for k in ("seconds", "ttft_seconds", "peak_memory_bytes")}}
        codes = np.asarray(generation.codes) if generation.codes is not None else None
        t = time.perf_counter()
        try:
            return str(self.output_cache.put(key, estimate, codes, meta))
        except (OSError, ValueError, TypeError) as exc:
            log.warning("output cache: cannot store %s / %s in %s (%s); the run goes on without storing outputs",
                        self.point.label, item.id, self.output_cache.dir, exc)
            self._output_cache_unwritable = True
            return None
        finally:
            timing["output_cache"] += time.perf_counter() - t

    def _work(self, task) -> tuple[list[dict], dict]:
        """One task -> (records, seconds by where). ``("new" | "redo", [(item, draw)...])`` computes
        utterances; ``("fill", [(item, draw, record)...], metric_keys)`` adds metrics to records."""
        timing = _chunk_timing()
        started = time.perf_counter()
        if task[0] in ("new", "redo"):
            records = self._compute(task[1], timing)
        else:
            records = self._fill(task[1], task[2], timing)
        timing["chunk"] = time.perf_counter() - started
        return records, timing

    def _compute(self, batch: list[tuple[Item, int]], timing: dict | None = None) -> list[dict]:
        """Run the system on a chunk of (utterance, draw) and score them -> records (no store I/O)."""
        timing = timing if timing is not None else _chunk_timing()
        generated = self._generate(batch, timing)
        generated.attach(_score_all(self.metrics, generated.inputs, timing["metrics"], self.timed))
        return generated.records

    def _generate(self, batch: list[tuple[Item, int]], timing: dict) -> Generated:
        """Run the system on a chunk of (utterance, draw) -> its records (system part filled in)
        and the metric inputs of the utterances it produced an output for."""
        records, inputs, scored, skipped = [], [], [], []
        for item, draw in batch:
            record = {"id": item.id, "status": "ok", "error": None, "metrics": {}, "system": None,
                      "text": item.text, "language": item.language, "speaker": item.speaker,
                      "reference_audio": item.audio, "prompt_audio": item.prompt_audio,
                      "prompt_text": item.prompt_text, "output_audio": None}
            record.update({k: v for k, v in (("spoken_text", item.spoken_text), ("category", item.category),
                                             ("draw", draw if self.v.suite.samples > 1 else None)) if v is not None})
            records.append(record)
            try:
                call = self._call_system(item, draw, timing)
            except Exception as exc:  # keep going, say why
                reason = str(exc) if isinstance(exc, QttsBenchError) else f"{type(exc).__name__}: {exc}"
                record.update(status="error", error=reason)
                record["metrics"] = {k: {"value": None, "reason": f"system failed: {reason}"}
                                     for k in self.metrics}
                log.warning("%s / %s: %s", self.point.label, item.id, reason)
                continue
            estimate = call.estimate
            record["system"] = call.info
            record["output_cache"] = call.cache
            record["output_sha256"] = audio_key(estimate.samples, estimate.sample_rate)
            if self.v.suite.save_audio:  # a write failure is the store's, not the system's: it stops the run
                t = time.perf_counter()
                record["output_audio"] = self._save_output(item.id, draw, estimate, record)
                timing["audio_out"] += time.perf_counter() - t
            inputs.append(Inputs(item.id, estimate, call.inputs.get("reference"), call.inputs.get("prompt"),
                                 item.text, item.language, call.info, call.codes, item.spoken_text, item.category))
            scored.append(record)
            skipped.append(_unusable_entries(self.metrics, call.unusable))
        return Generated(records, inputs, scored, skipped)

    def _fill(self, batch: list[tuple[Item, int, dict]], keys: tuple[str, ...], timing: dict) -> list[dict]:
        """Score the metrics ``keys`` on existing records -> the records with them added.

        The estimate is the saved output (exact float WAV) when kept, else the system is run
        again on the utterance with its seed; its output must hash to the one scored before
        (``output_sha256``), otherwise the new metrics record why they are missing.
        """
        metrics = {k: self.metrics[k] for k in keys}
        need_codes = any("codes" in m.requires for m in metrics.values())
        out, inputs, targets, skipped = [], [], [], []
        for item, draw, old in batch:
            record = {**old, "metrics": dict(old.get("metrics") or {})}
            out.append(record)

            def missing(reason):
                record["metrics"].update({k: {"value": None, "reason": reason} for k in keys})

            if record.get("status") != "ok":
                missing(f"system failed: {record.get('error')}")
                continue
            codes, path = None, self._saved_output(record)
            try:
                if path is not None and not need_codes:
                    t = time.perf_counter()
                    estimate = read_audio(path)
                    audio_in, unusable = self._read_inputs(item)
                    timing["audio_in"] += time.perf_counter() - t
                else:
                    call = self._call_system(item, draw, timing)
                    estimate, audio_in, unusable, codes = call.estimate, call.inputs, call.unusable, call.codes
                    digest = audio_key(estimate.samples, estimate.sample_rate)
                    if record.get("output_sha256") and digest != record["output_sha256"]:
                        missing("re-running the system for this added metric gave a different output than the one "
                                "scored before (not deterministic?); keep outputs (save_audio: true) or recompute "
                                "the run in a new folder")
                        continue
            except Exception as exc:
                reason = str(exc) if isinstance(exc, QttsBenchError) else f"{type(exc).__name__}: {exc}"
                missing(f"could not recompute the system output for an added metric: {reason}")
                continue
            inputs.append(Inputs(item.id, estimate, audio_in.get("reference"), audio_in.get("prompt"),
                                 item.text, item.language, record.get("system") or {}, codes,
                                 item.spoken_text, item.category))
            targets.append(record)
            skipped.append(_unusable_entries(metrics, unusable))
        for record, entries, absent in zip(targets, _score_all(metrics, inputs, timing["metrics"], self.timed),
                                           skipped):
            record["metrics"].update({**entries, **absent})
        return out

    def _save_output(self, item_id: str, draw: int, estimate: Audio, record: dict | None = None) -> str:
        """Write exactly what the metrics score: float32 WAV, samples unchanged (re-scoring the
        file reproduces items.jsonl). -> the path relative to the run folder. With
        ``return_audio`` (a Ray actor, maybe on another machine) the samples travel in the
        record and the driver writes them."""
        suffix = f"~{draw}" if self.v.suite.samples > 1 else ""
        rel = f"audio/{item_id.replace('/', '__')}{suffix}.wav"
        if self.return_audio and record is not None:
            record["_pending_audio"] = (estimate.samples, estimate.sample_rate)
            return rel
        try:
            write_audio(self.store.folder / rel, estimate, exact=True)
        except (OSError, RuntimeError) as exc:  # libsndfile reports a failed open as RuntimeError
            raise store_unwritable(self.store.folder / rel, exc) from exc
        return rel

    def _write_pending_audio(self, records: list[dict]) -> None:
        for record in records:
            pending = record.pop("_pending_audio", None)
            if pending is not None:
                rel = record["output_audio"]
                try:
                    write_audio(self.store.folder / rel, Audio(pending[0], pending[1]), exact=True)
                except (OSError, RuntimeError) as exc:
                    raise store_unwritable(self.store.folder / rel, exc) from exc


@dataclass
class Generated:
    """A chunk after the system ran: ``records`` (all of the chunk, failed calls included) and,
    for the utterances with an output, ``inputs`` to score, their ``scored`` records and the
    metric entries their ``skipped`` (unusable) inputs already decide."""

    records: list[dict]
    inputs: list[Inputs]
    scored: list[dict]
    skipped: list[dict]

    def attach(self, entries: list[dict]) -> None:
        """Store per-utterance metric entries (one dict per input, any subset of the metrics)."""
        for record, computed, missing in zip(self.scored, entries, self.skipped):
            record["metrics"] = {**record["metrics"], **computed, **missing}


def _failed(entry: dict) -> bool:
    """A stored metric entry that is a failure (no value, and not "does not apply")."""
    return entry.get("value") is None and not entry.get("not_applicable")


def _unusable_entries(metrics: dict, unusable: dict) -> dict:
    return {k: {"value": None, "reason": f"{need} unusable: {unusable[need]}"}
            for k, m in metrics.items() for need in m.requires if need in unusable}


def json_norm(obj):
    return json.loads(json.dumps(obj, sort_keys=True, default=str))


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _progress(total: int, desc: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="utt", disable=not enabled, leave=True, dynamic_ncols=True)


# ------------------------------------------------------------------------------- suite
def run_suite(validated: ValidatedSuite, *, limit: int | None = None, device: str | None = None,
              out: str | Path | None = None, progress: bool = True,
              command: list[str] | None = None, jobs: int | str | None = None,
              executor: str | None = None, address: str | None = None,
              retry_failed: bool = False) -> list[RunOutcome]:
    """Run every dataset x system point of a validated suite; returns one outcome per run.

    ``jobs`` > 1 (or ``"auto"``: the usable cores) scores utterances in forked worker processes
    (CPU only). Timings then share the CPU with the other workers: measure speed (RTF, TTFT)
    with ``jobs: 1``. ``executor="ray"`` runs the chunks on Ray actors instead (``address``: an
    existing cluster; default a local one with ``jobs`` CPUs), see :mod:`qtts_bench.executors`.
    ``retry_failed``: also recompute what earlier invocations recorded as failed (see ``_Run._plan``).
    """
    started = time.perf_counter()
    suite = validated.suite
    resolve_mode(suite.output_cache)  # a bad $QTTS_BENCH_OUTPUT_CACHE fails before any work
    startup: dict = {}
    t = time.perf_counter()
    device = resolve_device(device or suite.device)
    startup["device_seconds"] = time.perf_counter() - t
    jobs_given = jobs is not None or "jobs" in suite.raw
    jobs_requested = jobs if jobs is not None else suite.jobs
    jobs = resolve_jobs(jobs_requested)
    if jobs_requested == "auto" and device.startswith("cuda") and (executor or "local") == "local":
        jobs = 1  # one process per GPU: forked workers cannot use CUDA
    runner = make_executor(executor, jobs, address, jobs_given=jobs_given)
    if jobs > 1 and device.startswith("cuda") and runner.name == "local":
        raise ConfigError("jobs > 1 forks worker processes, which CUDA does not support: use jobs: 1 on GPU, or "
                          "--executor pipelined (the system and model metrics stay on the GPU, CPU metrics use the "
                          "workers)")
    out_root = Path(out or suite.output)
    t = time.perf_counter()
    env = environment(device)
    startup["environment_seconds"] = time.perf_counter() - t
    if hasattr(runner, "prepare"):  # before metrics load models: what remote workers rebuild from
        runner.prepare(validated, device)
    metrics = validated.metrics
    startup["metric_load_seconds"] = {}
    for key, metric in metrics.items():  # load every metric up front: a missing extra stops here
        t = time.perf_counter()
        metric.load(device)
        startup["metric_load_seconds"][key] = time.perf_counter() - t
    startup["seconds"] = time.perf_counter() - started
    timed = timed_metrics(validated, metrics, device)
    outcomes = []
    try:
        for dataset_key, dataset in validated.datasets.items():
            items = dataset.items[:limit] if limit else dataset.items
            for point in validated.points_for(dataset_key):
                run = _Run(validated, dataset_key, dataset, items, point, validated.metrics_for(dataset_key),
                           out_root, device, progress, command or sys.argv, env, jobs, runner, timed,
                           retry_failed=retry_failed)
                run_started = time.perf_counter()
                run.suite_startup_seconds = startup["seconds"]
                outcome = run.execute()
                outcomes.append(outcome)
                log.info("%s/%s done in %.1f s", dataset_key, point.label, time.perf_counter() - run_started)
    finally:
        runner.close()
        for limited in timed.values():
            limited.close()
    if outcomes:
        outcomes[0].startup = {**startup, "jobs_requested": jobs_requested, "jobs": jobs,
                               "executor": runner.name}
    return outcomes

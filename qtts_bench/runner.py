"""Runner: a validated suite -> per-utterance records in the results store.

For each run (dataset x system x grid point): load the system once, warm it up on the first
item (untimed, unscored), then per utterance: read and resample the input, run the system
(timed), check its output, score every metric, and append one JSON line. Completed ids are
skipped on resume. Failures become records with reasons; the run goes on.
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
from .data.manifest import Dataset, Item
from .errors import ConfigError, MetricFailure, QttsBenchError, SystemFailure
from .metrics.base import Inputs, Metric
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


def item_seed(suite_seed: int, item_id: str) -> int:
    """Deterministic per-utterance seed, independent of order and of --limit."""
    return int(hashlib.sha256(f"{suite_seed}:{item_id}".encode()).hexdigest()[:8], 16)


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    if "torch" in sys.modules:
        sys.modules["torch"].manual_seed(seed)


# ------------------------------------------------------------------------------- system call
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
def _score_all(metrics: dict[str, Metric], inputs: list[Inputs]) -> list[dict]:
    """Score every metric on a chunk of utterances -> per-utterance {metric_key: entry}."""
    entries = [{} for _ in inputs]
    for key, metric in metrics.items():
        if hasattr(metric, "score_batch"):
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
class _Run:
    def __init__(self, validated: ValidatedSuite, dataset_key: str, dataset: Dataset, items: list[Item],
                 point: SystemPoint, metrics: dict[str, Metric], out_root: Path, device: str,
                 progress: bool, command: list[str], env: dict, jobs: int = 1):
        self.v, self.dataset_key, self.dataset, self.items = validated, dataset_key, dataset, items
        self.jobs = jobs
        self.point, self.metrics, self.device, self.progress = point, metrics, device, progress
        self.command, self.env = command, env
        self.store = RunStore(out_root / validated.suite.name / dataset_key / point.label)
        self.system = SYSTEMS.create(point.name, **point.params)
        self.system.device = device
        # Declared metadata + settings of every metric, once per run (settings may hash models).
        self.metrics_meta = {k: {**m.describe(), "settings": m.settings()} for k, m in self.metrics.items()}

    def _fingerprint(self) -> dict:
        return {"system": self.point.name, "params": self.point.params,
                "metrics": {k: v["settings"] for k, v in self.metrics_meta.items()}}

    def _check_resume_compatible(self) -> None:
        previous = self.store.read_run()
        if previous is None:
            return
        old = {"system": previous["system"]["name"], "params": previous["run"]["params"],
               "metrics": {k: v["settings"] for k, v in previous["metrics"].items()}}
        new = self._fingerprint()
        if json_norm(old) != json_norm(new):
            diff = [k for k in new if json_norm(old.get(k)) != json_norm(new[k])]
            raise ConfigError(
                f"{self.store.folder} holds results made with different {', '.join(diff)}; "
                f"resuming would mix them. Use --out for a new folder or delete that one.")

    def execute(self) -> RunOutcome:
        """Run the missing utterances, holding the folder's lock throughout (a second run into
        the same folder fails at once, naming this one)."""
        with self.store.locked(self.command):
            return self._execute()

    def _execute(self) -> RunOutcome:
        self._check_resume_compatible()
        done = self.store.completed_keys()
        draws = range(self.v.suite.samples)
        todo = [(item, d) for item in self.items for d in draws if (item.id, d) not in done]
        if todo:
            self.system.load(self.device)
            self._write_run_json(finished=False)
            self._warmup(todo[0][0])
            self._process(todo)
            self._write_run_json(finished=True)
        wanted = {(item.id, d) for item in self.items for d in draws}
        records = [r for r in self.store.read_records() if record_key(r) in wanted]
        summary = summarize(records, self.metrics, len(self.items),
                            {"label": self.point.label, "dataset": self.dataset_key,
                             "system": self.point.name, "suite": self.v.suite.name,
                             "samples": self.v.suite.samples},
                            n_duplicates_dropped=self.store.n_duplicates_dropped)
        self.store.write_summary(summary)
        return RunOutcome(self.point.label, self.dataset_key, self.store.folder, summary, len(todo))

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
                       "provenance": self.system.provenance()},
            "metrics": self.metrics_meta,
            "audio": {**audio_provenance(), "input": "reference resampled to the system rate; "
                      "each metric resamples to its own rate"},
            "environment": self.env,
            "seed": suite.seed, "warmup": suite.warmup, "jobs": self.jobs, "item_seed": "sha256(f'{seed}:{id}')[:8] as int",
            "command": self.command,
            "started": previous.get("started") or _now(),
            "sessions": previous.get("sessions", 0) + (0 if finished else 1),
            "finished": _now() if finished else None,
        }
        self.store.write_run(run)

    def _warmup(self, item: Item) -> None:
        for _ in range(self.v.suite.warmup):
            try:
                self._call_system(item)
            except Exception as exc:  # the real call reports it per utterance
                log.debug("warm-up on %s failed: %s", item.id, exc)

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

    def _call_system(self, item: Item, draw: int = 0):
        """-> (estimate, info, {field: input Audio}, {field: why unusable}, codes or None)."""
        seed = item_seed(self.v.suite.seed, item.id if draw == 0 else f"{item.id}#{draw}")
        _seed_everything(seed)
        inputs, unusable = self._read_inputs(item)
        rate = self.system.sample_rate

        def at_rate(field):
            return inputs[field].at(rate).samples if field in inputs else None

        request = Request(item.id, text=item.text, language=item.language,
                          reference=at_rate("reference") if "reference" in self.system.needs else None,
                          prompt_audio=at_rate("prompt"), prompt_text=item.prompt_text, seed=seed)
        generation = self.system.generate(request)
        estimate = _as_output(generation.audio, "system output")
        info = _system_info(generation, estimate, rate, request)
        info.update(device=self.device, sample_rate=rate, seed=seed, draw=draw)
        return Audio(estimate, rate), info, inputs, unusable, generation.codes

    def _process(self, todo: list[tuple[Item, int]]) -> None:
        chunk = max([int(m.params.get("batch_size", 1)) for m in self.metrics.values()] + [1])
        batches = [todo[i:i + chunk] for i in range(0, len(todo), chunk)]
        bar = _progress(len(todo), f"{self.dataset_key}/{self.point.label}", self.progress)
        if self.jobs > 1 and len(batches) > 1:
            results = _parallel_map(self, batches, self.jobs)
        else:
            results = map(self._compute, batches)
        for records in results:  # in order; each chunk is saved as soon as it is done
            self.store.append(records)
            bar.update(len(records))
        bar.close()

    def _compute(self, batch: list[tuple[Item, int]]) -> list[dict]:
        """Run the system on a chunk of (utterance, draw) and score them -> records (no store I/O)."""
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
                estimate, info, audio_in, unusable, codes = self._call_system(item, draw)
            except Exception as exc:  # keep going, say why
                reason = str(exc) if isinstance(exc, QttsBenchError) else f"{type(exc).__name__}: {exc}"
                record.update(status="error", error=reason)
                record["metrics"] = {k: {"value": None, "reason": f"system failed: {reason}"}
                                     for k in self.metrics}
                log.warning("%s / %s: %s", self.point.label, item.id, reason)
                continue
            record["system"] = info
            if self.v.suite.save_audio:  # a write failure is the store's, not the system's: it stops the run
                record["output_audio"] = self._save_output(item.id, draw, estimate)
            inputs.append(Inputs(item.id, estimate, audio_in.get("reference"), audio_in.get("prompt"),
                                 item.text, item.language, info, codes, item.spoken_text, item.category))
            scored.append(record)
            skipped.append({k: {"value": None, "reason": f"{need} unusable: {unusable[need]}"}
                            for k, m in self.metrics.items() for need in m.requires if need in unusable})
        for record, entries, missing in zip(scored, _score_all(self.metrics, inputs), skipped):
            record["metrics"] = {**entries, **missing}
        return records

    def _save_output(self, item_id: str, draw: int, estimate: Audio) -> str:
        """Write exactly what the metrics score: float32 WAV, samples unchanged (re-scoring the
        file reproduces items.jsonl). -> the path relative to the run folder."""
        suffix = f"~{draw}" if self.v.suite.samples > 1 else ""
        rel = f"audio/{item_id.replace('/', '__')}{suffix}.wav"
        try:
            write_audio(self.store.folder / rel, estimate, exact=True)
        except (OSError, RuntimeError) as exc:  # libsndfile reports a failed open as RuntimeError
            raise store_unwritable(self.store.folder / rel, exc) from exc
        return rel


# Worker processes are forked after the system and metrics are loaded, so each inherits them.
_WORKER_RUN: "_Run | None" = None


def _worker_compute(batch: list[Item]) -> list[dict]:
    return _WORKER_RUN._compute(batch)


def _init_worker(parent_pid: int) -> None:
    exit_with_parent(parent_pid)
    if _WORKER_RUN is not None:  # the parent holds the folder lock; a worker must not keep it
        _WORKER_RUN.store.forget_lock()
    # A forked child that reuses the parent's OpenMP thread pool deadlocks in torch; one
    # thread per worker avoids it (the workers are the parallelism).
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)


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


def _parallel_map(run: "_Run", batches: list[list[Item]], jobs: int):
    import multiprocessing
    import os
    from concurrent.futures import ProcessPoolExecutor

    global _WORKER_RUN
    _WORKER_RUN = run
    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("fork"),
                             initializer=_init_worker, initargs=(os.getpid(),)) as pool:
        yield from pool.map(_worker_compute, batches)


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
              command: list[str] | None = None, jobs: int | None = None) -> list[RunOutcome]:
    """Run every dataset x system point of a validated suite; returns one outcome per run.

    ``jobs`` > 1 scores utterances in forked worker processes (CPU only). Timings then share
    the CPU with the other workers: measure speed (RTF, TTFT) with ``jobs: 1``.
    """
    suite = validated.suite
    device = resolve_device(device or suite.device)
    jobs = jobs or suite.jobs
    if jobs > 1 and device.startswith("cuda"):
        raise ConfigError("jobs > 1 forks worker processes, which CUDA does not support; use jobs: 1 on GPU")
    out_root = Path(out or suite.output)
    env = environment(device)
    metrics = validated.metrics
    for key, metric in metrics.items():  # load every metric up front: a missing extra stops here
        metric.load(device)
    outcomes = []
    for dataset_key, dataset in validated.datasets.items():
        items = dataset.items[:limit] if limit else dataset.items
        for point in validated.points:
            run = _Run(validated, dataset_key, dataset, items, point, metrics, out_root, device,
                       progress, command or sys.argv, env, jobs)
            started = time.perf_counter()
            outcomes.append(run.execute())
            log.info("%s/%s done in %.1f s", dataset_key, point.label, time.perf_counter() - started)
    return outcomes

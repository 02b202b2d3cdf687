"""Executors, timing and incremental re-runs (issue 11): where the time goes, jobs: auto,
adding / removing / changing metrics on a finished run, adding a system, and the Ray executor
giving the local executor's numbers (skipped when ray is not installed). Seconds each."""

import importlib.util
import json
import os

import numpy as np
import pytest

from qtts_bench.audio import read_audio
from qtts_bench.errors import ConfigError
from qtts_bench.executors import resolve_jobs, usable_cores
from qtts_bench.runner import run_suite
from qtts_bench.suite import load_suite, validate_suite

SUITE = """
name: inc
warmup: 1
save_audio: {save}
jobs: {jobs}
datasets:
  syn: {{dataset: synthetic, params: {{n: {n}, seconds: 1.0}}}}
systems:
{systems}
metrics:
{metrics}
"""
SI_SDR = "  si_sdr: {}"
PESQ = "  pesq_wb: {}"
STOI = "  stoi: {}"


def _write(write_suite, metrics, systems="  q: {system: dummy_codec, params: {bits: 6}}", n=4, save=True, jobs=1,
           name="suite.yaml"):
    return write_suite(SUITE.format(metrics="\n".join(metrics), systems=systems, n=n, save=str(save).lower(),
                                    jobs=jobs), name)


def _run(path, out, **kw):
    return run_suite(validate_suite(load_suite(path)), out=out, progress=False, command=["test"], **kw)


def _lines(folder):
    return [json.loads(line) for line in (folder / "items.jsonl").read_text().splitlines()]


def _entries(folder, key):
    """{id: the stored JSON text of one metric's entry} (byte-for-byte comparisons)."""
    return {r["id"]: json.dumps(r["metrics"][key], sort_keys=True) for r in _lines(folder) if key in r["metrics"]}


# ------------------------------------------------------------------------------------- timing
def test_timing_block_is_present_and_adds_up(write_suite, tmp_path, cli):
    path = _write(write_suite, [SI_SDR, PESQ])
    [outcome] = _run(path, tmp_path)
    timing = json.loads((outcome.folder / "summary.json").read_text())["timing"]
    assert set(timing["metric_seconds"]) == {"si_sdr", "pesq_wb"}
    assert all(v > 0 for v in timing["metric_seconds"].values()) and timing["system_seconds"] > 0
    assert timing["workers"] == 1 and timing["parallelism"] == pytest.approx(1.0, abs=0.05)
    parts = timing["system_wall_seconds"] + timing["metrics_wall_seconds"] + timing["overhead_seconds"]
    assert parts == pytest.approx(timing["wall_seconds"], rel=1e-6, abs=1e-6)
    assert timing["overhead_seconds"] == pytest.approx(sum(timing["harness_seconds"].values()))
    assert all(v >= 0 for v in timing["harness_seconds"].values())
    # what was measured part by part (not the remainder) is most of the wall time
    assert timing["harness_seconds"]["other"] < 0.5 * timing["wall_seconds"]
    assert 0 <= timing["overhead_share"] <= 1

    proc = cli("run", str(path), "--out", str(tmp_path / "cli"), "--no-progress")
    assert proc.returncode == 0, proc.stderr
    assert "time (this invocation; s):" in proc.stdout and "syn/q:" in proc.stdout
    assert "since process start" in proc.stdout


# ------------------------------------------------------------------------------------- jobs
def test_jobs_auto_uses_the_usable_cores(write_suite, tmp_path):
    assert resolve_jobs("auto") == usable_cores() == len(os.sched_getaffinity(0))
    assert resolve_jobs(3) == 3 and resolve_jobs("2") == 2
    for bad in ("many", 0, "0"):
        with pytest.raises(ConfigError):
            resolve_jobs(bad)
    path = _write(write_suite, [SI_SDR], jobs="auto", n=3)
    [outcome] = _run(path, tmp_path)
    run = json.loads((outcome.folder / "run.json").read_text())
    assert run["jobs"] == usable_cores() and outcome.startup["jobs_requested"] == "auto"
    with pytest.raises(ConfigError, match="jobs"):
        load_suite(_write(write_suite, [SI_SDR], jobs="many", name="bad.yaml"))


def test_whisper_metrics_run_in_forked_workers(write_suite, tmp_path, cli):
    """CTranslate2 (faster-whisper) does not survive a fork (its threads and libgomp's pool are
    gone, a call waited forever): each worker loads the model again, single-threaded. jobs 2 must
    finish, in a subprocess with a time limit, and give jobs 1's transcripts."""
    pytest.importorskip("faster_whisper", reason="faster-whisper not installed (pip install 'qtts-bench[asr]')")
    entries = {}
    for jobs in (1, 2):
        path = _write(write_suite, ["  wer: {params: {batch_size: 1, cache: false}}"], systems="  t: {system: dummy_tts}",
                      n=4, save=False, jobs=jobs, name=f"jobs{jobs}.yaml")
        proc = cli("run", str(path), "--out", str(tmp_path / f"jobs{jobs}"), "--no-progress", timeout=300)
        assert proc.returncode == 0, proc.stderr[-2000:]
        entries[jobs] = _entries(tmp_path / f"jobs{jobs}" / "inc" / "syn" / "t", "wer")
    assert len(entries[1]) == 4 and entries[2] == entries[1]


# ------------------------------------------------------------------------------------- incremental
@pytest.mark.parametrize("save", [True, False], ids=["from-saved-outputs", "system-re-run"])
def test_an_added_metric_is_the_only_one_computed(write_suite, tmp_path, save):
    path = _write(write_suite, [SI_SDR], save=save)
    [first] = _run(path, tmp_path / "inc")
    before = _entries(first.folder, "si_sdr")
    path = _write(write_suite, [SI_SDR, PESQ], save=save)
    [second] = _run(path, tmp_path / "inc")
    assert second.computed == 0 and second.filled == 4
    metrics = second.summary["metrics"]
    assert (metrics["si_sdr"]["n_computed"], metrics["si_sdr"]["n_reused"]) == (0, 4)
    assert (metrics["pesq_wb"]["n_computed"], metrics["pesq_wb"]["n_reused"]) == (4, 0)
    assert _entries(second.folder, "si_sdr") == before  # byte-for-byte
    assert len(_lines(second.folder)) == 4 and not (second.folder / "items.jsonl.tmp").exists()
    assert set(second.summary["timing"]["metric_seconds"]) == {"si_sdr", "pesq_wb"}
    assert second.summary["timing"]["metric_seconds"]["si_sdr"] == 0.0
    # the filled values are those of a fresh run with both metrics
    [fresh] = _run(path, tmp_path / "fresh")
    assert _entries(second.folder, "pesq_wb") == _entries(fresh.folder, "pesq_wb")
    # and a third run reuses everything
    [third] = _run(path, tmp_path / "inc")
    assert third.computed == third.filled == 0
    assert all(b["n_computed"] == 0 and b["n_reused"] == 4 for b in third.summary["metrics"].values())


def test_added_metric_and_new_utterances_together(write_suite, tmp_path):
    path = _write(write_suite, [SI_SDR], n=5, jobs=2)
    [first] = run_suite(validate_suite(load_suite(path)), out=tmp_path, progress=False, command=["t"], limit=3)
    path = _write(write_suite, [SI_SDR, STOI], n=5, jobs=2)
    [second] = _run(path, tmp_path)
    assert (second.computed, second.filled) == (2, 3)
    assert (second.summary["metrics"]["stoi"]["n_computed"], second.summary["metrics"]["stoi"]["n_reused"]) == (5, 0)
    assert (second.summary["metrics"]["si_sdr"]["n_computed"], second.summary["metrics"]["si_sdr"]["n_reused"]) == (2, 3)
    assert all(set(r["metrics"]) == {"si_sdr", "stoi"} for r in _lines(second.folder))


def test_a_removed_metric_is_kept_but_not_summarised(write_suite, tmp_path):
    path = _write(write_suite, [SI_SDR, PESQ])
    [first] = _run(path, tmp_path)
    pesq = _entries(first.folder, "pesq_wb")
    [second] = _run(_write(write_suite, [SI_SDR]), tmp_path)
    assert set(second.summary["metrics"]) == {"si_sdr"}
    assert second.summary["metrics_not_summarised"] == ["pesq_wb"]
    assert _entries(second.folder, "pesq_wb") == pesq
    # add a metric while pesq_wb is out: run.json keeps pesq_wb's settings, so putting it back reuses it
    _run(_write(write_suite, [SI_SDR, STOI]), tmp_path)
    run = json.loads((first.folder / "run.json").read_text())
    assert "pesq_wb" in run["metrics_not_summarised"] and "pesq_wb" not in run["metrics"]
    [back] = _run(_write(write_suite, [SI_SDR, STOI, PESQ]), tmp_path)
    assert back.summary["metrics"]["pesq_wb"]["n_reused"] == 4 and back.filled == 0
    assert _entries(back.folder, "pesq_wb") == pesq


def test_changed_settings_of_a_kept_metric_refuse(write_suite, tmp_path):
    _run(_write(write_suite, [SI_SDR, PESQ]), tmp_path)
    with pytest.raises(ConfigError, match=r"different metrics settings \(si_sdr: align: '\w+' -> 'pad'"):
        _run(_write(write_suite, ["  si_sdr: {params: {align: pad}}", PESQ]), tmp_path)
    # a changed metric removed from the suite and re-added with other settings refuses too
    _run(_write(write_suite, [SI_SDR]), tmp_path)
    with pytest.raises(ConfigError, match="pesq_wb"):
        _run(_write(write_suite, [SI_SDR, "  pesq_wb: {params: {align: pad}}"]), tmp_path)
    # under a new key it is just an added metric
    [outcome] = _run(_write(write_suite, [SI_SDR, "  si_sdr_pad: {metric: si_sdr, params: {align: pad}}"]), tmp_path)
    assert outcome.summary["metrics"]["si_sdr_pad"]["n_computed"] == 4


def test_an_added_system_is_the_only_one_computed(write_suite, tmp_path):
    one = "  passthrough: {}"
    [first] = _run(_write(write_suite, [SI_SDR], systems=one), tmp_path)
    before = (first.folder / "items.jsonl").read_bytes()
    outcomes = _run(_write(write_suite, [SI_SDR], systems=one + "\n  q: {system: dummy_codec, params: {bits: 6}}"),
                    tmp_path)
    assert {o.label: o.computed for o in outcomes} == {"passthrough": 0, "q": 4}
    assert (first.folder / "items.jsonl").read_bytes() == before


# ------------------------------------------------------------------------------------- timeouts
SLOW = "  slow: {metric: slow_metric, timeout: 0.5, params: {sleep: 60, slow_items: [syn001]}}"


@pytest.mark.parametrize("jobs,executor", [(1, "local"), (2, "local"), (2, "pipelined")])
def test_a_metric_over_its_timeout_is_missing_with_the_reason_and_the_run_goes_on(write_suite, tmp_path, jobs,
                                                                                 executor):
    import time

    started = time.perf_counter()
    [outcome] = _run(_write(write_suite, [SI_SDR, SLOW], n=3, jobs=jobs), tmp_path, executor=executor)
    assert time.perf_counter() - started < 45  # the 60-s sleep was killed, not waited for
    records = {r["id"]: r for r in _lines(outcome.folder)}
    assert records["syn001"]["metrics"]["slow"] == {"value": None, "reason": "timed out after 0.5 s"}
    assert records["syn000"]["metrics"]["slow"]["value"] > 0 and records["syn002"]["metrics"]["slow"]["value"] > 0
    assert all(r["metrics"]["si_sdr"]["value"] is not None for r in records.values())
    block = json.loads((outcome.folder / "summary.json").read_text())["metrics"]["slow"]
    assert (block["n_scored"], block["n_failed"], block["failure_reasons"]) == (2, 1, {"timed out after 0.5 s": 1})
    metrics = json.loads((outcome.folder / "run.json").read_text())["metrics"]
    assert metrics["slow"]["timeout_seconds"] == 0.5 and "timeout_seconds" not in metrics["si_sdr"]
    assert "timeout_seconds" not in metrics["slow"]["settings"]  # a changed timeout still resumes


# ------------------------------------------------------------------------------- pipelined
PIPELINE_SYSTEMS = """  q: {system: dummy_codec, params: {bits: 6}}
  opus: {params: {bitrate: 6000}}"""


def test_pipelined_executor_splits_cpu_metrics_from_model_metrics():
    from qtts_bench.executors.pipelined import split_metrics
    from qtts_bench.registry import METRICS

    metrics = {k: METRICS.create(k) for k in ("pesq_wb", "stoi", "estoi", "si_sdr", "bitrate", "sim_o", "wer")}
    cpu, local = split_metrics(metrics)
    assert set(cpu) == {"pesq_wb", "stoi", "estoi", "si_sdr"} and set(local) == {"bitrate", "sim_o", "wer"}


def test_pipelined_executor_gives_the_local_numbers(write_suite, tmp_path):
    path = _write(write_suite, [SI_SDR, PESQ, STOI, "  bitrate: {}"], systems=PIPELINE_SYSTEMS, n=5, jobs=2)
    local = {o.label: o for o in _run(path, tmp_path / "local", jobs=1)}
    piped = {o.label: o for o in _run(path, tmp_path / "piped", executor="pipelined")}
    assert set(local) == set(piped) == {"q", "opus"}
    for label, o in piped.items():
        assert o.computed == 5 and o.summary["timing"]["executor"] == "pipelined"
        assert set(o.summary["timing"]["metric_seconds"]) == {"si_sdr", "pesq_wb", "stoi", "bitrate"}
        for key in ("si_sdr", "pesq_wb", "stoi", "bitrate"):
            assert _entries(o.folder, key) == _entries(local[label].folder, key), (label, key)
        assert [list(r["metrics"]) for r in _lines(o.folder)] == [list(r["metrics"]) for r in _lines(local[label].folder)]
    again = _run(path, tmp_path / "piped", executor="pipelined")  # resume: nothing to do
    assert all(o.computed == 0 for o in again)
    added = _run(_write(write_suite, [SI_SDR, PESQ, STOI, "  bitrate: {}", "  estoi: {}"], systems=PIPELINE_SYSTEMS,
                        n=5, jobs=2), tmp_path / "piped", executor="pipelined")
    assert all(o.summary["metrics"]["estoi"]["n_computed"] == 5 for o in added)


def _dying_scorer(inputs):
    """Stands in for the pipelined executor's worker function: the worker dies on syn002."""
    from qtts_bench.executors import pipelined

    if inputs[0].item_id == "syn002":
        os._exit(1)
    return pipelined._real_score_in_worker(inputs)


def test_a_dead_pipelined_worker_is_a_clear_error_and_the_run_resumes(write_suite, tmp_path, monkeypatch):
    from qtts_bench.errors import QttsBenchError
    from qtts_bench.executors import pipelined

    path = _write(write_suite, [SI_SDR, PESQ], n=6, jobs=1)
    monkeypatch.setattr(pipelined, "_real_score_in_worker", pipelined._score_in_worker, raising=False)
    monkeypatch.setattr(pipelined, "_score_in_worker", _dying_scorer)
    with pytest.raises(QttsBenchError, match="scoring worker process died"):
        _run(path, tmp_path, executor="pipelined")
    folder = tmp_path / "inc" / "syn" / "q"
    kept = _lines(folder) if (folder / "items.jsonl").exists() else []
    assert [r["id"] for r in kept] == ["syn000", "syn001"][:len(kept)]  # in order, nothing after the death
    monkeypatch.setattr(pipelined, "_score_in_worker", pipelined._real_score_in_worker)
    [o] = _run(path, tmp_path, executor="pipelined")
    assert o.computed == 6 - len(kept)
    assert sorted(r["id"] for r in _lines(folder)) == [f"syn{i:03d}" for i in range(6)]


# ------------------------------------------------------------------------------------- ray
RAY_SYSTEMS = """  q: {system: dummy_codec, params: {bits: 6}}
  opus: {params: {bitrate: 6000}}"""
needs_ray = pytest.mark.skipif(importlib.util.find_spec("ray") is None,
                               reason="ray is not installed (pip install 'qtts-bench[ray]')")


@pytest.fixture(scope="module")
def ray_cluster():
    """One local Ray instance for this module's tests (2 CPUs, no dashboard)."""
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@needs_ray
def test_ray_executor_gives_the_local_numbers(write_suite, tmp_path, ray_cluster):
    path = _write(write_suite, [SI_SDR, PESQ, STOI], systems=RAY_SYSTEMS, n=5, jobs=2)
    local = {o.label: o for o in _run(path, tmp_path / "local")}
    remote = {o.label: o for o in _run(path, tmp_path / "ray", executor="ray")}
    assert set(local) == set(remote) == {"q", "opus"}
    for label, o in remote.items():
        assert o.computed == 5 and o.summary["timing"]["executor"] == "ray"
        for key in ("si_sdr", "pesq_wb", "stoi"):
            assert _entries(o.folder, key) == _entries(local[label].folder, key), (label, key)
        # saved outputs were written by the driver, samples bit-exact (the WAV PEAK chunk holds a timestamp)
        for r in _lines(o.folder):
            assert np.array_equal(read_audio(o.folder / r["output_audio"]).samples,
                                  read_audio(local[label].folder / r["output_audio"]).samples)
    # resume over Ray: nothing left to do; an added metric is filled in on the actors
    again = _run(path, tmp_path / "ray", executor="ray")
    assert all(o.computed == 0 for o in again)
    added = _run(_write(write_suite, [SI_SDR, PESQ, STOI, "  estoi: {}"], systems=RAY_SYSTEMS, n=5, jobs=2),
                 tmp_path / "ray", executor="ray")
    assert all(o.summary["metrics"]["estoi"]["n_computed"] == 5 for o in added)


@needs_ray
def test_a_dead_ray_worker_s_chunks_are_requeued(write_suite, tmp_path, ray_cluster):
    from qtts_bench.executors.ray import RayExecutor

    class Killing(RayExecutor):
        def map(self, run, tasks):
            for n, result in enumerate(super().map(run, tasks)):
                if n == 0:
                    self.ray.kill(self.actors[0])  # its chunks in flight fail, are re-queued
                yield result

    path = _write(write_suite, [SI_SDR], systems="  q: {system: dummy_codec, params: {bits: 6}}", n=8, jobs=2)
    executor = Killing(2)
    [o] = _run(path, tmp_path / "ray", executor=executor)
    [local] = _run(path, tmp_path / "local")
    assert executor.requeued >= 1 and o.computed == 8
    assert len(_lines(o.folder)) == 8  # nothing lost, nothing duplicated
    assert _entries(o.folder, "si_sdr") == _entries(local.folder, "si_sdr")


def test_a_failed_rewrite_leaves_items_jsonl_as_it_was(write_suite, tmp_path, monkeypatch):
    """A full disk while an added metric's records are rewritten: the old file stays whole, no
    temporary file is left, the error names the file, and the next run fills the metric in."""
    import errno

    from qtts_bench import store as store_module
    from qtts_bench.errors import StoreError

    [first] = _run(_write(write_suite, [SI_SDR]), tmp_path)
    before = (first.folder / "items.jsonl").read_bytes()
    real_fsync = os.fsync

    def full_disk(fd):
        if os.readlink(f"/proc/self/fd/{fd}").endswith("items.jsonl.tmp"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_fsync(fd)

    monkeypatch.setattr(store_module.os, "fsync", full_disk)
    with pytest.raises(StoreError, match="items.jsonl"):
        _run(_write(write_suite, [SI_SDR, PESQ]), tmp_path)
    assert (first.folder / "items.jsonl").read_bytes() == before
    assert not (first.folder / "items.jsonl.tmp").exists()
    monkeypatch.setattr(store_module.os, "fsync", real_fsync)
    [again] = _run(_write(write_suite, [SI_SDR, PESQ]), tmp_path)
    assert again.filled == 4 and again.summary["metrics"]["pesq_wb"]["n_computed"] == 4


def test_ray_executor_without_ray_is_a_clear_error(monkeypatch):
    import sys

    from qtts_bench.executors import make_executor

    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with pytest.raises(ConfigError, match=r"pip install 'qtts-bench\[ray\]'"):
        make_executor("ray", 2)
    with pytest.raises(ConfigError, match="--address is for --executor ray"):
        make_executor("local", 2, address="auto")

"""Throughput of the codec metric set: a plain loop vs ``qtts-bench run`` (local, Ray).

Usage: python benchmarks/throughput.py [--sizes 50 170] [--quick] [--no-ray] [--out DIR]

The codec metric set (PESQ-WB, STOI, ESTOI, SI-SDR) on the bundled utterances through Opus
6 kbit/s, measured in one invocation so the ratios share the machine's load (printed):

(a) loop: one process, one utterance at a time, calling the libraries directly: soxr (VHQ) to
    16 kHz, the codec (qtts-bench's Opus system: PyAV/libopus, delay removed), then
    ``pesq.pesq``, ``pystoi.stoi`` (twice) and the SI-SDR formula in numpy, with one BLAS thread
    (one core; with OpenBLAS's default of one thread per core, the loop's numpy dot products
    slow down several-fold when the machine is busy, measured). Reported with and
    without the codec; "floor/2" is the metrics-only loop divided by the usable cores (the
    limit for N cores, as issue 11 defines it).
(b) ``qtts-bench run`` in a subprocess, process start included, ``--jobs 1`` and ``--jobs auto``;
(c) the same with ``--executor ray`` (a local Ray instance started by the run; skipped when
    ray is not installed).

Every mode runs ``--repeats`` times (default 2), interleaved with the others, and the fastest
of each is shown (the load of a shared machine changes between modes). For each: wall
seconds, utterances/s, ratio to the loop, the harness-overhead share (process
wall minus the system and metric seconds that summary.json's ``timing`` attributes, over the
wall), and the peak resident memory of the process tree (sampled every 0.1 s from /proc; Ray's
workers are children of its raylet, started by the run, so they are in the tree). Per-utterance
values of every run are compared with the loop's (max absolute difference; the goal is 1e-6).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SUITE = """name: throughput
warmup: 1
datasets:
  bundled: {}
systems:
  opus: {params: {bitrate: 6000}}
metrics:
  pesq_wb: {}
  stoi: {}
  estoi: {}
  si_sdr: {}
"""
METRICS = ("pesq_wb", "stoi", "estoi", "si_sdr")


# ------------------------------------------------------------------------------ memory
def _tree_rss(root: int) -> int:
    """Resident bytes of ``root`` and all its descendants (Linux /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                ppid = int(fh.read().rsplit(b")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    total, stack, page = 0, [root], os.sysconf("SC_PAGE_SIZE")
    while stack:
        pid = stack.pop()
        try:
            with open(f"/proc/{pid}/statm", "rb") as fh:
                total += int(fh.read().split()[1]) * page
        except (OSError, ValueError, IndexError):
            pass
        stack.extend(children.get(pid, ()))
    return total


class PeakMemory:
    def __init__(self, pid: int, interval: float = 0.1):
        self.pid, self.interval, self.peak = pid, interval, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, _tree_rss(self.pid))
            self._stop.wait(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


# ------------------------------------------------------------------------------ (a) loop
def si_sdr(reference, estimate) -> float:
    import numpy as np

    ref = reference.astype(np.float64) - reference.mean(dtype=np.float64)
    est = estimate.astype(np.float64) - estimate.mean(dtype=np.float64)
    target = (est @ ref) / (ref @ ref) * ref
    residual = est - target
    return 10.0 * math.log10((target @ target) / (residual @ residual))


def loop(n: int) -> dict:
    """The plain loop in this process; -> seconds (codec, metrics), values and peak RSS."""
    import pesq
    import soundfile as sf
    import soxr
    from pystoi import stoi

    from qtts_bench.registry import DATASETS, SYSTEMS
    from qtts_bench.systems.base import Request

    from qtts_bench.executors import blas_threads

    blas_threads(1)  # one core, as the floor is defined (and as the runner's workers run)
    items = DATASETS.create("bundled", name="bundled").items[:n]
    codec = SYSTEMS.create("opus", bitrate=6000)
    codec.load("cpu")
    pairs, codec_s = [], 0.0
    for i, item in enumerate(items):
        samples, rate = sf.read(item.audio, dtype="float32", always_2d=False)
        t = time.perf_counter()
        ref = soxr.resample(samples, rate, 16000, quality="VHQ") if rate != 16000 else samples
        est = codec.generate(Request(item.id, reference=ref, seed=0)).audio
        if i:  # the first call is the warm-up, as in the runner
            codec_s += time.perf_counter() - t
        m = min(len(ref), len(est))
        pairs.append((item.id, ref[:m], est[:m]))
    values, t0 = {}, time.perf_counter()
    for item_id, ref, est in pairs:
        values[item_id] = {"pesq_wb": float(pesq.pesq(16000, ref, est, "wb")),
                           "stoi": float(stoi(ref, est, 16000, extended=False)),
                           "estoi": float(stoi(ref, est, 16000, extended=True)),
                           "si_sdr": si_sdr(ref, est)}
    metrics_s = time.perf_counter() - t0
    return {"codec_seconds": codec_s, "metrics_seconds": metrics_s, "values": values}


def _loop_subprocess(n: int) -> dict:
    """Run :func:`loop` in a fresh process (its imports and memory are its own)."""
    code = (f"import json, sys; sys.path.insert(0, {str(ROOT / 'benchmarks')!r}); import throughput; "
            f"print(json.dumps(throughput.loop({n})))")
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    with PeakMemory(proc.pid) as mem:
        out, _ = proc.communicate()
    wall = time.perf_counter() - started
    if proc.returncode:
        raise SystemExit(f"loop failed ({proc.returncode})")
    result = json.loads(out.strip().splitlines()[-1])
    result.update(wall=wall, peak_rss=mem.peak)
    return result


# ------------------------------------------------------------------------------ (b), (c) runs
def run_cli(suite: Path, out: Path, n: int, jobs: str, executor: str = "local") -> dict:
    cmd = [sys.executable, "-m", "qtts_bench.cli", "run", str(suite), "--out", str(out), "--limit", str(n),
           "--jobs", jobs, "--executor", executor, "--no-progress"]
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    with PeakMemory(proc.pid) as mem:
        stdout, stderr = proc.communicate()
    wall = time.perf_counter() - started
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{stderr[-2000:]}")
    folder = out / "throughput" / "bundled" / "opus"
    timing = json.loads((folder / "summary.json").read_text())["timing"]
    values = {}
    for line in (folder / "items.jsonl").read_text().splitlines():
        record = json.loads(line)
        values[record["id"]] = {k: record["metrics"][k].get("value") for k in METRICS}
    attributed = timing["system_wall_seconds"] + timing["metrics_wall_seconds"]
    return {"wall": wall, "peak_rss": mem.peak, "values": values, "timing": timing,
            "overhead_share": (wall - attributed) / wall, "in_run_overhead_share": timing["overhead_share"]}


def max_diff(a: dict, b: dict) -> float:
    worst = 0.0
    for item_id, row in a.items():
        for key in METRICS:
            x, y = row.get(key), b.get(item_id, {}).get(key)
            if x is None or y is None:
                return math.inf
            worst = max(worst, abs(x - y))
    return worst


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[50, 170],
                        help="utterance counts (the bundled set has 170; larger values are capped)")
    parser.add_argument("--quick", action="store_true", help="20 utterances, no --jobs 1 run, one repeat")
    parser.add_argument("--repeats", type=int, default=2,
                        help="interleaved repeats of every mode; the fastest of each is shown (default 2)")
    parser.add_argument("--no-ray", action="store_true")
    parser.add_argument("--out", help="results folder (default: a temporary one)")
    args = parser.parse_args(argv)
    sizes = [20] if args.quick else sorted({min(s, 170) for s in args.sizes})
    if args.quick:
        args.repeats = 1
    import importlib.util

    from qtts_bench.executors import usable_cores

    have_ray = importlib.util.find_spec("ray") is not None and not args.no_ray
    cores = usable_cores()
    tmp = Path(args.out or tempfile.mkdtemp(prefix="qtts-throughput-"))
    suite = tmp / "throughput.yaml"
    suite.write_text(SUITE)
    print(f"# codec metric set (pesq_wb, stoi, estoi, si_sdr) through Opus 6 kbit/s, bundled set; "
          f"{cores} usable cores; load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"# {sys.executable} {' '.join(sys.argv)}")
    header = f"{'n':>4}  {'mode':<26} {'wall s':>7} {'utt/s':>7} {'x loop':>7} {'x floor':>8} " \
             f"{'overhead':>8} {'peak MB':>8} {'max |diff|':>10}"
    for n in sizes:
        modes = [("1", "local"), ("auto", "local")] if not args.quick else [("auto", "local")]
        if have_ray:
            modes.append(("auto", "ray"))
        # Interleaved repeats, best of each kept: the machine's load changes between modes.
        loops, runs = [], {m: [] for m in modes}
        for repeat in range(args.repeats):
            loops.append(_loop_subprocess(n))
            for jobs, executor in modes:
                runs[(jobs, executor)].append(run_cli(suite, tmp / f"{executor}-{jobs}-{n}-{repeat}", n, jobs, executor))
        base = min(loops, key=lambda r: r["codec_seconds"] + r["metrics_seconds"])
        base_metrics = min(r["metrics_seconds"] for r in loops)
        loop_total = base["codec_seconds"] + base["metrics_seconds"]
        floor = base_metrics / cores
        print(header)

        def row(mode, wall, overhead=None, peak=None, diff=None):
            print(f"{n:>4}  {mode:<26} {wall:>7.2f} {n / wall:>7.2f} {loop_total / wall:>7.2f} "
                  f"{wall / floor:>8.2f} {'' if overhead is None else f'{100 * overhead:.1f} %':>8} "
                  f"{'' if peak is None else f'{peak / 2**20:.0f}':>8} "
                  f"{'' if diff is None else f'{diff:.1e}':>10}")

        row("loop: metrics only", base_metrics)
        row("loop: codec + metrics", loop_total, peak=base["peak_rss"])
        row(f"floor/{cores}: metrics loop / cores", floor)
        for jobs, executor in modes:
            result = min(runs[(jobs, executor)], key=lambda r: r["wall"])
            row(f"run --executor {executor} --jobs {jobs}", result["wall"], result["overhead_share"],
                result["peak_rss"], max(max_diff(base["values"], r["values"]) for r in runs[(jobs, executor)]))
            t = result["timing"]
            parts = ", ".join(f"{k} {v:.2f}" for k, v in t["harness_seconds"].items())
            print(f"{'':6}timing: system {t['system_wall_seconds']:.2f} + metrics {t['metrics_wall_seconds']:.2f} + "
                  f"in-run harness {t['overhead_seconds']:.2f} ({parts})"
                  f"; process start + imports + validation {result['wall'] - t['wall_seconds']:.2f}")
        if not have_ray:
            print(f"{n:>4}  run --executor ray: skipped (ray not installed: pip install 'qtts-bench[ray]')")
    print(f"# load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; results in {tmp}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Throughput of the codec or TTS metric set: a plain loop vs ``qtts-bench run`` (local, Ray).

Usage: python benchmarks/throughput.py [--set codec|tts|tts-full] [--sizes 50 170] [--quick] [--no-ray]
[--out DIR]

``--set codec`` (default): the codec metric set (PESQ-WB, STOI, ESTOI, SI-SDR) on the bundled utterances through Opus
6 kbit/s, measured in one invocation so the ratios share the machine's load (printed):

(a) loop: one process, one utterance at a time, calling the libraries directly: soxr (VHQ) to
    16 kHz, the codec (qtts-bench's Opus system: PyAV/libopus, delay removed), then
    ``pesq.pesq``, ``pystoi.stoi`` (twice) and the SI-SDR formula in numpy, with one BLAS thread
    (one core; with OpenBLAS's default of one thread per core, the loop's numpy dot products
    slow down several-fold when the machine is busy, measured). Reported with and
    without the codec; "floor/2" is the metrics-only loop divided by the usable cores (the
    limit for N cores, as issue 11 defines it); "floor/2 with codec" divides the codec + metrics
    loop by the cores (what no run that executes the codec can beat). The loop imports pesq and
    pystoi (with scipy.signal) before its timer starts; that time is printed apart.
(b) ``qtts-bench run`` in a subprocess, process start included, ``--jobs 1`` and ``--jobs auto``,
    and ``--executor pipelined --jobs auto``, each with ``--output-cache off`` (the codec runs, as
    in the loop); and ``--jobs auto`` with ``--output-cache on``, whose best repeat reuses the
    outputs an earlier repeat stored (a re-run that only scores);
(c) the same with ``--executor ray`` (a local Ray instance started by the run; skipped when
    ray is not installed).

Every mode runs ``--repeats`` times (default 2), interleaved with the others, and the fastest
of each is shown (the load of a shared machine changes between modes). For each: wall
seconds, utterances/s, ratio to the loop, the harness-overhead share (process
wall minus the system and metric seconds that summary.json's ``timing`` attributes, over the
wall), and the peak resident memory of the process tree (sampled every 0.1 s from /proc; Ray's
workers are children of its raylet, started by the run, so they are in the tree). Per-utterance
values of every run are compared with the loop's (max absolute difference; the goal is 1e-6).

``--set tts`` (WER) and ``--set tts-full`` (WER, SIM-o, DNSMOS OVRL and P.808: the main job's
metrics) on one engine output: flite (voice slt) reads the first N items of pgc_hard_standin once,
before anything is timed, and both sides score those WAV files:

(a) loop: one process, one utterance per call, metric by metric (as the runner scores a chunk),
    calling the libraries directly with the metrics' default settings and one load of each model:
    faster-whisper ``WhisperModel.transcribe`` with the Whisper base model the ``wer`` metric
    resolves (int8 on CPU, default threads, greedy, temperature 0 with no fallback, no
    previous-text conditioning, no timestamps, Silero VAD with 30-s chunks, the item's language),
    WER with the harness's ``whisper`` normaliser against the item's spoken form; for tts-full,
    resemblyzer ``embed_utterance`` of the output and of its prompt (each distinct prompt embedded
    once) and speechmos' DNSMOS with one-thread ONNX sessions (as the metric). Model loads are
    timed apart from the scoring.
(b) ``qtts-bench run`` (``outputs`` system on those files) in a subprocess, ``--jobs 1`` and
    ``--jobs auto``; each run, and the loop, gets an empty result cache (no transcript, embedding
    or MOS from an earlier mode is reused; the extracted Whisper model is shared). The run batches
    where a metric does by default (``wer`` 8 utterances, ``sim_o`` 16 per forward pass), the loop
    never: that difference is part of what is measured (the per-metric seconds show it).

Printed: wall seconds, utterances/s, ratio to the loop's scoring seconds (``x loop``) and to the
loop's whole process (``x proc``: imports and model loads on both sides), the harness-overhead
share as above, where the run's time went, how many transcripts are identical to the loop's, the
corpus WER of both, and the largest per-utterance difference of SIM-o and DNSMOS. No Ray here.
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
    """The plain loop in this process; -> seconds (codec, metrics, metric imports), values."""
    import soundfile as sf
    import soxr

    started = time.perf_counter()
    import pesq
    from pystoi import stoi  # imports scipy.signal: most of the metric imports' time

    imports_s = time.perf_counter() - started

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
    return {"codec_seconds": codec_s, "metrics_seconds": metrics_s, "imports_seconds": imports_s, "values": values}


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
def run_cli(suite: Path, out: Path, n: int, jobs: str, executor: str = "local", *, env: dict | None = None,
            run_folder: tuple[str, ...] = ("throughput", "bundled", "opus"), keys: tuple[str, ...] = METRICS,
            output_cache: str | None = None) -> dict:
    cmd = [sys.executable, "-m", "qtts_bench.cli", "run", str(suite), "--out", str(out), "--limit", str(n),
           "--jobs", jobs, "--executor", executor, "--no-progress"]
    if output_cache:
        cmd += ["--output-cache", output_cache]
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                            env=env or {**os.environ, "PYTHONPATH": str(ROOT)})
    with PeakMemory(proc.pid) as mem:
        stdout, stderr = proc.communicate()
    wall = time.perf_counter() - started
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{stderr[-2000:]}")
    folder = out.joinpath(*run_folder)
    summary = json.loads((folder / "summary.json").read_text())
    timing = summary["timing"]
    values, records = {}, {}
    for line in (folder / "items.jsonl").read_text().splitlines():
        record = json.loads(line)
        values[record["id"]] = {k: record["metrics"][k].get("value") for k in keys}
        records[record["id"]] = record
    attributed = timing["system_wall_seconds"] + timing["metrics_wall_seconds"]
    return {"wall": wall, "peak_rss": mem.peak, "values": values, "timing": timing,
            "overhead_share": (wall - attributed) / wall, "in_run_overhead_share": timing["overhead_share"],
            "records": records, "summary": summary}


def max_diff(a: dict, b: dict) -> float:
    worst = 0.0
    for item_id, row in a.items():
        for key in METRICS:
            x, y = row.get(key), b.get(item_id, {}).get(key)
            if x is None or y is None:
                return math.inf
            worst = max(worst, abs(x - y))
    return worst


# ------------------------------------------------------------------------------ TTS metric set
TTS_DATASET, TTS_ITEMS = "pgc_hard_standin", 141
TTS_SUITE = """name: throughput_tts
warmup: 1
datasets:
  pgc_hard: {{dataset: pgc_hard_standin}}
systems:
  flite: {{system: outputs, params: {{dir: {outputs}}}}}
metrics:
{metrics}
"""
TTS_METRICS = {"tts": ("wer",), "tts-full": ("wer", "sim_o", "dnsmos_ovrl", "dnsmos_p808")}


def _read_16k(path: str):
    """Mono float32 at 16 kHz, as the harness reads and resamples (channels averaged, soxr VHQ)."""
    import soundfile as sf
    import soxr

    x, rate = sf.read(path, dtype="float32", always_2d=True)
    x = x.mean(axis=1) if x.shape[1] > 1 else x[:, 0]
    return soxr.resample(x, rate, 16000, quality="VHQ").astype("float32") if rate != 16000 else x


def tts_loop(n: int, outputs: str, full: bool) -> dict:
    """The plain TTS-metric loop in this process -> model load and scoring seconds, per-utterance rows."""
    import numpy as np
    from faster_whisper import WhisperModel

    from qtts_bench.executors import blas_threads
    from qtts_bench.metrics.asr.models import resolve_model
    from qtts_bench.metrics.asr.scoring import score_text
    from qtts_bench.registry import DATASETS

    blas_threads(1)  # as the runner scores with jobs 1
    items = DATASETS.create(TTS_DATASET, name="pgc_hard").items[:n]
    loads, seconds, rows = {}, {"wer": 0.0}, {}
    t = time.perf_counter()
    whisper = WhisperModel(resolve_model("faster-whisper", "base").path, device="cpu", compute_type="int8",
                           cpu_threads=0, local_files_only=True)
    loads["whisper"] = time.perf_counter() - t
    if full:
        import onnxruntime as ort
        import speechmos
        from resemblyzer import VoiceEncoder, preprocess_wav
        from speechmos.dnsmos import DNSMOS

        t = time.perf_counter()
        encoder = VoiceEncoder(device="cpu", verbose=False)
        loads["resemblyzer"] = time.perf_counter() - t
        t = time.perf_counter()
        models = Path(speechmos.__file__).resolve().parent / "dnsmos_models"
        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = 1, 1  # the metric's default (threads: 1)
        dnsmos = DNSMOS(str(models / "sig_bak_ovr.onnx"), str(models / "model_v8.onnx"))
        dnsmos.onnx_sess, dnsmos.p808_onnx_sess = (
            ort.InferenceSession(str(models / name), options, providers=["CPUExecutionProvider"])
            for name in ("sig_bak_ovr.onnx", "model_v8.onnx"))
        loads["dnsmos"] = time.perf_counter() - t
        seconds.update(sim_o=0.0, dnsmos=0.0)
        prompts = {}

        def embed(wave):
            return encoder.embed_utterance(preprocess_wav(np.clip(wave, -1.0, 1.0)))
    # Metric by metric, as the runner scores a chunk (one utterance per call all the same).
    waves = {item.id: _read_16k(str(Path(outputs) / f"{item.id}.wav")) for item in items}
    for item in items:
        t = time.perf_counter()
        segments, _ = whisper.transcribe(waves[item.id], language=item.language, beam_size=1, temperature=0.0,
                                         condition_on_previous_text=False, without_timestamps=True, vad_filter=True,
                                         vad_parameters={"max_speech_duration_s": 30}, compression_ratio_threshold=None,
                                         log_prob_threshold=None, no_speech_threshold=None)
        text = " ".join(s.text.strip() for s in segments if s.text.strip())
        seconds["wer"] += time.perf_counter() - t
        scored = score_text(reference=item.spoken_text or item.text, hypothesis=text, profile="whisper",
                            language=item.language)
        rows[item.id] = {"hypothesis": text, "errors": scored.counts.errors, "ref_words": scored.counts.ref_len}
    if full:
        t = time.perf_counter()
        for item in items:
            if item.prompt_audio not in prompts:
                prompts[item.prompt_audio] = embed(_read_16k(item.prompt_audio))
            rows[item.id]["sim_o"] = float(np.dot(embed(waves[item.id]), prompts[item.prompt_audio]))
        seconds["sim_o"] += time.perf_counter() - t
        t = time.perf_counter()
        for item in items:
            mos = dnsmos(np.clip(waves[item.id], -1.0, 1.0), 16000, False)
            rows[item.id].update(dnsmos_ovrl=float(mos["ovrl_mos"]), dnsmos_p808=float(mos["p808_mos"]))
        seconds["dnsmos"] += time.perf_counter() - t
    return {"loads": loads, "seconds": seconds, "rows": rows}


def _fresh_cache_env(tmp: Path, name: str) -> dict:
    """Environment with an empty qtts-bench cache (nothing reused across modes) whose ``models``
    folder is the shared one, so the Whisper model is extracted once per invocation."""
    cache = tmp / "caches" / name
    cache.mkdir(parents=True)
    (cache / "models").symlink_to(tmp / "shared-cache" / "models", target_is_directory=True)
    return {**os.environ, "PYTHONPATH": str(ROOT), "QTTS_BENCH_CACHE": str(cache)}


def _tts_loop_subprocess(n: int, outputs: Path, full: bool, env: dict) -> dict:
    code = (f"import json, sys; sys.path.insert(0, {str(ROOT / 'benchmarks')!r}); import throughput; "
            f"print(json.dumps(throughput.tts_loop({n}, {str(outputs)!r}, {full})))")
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, cwd=ROOT, env=env)
    with PeakMemory(proc.pid) as mem:
        out, _ = proc.communicate()
    if proc.returncode:
        raise SystemExit(f"TTS loop failed ({proc.returncode})")
    result = json.loads(out.strip().splitlines()[-1])
    result.update(wall=time.perf_counter() - started, peak_rss=mem.peak)
    return result


def _tts_outputs(n: int, folder: Path) -> None:
    """flite (slt) reads the first ``n`` items once; float32 WAVs as the harness saves outputs."""
    from qtts_bench.audio import Audio, write_audio
    from qtts_bench.registry import DATASETS, SYSTEMS
    from qtts_bench.systems.base import Request

    engine = SYSTEMS.create("flite", voice="slt")
    engine.load("cpu")
    for item in DATASETS.create(TTS_DATASET, name="pgc_hard").items[:n]:
        audio = engine.generate(Request(item.id, text=item.text, language=item.language, seed=0)).audio
        write_audio(folder / f"{item.id}.wav", Audio(audio, engine.sample_rate), exact=True)


def main_tts(args, cores: int) -> int:
    full = args.metric_set == "tts-full"
    keys = TTS_METRICS[args.metric_set]
    sizes = [20] if args.quick else sorted({min(s, TTS_ITEMS) for s in args.sizes or [50, TTS_ITEMS]})
    tmp = Path(args.out or tempfile.mkdtemp(prefix="qtts-throughput-tts-"))
    outputs, shared = tmp / "outputs", tmp / "shared-cache"
    os.environ["QTTS_BENCH_CACHE"] = str(shared)
    from qtts_bench.metrics.asr.models import resolve_model

    model = resolve_model("faster-whisper", "base")  # extracted once into the shared cache
    _tts_outputs(max(sizes), outputs)
    suite = tmp / "throughput_tts.yaml"
    suite.write_text(TTS_SUITE.format(outputs=json.dumps(str(outputs)),
                                      metrics="\n".join(f"  {k}: {{}}" for k in keys)))
    print(f"# TTS metric set ({', '.join(keys)}) on flite (slt) outputs of {TTS_DATASET}; Whisper {model.name} "
          f"({model.source}, sha256 {model.sha256[:12]}); {cores} usable cores; load average before: "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"# {sys.executable} {' '.join(sys.argv)}")
    header = (f"{'n':>4}  {'mode':<34} {'wall s':>7} {'utt/s':>7} {'x loop':>7} {'x proc':>7} {'overhead':>8} "
              f"{'peak MB':>8}")
    modes = ["1", "auto"] if not args.quick else ["auto"]
    for n in sizes:
        loops, runs = [], {m: [] for m in modes}
        for repeat in range(args.repeats):
            loops.append(_tts_loop_subprocess(n, outputs, full, _fresh_cache_env(tmp, f"loop-{n}-{repeat}")))
            for jobs in modes:
                name = f"run-{jobs}-{n}-{repeat}"
                runs[jobs].append(run_cli(suite, tmp / name, n, jobs, env=_fresh_cache_env(tmp, name),
                                          run_folder=("throughput_tts", "pgc_hard", "flite"), keys=keys))
        base = min(loops, key=lambda r: sum(r["seconds"].values()))
        loop_scoring = sum(base["seconds"].values())
        print(header)

        def row(mode, wall, overhead=None, peak=None):
            print(f"{n:>4}  {mode:<34} {wall:>7.2f} {n / wall:>7.2f} {loop_scoring / wall:>7.2f} "
                  f"{base['wall'] / wall:>7.2f} {'' if overhead is None else f'{100 * overhead:.1f} %':>8} "
                  f"{'' if peak is None else f'{peak / 2**20:.0f}':>8}")

        row("loop: scoring only", loop_scoring)
        row("loop: process (imports, loads, scoring)", base["wall"], peak=base["peak_rss"])
        print(f"{'':6}loop: {', '.join(f'{k} {v:.2f}' for k, v in base['seconds'].items())} s scoring; model loads "
              f"{', '.join(f'{k} {v:.2f}' for k, v in base['loads'].items())} s")
        loop_rows = base["rows"]
        loop_wer = sum(r["errors"] for r in loop_rows.values()) / max(1, sum(r["ref_words"] for r in loop_rows.values()))
        for jobs in modes:
            result = min(runs[jobs], key=lambda r: r["wall"])
            row(f"run --jobs {jobs}", result["wall"], result["overhead_share"], result["peak_rss"])
            t = result["timing"]
            metric_parts = ", ".join(f"{k} {v:.2f}" for k, v in t["metric_seconds"].items())
            parts = ", ".join(f"{k} {v:.2f}" for k, v in t["harness_seconds"].items())
            print(f"{'':6}timing: system {t['system_wall_seconds']:.2f} + metrics {t['metrics_wall_seconds']:.2f} "
                  f"({metric_parts}; worker s) + in-run harness {t['overhead_seconds']:.2f} ({parts}); suite start-up "
                  f"(device, metric loads) {t['suite_startup_seconds']:.2f}; process start + imports + validation "
                  f"{result['wall'] - t['wall_seconds'] - t['suite_startup_seconds']:.2f}; {t['workers']} worker(s), "
                  f"parallelism {t['parallelism']:.2f}")
            for k, r in enumerate(runs[jobs], 1):  # every repeat, not only the fastest
                same = sum(r["records"][i]["metrics"]["wer"].get("extra", {}).get("hypothesis") == loop_rows[i]["hypothesis"]
                           for i in loop_rows)
                wer = r["summary"]["metrics"]["wer"]
                line = (f"{'':6}repeat {k}: transcripts identical to the loop's: {same}/{len(loop_rows)}; corpus WER run "
                        f"{wer['value']:.4f} vs loop {loop_wer:.4f} (failed {wer['n_failed']})")
                for key in keys[1:]:
                    diffs = [abs(r["values"][i][key] - loop_rows[i][key]) for i in loop_rows
                             if r["values"][i][key] is not None]
                    line += f"; {key} max |diff| {max(diffs, default=math.inf):.1e} ({len(diffs)} scored)"
                print(line)
                differing = [i for i in loop_rows
                             if r["records"][i]["metrics"]["wer"].get("extra", {}).get("hypothesis")
                             != loop_rows[i]["hypothesis"]]
                for i in differing[:2]:
                    print(f"{'':8}{i}: run {r['records'][i]['metrics']['wer'].get('extra', {}).get('hypothesis')!r} "
                          f"| loop {loop_rows[i]['hypothesis']!r}")
    print(f"# load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; results in {tmp}")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", dest="metric_set", choices=["codec", "tts", "tts-full"], default="codec",
                        help="codec: PESQ-WB/STOI/ESTOI/SI-SDR through Opus; tts: WER; tts-full: WER, SIM-o, "
                             "DNSMOS (on flite outputs of pgc_hard_standin)")
    parser.add_argument("--sizes", type=int, nargs="+", default=None,
                        help="utterance counts (default 50 and all: 170 for codec, 141 for tts; larger values are "
                             "capped)")
    parser.add_argument("--quick", action="store_true", help="20 utterances, no --jobs 1 run, one repeat")
    parser.add_argument("--repeats", type=int, default=2,
                        help="interleaved repeats of every mode; the fastest of each is shown (default 2)")
    parser.add_argument("--no-ray", action="store_true")
    parser.add_argument("--out", help="results folder (default: a temporary one)")
    args = parser.parse_args(argv)
    sizes = [20] if args.quick else sorted({min(s, 170) for s in args.sizes or [50, 170]})
    if args.quick:
        args.repeats = 1
    import importlib.util

    from qtts_bench.executors import usable_cores

    have_ray = importlib.util.find_spec("ray") is not None and not args.no_ray
    cores = usable_cores()
    if args.metric_set != "codec":
        return main_tts(args, cores)
    tmp = Path(args.out or tempfile.mkdtemp(prefix="qtts-throughput-"))
    suite = tmp / "throughput.yaml"
    suite.write_text(SUITE)
    print(f"# codec metric set (pesq_wb, stoi, estoi, si_sdr) through Opus 6 kbit/s, bundled set; "
          f"{cores} usable cores; load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"# {sys.executable} {' '.join(sys.argv)}")
    header = f"{'n':>4}  {'mode':<52} {'wall s':>7} {'utt/s':>7} {'x loop':>7} {'x floor':>8} " \
             f"{'overhead':>8} {'peak MB':>8} {'max |diff|':>10}"
    for n in sizes:
        # (jobs, executor, output cache): "off" computes every output (the codec is part of the
        # time, as in the loop); "on" reuses the outputs an earlier repeat stored (the best of the
        # repeats is shown, so this row is a re-run that only scores).
        modes = [("1", "local", "off"), ("auto", "local", "off"), ("auto", "pipelined", "off"), ("auto", "local", "on")]
        if args.quick:
            modes = [("auto", "local", "off")]
        if have_ray:
            modes.append(("auto", "ray", "off"))
        # Interleaved repeats, best of each kept: the machine's load changes between modes.
        loops, runs = [], {m: [] for m in modes}
        for repeat in range(args.repeats):
            loops.append(_loop_subprocess(n))
            for jobs, executor, cache in modes:
                runs[(jobs, executor, cache)].append(run_cli(suite, tmp / f"{executor}-{jobs}-{cache}-{n}-{repeat}", n,
                                                             jobs, executor, output_cache=cache))
        base = min(loops, key=lambda r: r["codec_seconds"] + r["metrics_seconds"])
        base_metrics = min(r["metrics_seconds"] for r in loops)
        loop_total = base["codec_seconds"] + base["metrics_seconds"]
        floor = base_metrics / cores
        print(header)

        def row(mode, wall, overhead=None, peak=None, diff=None):
            print(f"{n:>4}  {mode:<52} {wall:>7.2f} {n / wall:>7.2f} {loop_total / wall:>7.2f} "
                  f"{wall / floor:>8.2f} {'' if overhead is None else f'{100 * overhead:.1f} %':>8} "
                  f"{'' if peak is None else f'{peak / 2**20:.0f}':>8} "
                  f"{'' if diff is None else f'{diff:.1e}':>10}")

        row("loop: metrics only", base_metrics)
        row("loop: codec + metrics", loop_total, peak=base["peak_rss"])
        row(f"floor/{cores}: metrics loop / cores", floor)
        # What any run that executes the codec cannot beat: the codec's work divided over the cores too.
        row(f"floor/{cores} with codec: codec + metrics loop / cores", loop_total / cores)
        print(f"{'':6}not in the loop's time: importing pesq and pystoi (scipy.signal) "
              f"{min(r['imports_seconds'] for r in loops):.2f} s, which every run pays once per worker")
        for mode in modes:
            jobs, executor, cache = mode
            result = min(runs[mode], key=lambda r: r["wall"])
            label = f"run --executor {executor} --jobs {jobs}" + (" (outputs reused)" if cache == "on" else "")
            row(label, result["wall"], result["overhead_share"],
                result["peak_rss"], max(max_diff(base["values"], r["values"]) for r in runs[mode]))
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

#!/usr/bin/env python
"""Decoding speed of QTTS: Hierarchical Parallel vs Delay Multihead vs single codebook, in one run.

Random-initialised weights at the sizes of ``configs/qtts/pilot_*.yaml`` (speed does not depend
on the weights) with the codebook count set to 4 / 8 / 16, the real shipped QDAC
(``qdac16-50hz-asr``) decoding the frames, and outputs forced to exactly 2 / 5 / 10 s
(end-of-speech masked until the last frame). For each (decoder, codebooks, length):

* ``lm fps``: frames generated per second by the language model alone (no codec);
* ``RTF``: whole synthesis (generate every frame, then one QDAC decode) / audio seconds;
* ``RTF stream`` and ``TTFT``: streamed synthesis (QDAC decodes chunks of ``--chunk-frames``
  frames while generating; first chunk = chunk + the decoder's reach in frames), wall time to the
  first audio chunk;
* the same three in process CPU seconds (CPU only): on a machine shared with other work, wall
  times vary by tens of per cent from run to run while single-thread CPU time does not, so the
  ratios are given on both;

then the ratios multihead / hierarchical (RTF and TTFT) at every point, and how RTF grows with
the codebook count (vs 4) and with the length (vs the shortest). Timings: one untimed warm-up
per model, then ``--repeats`` rounds that each visit every point in a rotated order; each point
reports its fastest round (the least disturbed by other processes on a shared machine; medians
are printed too and written to ``--json``), measured with :func:`qtts_bench.timing.measure` /
:func:`~qtts_bench.timing.stream_timing` (CUDA-synchronised when ``--device cuda``).

Usage: ``python benchmarks/bench_qtts_decoding.py [--quick] [--threads 1] [--repeats 3] [--json OUT]``
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

ROOT = Path(__file__).resolve().parents[1]
TEXT = ("The quick brown fox jumps over the lazy dog while the old teacher reads a long story "
        "to the children near the quiet river.")


def build(decoder: str, n_codebooks: int, device: str, seed: int = 0):
    import torch

    from qtts_bench.qtts.config import count_parameters, load_run_config
    from qtts_bench.qtts.model import QttsModel

    source = "hierarchical" if decoder == "hierarchical" else "multihead"
    run = load_run_config(str(ROOT / "configs" / "qtts" / f"pilot_{source}.yaml"))
    cfg = run.model.replace(decoder=decoder, n_codebooks=1 if decoder == "single" else n_codebooks, dropout=0.0)
    torch.manual_seed(seed)
    model = QttsModel(cfg).eval().to(device)
    return model, count_parameters(cfg)["total"], run.codec


def time_once(synth, seconds: float, chunk: int, device: str) -> dict:
    """One timed whole synthesis (split into LM and codec time) and one timed streamed synthesis.

    Wall seconds (what the harness reports) and, on CPU, process CPU seconds (``time.process_time``:
    with one thread it counts this run's work only, so it is stable when other processes compete
    for the cores; on CUDA it is not a measure of the work and is left out).
    """
    from qtts_bench.qtts.sampling import SamplingConfig
    from qtts_bench.timing import measure, stream_timing

    frames = int(round(seconds * synth.cfg.frame_rate))
    sampling = SamplingConfig(temperature=0.8, top_k=50, min_frames=frames)
    kwargs = dict(sampling=sampling, seed=0, max_frames=frames)
    info: dict = {}
    c0 = time.process_time()
    _, lm_s, _ = measure(lambda: list(synth.frames(TEXT, info=info, **kwargs)), device)
    c1 = time.process_time()
    assert info["codes"].shape[1] == frames, info["codes"].shape
    _, dec_s, _ = measure(lambda: synth.decode(info["codes"]), device)
    c2 = time.process_time()
    first_cpu = []

    def chunks():
        for piece in synth.stream(TEXT, chunk_frames=chunk, **kwargs):
            if not first_cpu and piece.size:
                first_cpu.append(time.process_time())
            yield piece

    c3 = time.process_time()
    (_, first, total), _, _ = measure(lambda: stream_timing(chunks, device), device)
    c4 = time.process_time()
    return {"lm": lm_s, "whole": lm_s + dec_s, "stream": total, "ttft": first, "frames": frames,
            "lm_cpu": c1 - c0, "whole_cpu": c2 - c0, "stream_cpu": c4 - c3, "ttft_cpu": first_cpu[0] - c3}


def summarise(runs: list[dict], seconds: float) -> dict:
    """Minimum over the repeats (the least disturbed by other processes) and the median."""
    out = {"seconds": seconds, "frames": runs[0]["frames"], "repeats": len(runs)}
    for key in ("lm", "whole", "stream", "ttft", "lm_cpu", "whole_cpu", "stream_cpu", "ttft_cpu"):
        values = [r[key] for r in runs]
        out[f"{key}_min"], out[f"{key}_median"] = min(values), statistics.median(values)
    out["lm_fps"] = out["frames"] / out["lm_min"]
    out["rtf"], out["rtf_stream"], out["ttft"] = out["whole_min"] / seconds, out["stream_min"] / seconds, out["ttft_min"]
    out["rtf_cpu"], out["rtf_stream_cpu"] = out["whole_cpu_min"] / seconds, out["stream_cpu_min"] / seconds
    out["ttft_cpu"] = out["ttft_cpu_min"]
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="4 and 16 codebooks, 2 s only")
    parser.add_argument("--codebooks", type=int, nargs="+", default=[4, 8, 16])
    parser.add_argument("--seconds", type=float, nargs="+", default=[2.0, 5.0, 10.0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--chunk-frames", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", help="write every measurement to this file")
    args = parser.parse_args(argv)
    if args.quick:
        args.codebooks, args.seconds = [4, 16], [2.0]

    import torch

    from qtts_bench.qtts.inference import Synthesizer
    from qtts_bench.qtts.tokenizer import CharTokenizer
    from qtts_bench.systems.qdac import QdacCodec
    from qtts_bench.timing import device_name, is_cuda

    torch.set_num_threads(args.threads)
    is_cuda(args.device)  # fails clearly when CUDA is asked for and unusable
    print(f"# QTTS decoding benchmark: {device_name(args.device)}, {args.device}, {torch.get_num_threads()} thread(s), "
          f"torch {torch.__version__}; random weights at the pilot sizes; chunk {args.chunk_frames} frames; "
          f"fastest of {args.repeats} interleaved repeats; started {time.strftime('%Y-%m-%d %H:%M:%S')}")
    codecs, reach, synths = {}, {}, {}
    points = [("single", 1)] + [(d, k) for k in args.codebooks for d in ("hierarchical", "multihead")]
    tokenizer = CharTokenizer()
    for decoder, k in points:
        model, params, codec_name = build(decoder, k, args.device)
        if k not in codecs:
            codecs[k] = QdacCodec(codec_name, n_codebooks=k, threads=args.threads)
            codecs[k].load(args.device)
        synth = Synthesizer(model, tokenizer, codecs[k], args.device, max_seconds=None, reach=reach.get(k))
        reach[k] = synth.reach
        time_once(synth, min(args.seconds), args.chunk_frames, args.device)  # warm-up
        synths[decoder, k] = (synth, params)
    # Interleaved: every repeat visits every point (rotated order), so load from other processes
    # spreads over all points; each point reports its fastest repeat.
    timed = {(d, k, s): [] for d, k in points for s in args.seconds}
    keys = list(timed)
    for r in range(args.repeats):
        shift = (r * len(keys)) // max(1, args.repeats)
        for key in keys[shift:] + keys[:shift]:
            decoder, k, seconds = key
            timed[key].append(time_once(synths[decoder, k][0], seconds, args.chunk_frames, args.device))
    rows = []
    for (decoder, k, seconds), runs in timed.items():
        synth, params = synths[decoder, k]
        row = {"decoder": decoder, "codebooks": k, "parameters": params, "reach_frames": synth.reach,
               **summarise(runs, seconds)}
        rows.append(row)
        print(f"{decoder:>12} K={k:<2} {params / 1e6:5.2f} M  {seconds:4.1f} s  lm {row['lm_fps']:6.1f} frames/s  "
              f"RTF {row['rtf']:.3f}  RTF stream {row['rtf_stream']:.3f}  TTFT {row['ttft'] * 1000:5.0f} ms  |  CPU: "
              f"RTF {row['rtf_cpu']:.3f}  stream {row['rtf_stream_cpu']:.3f}  TTFT {row['ttft_cpu'] * 1000:5.0f} ms",
              flush=True)

    def get(decoder, k, seconds):
        return next(r for r in rows if r["decoder"] == decoder and r["codebooks"] == k and r["seconds"] == seconds)

    cpu = not args.device.startswith("cuda")
    print("\n# multihead / hierarchical (below 1: multihead faster); wall, then CPU time (stable under load)")
    print(f"{'K':>3} {'seconds':>7} {'RTF':>7} {'stream':>7} {'TTFT':>7}" + (f" | {'RTF':>7} {'stream':>7} {'TTFT':>7}"
                                                                          if cpu else ""))
    for k in args.codebooks:
        for s in args.seconds:
            m, h = get("multihead", k, s), get("hierarchical", k, s)
            line = (f"{k:>3} {s:>7.1f} {m['rtf'] / h['rtf']:>7.3f} {m['rtf_stream'] / h['rtf_stream']:>7.3f} "
                    f"{m['ttft'] / h['ttft']:>7.3f}")
            if cpu:
                line += (f" | {m['rtf_cpu'] / h['rtf_cpu']:>7.3f} {m['rtf_stream_cpu'] / h['rtf_stream_cpu']:>7.3f} "
                         f"{m['ttft_cpu'] / h['ttft_cpu']:>7.3f}")
            print(line)
    metric = "rtf_cpu" if cpu else "rtf"
    base_k = min(args.codebooks)
    print(f"\n# growth of {'CPU ' if cpu else ''}RTF with codebooks (vs K={base_k}) at each length")
    for decoder in ("hierarchical", "multihead"):
        for s in args.seconds:
            parts = [f"K={k}: {get(decoder, k, s)[metric] / get(decoder, base_k, s)[metric]:.2f}x" for k in args.codebooks]
            print(f"{decoder:>12} {s:4.1f} s  " + "  ".join(parts))
    base_s = min(args.seconds)
    if len(args.seconds) > 1:
        print(f"\n# growth of {'CPU ' if cpu else ''}RTF with length (vs {base_s:g} s): per-frame cost growth from "
              "attention over a longer context")
        for decoder, k in points:
            parts = [f"{s:g} s: {get(decoder, k, s)[metric] / get(decoder, k, base_s)[metric]:.2f}x" for s in args.seconds]
            print(f"{decoder:>12} K={k:<2} " + "  ".join(parts))
    single = [get("single", 1, s) for s in args.seconds]
    print("\n# single codebook (K=1): " + "  ".join(
        f"{r['seconds']:g} s RTF {r['rtf']:.3f} (CPU {r['rtf_cpu']:.3f}) TTFT {r['ttft'] * 1000:.0f} ms" for r in single))
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "rows": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

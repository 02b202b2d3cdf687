#!/usr/bin/env python
"""Encode and decode real-time factors of QDAC 4/8/16 at 50 and 25 Hz on this machine.

RTF = wall seconds / audio seconds (lower is faster), median over ``--repeats`` timed runs after
one untimed warm-up, on ``--seconds`` of the bundled set's speech (concatenated). Uses the
shipped checkpoints when present, otherwise a random-initialised model of the default
architecture (speed does not depend on the weights; the line says which). Printed next to the
same run's reference: Opus 8 kbit/s encode+decode (PyAV) on the same audio, as a ratio.

Usage: ``python benchmarks/bench_qdac.py [--threads 1] [--seconds 10] [--repeats 3] [--device cpu]``
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CHECKPOINTS = {50: "qdac16-50hz-asr", 25: "qdac16-25hz-asr"}


def speech(seconds: float) -> np.ndarray:
    from qtts_bench.audio import read_audio
    from qtts_bench.data.bundled import load_bundled

    pieces, total = [], 0
    for item in load_bundled().items:
        x = read_audio(item.audio).at(16000).samples
        pieces.append(x)
        total += len(x)
        if total >= seconds * 16000:
            break
    return np.concatenate(pieces)[: int(seconds * 16000)]


def timed(fn, repeats: int, sync) -> float:
    fn()
    sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)

    import torch

    from qtts_bench.qdac.checkpoint import load_checkpoint, shipped_names
    from qtts_bench.qdac.config import QdacConfig
    from qtts_bench.qdac.model import Qdac
    from qtts_bench.registry import SYSTEMS

    torch.set_num_threads(args.threads)
    sync = (lambda: torch.cuda.synchronize()) if args.device.startswith("cuda") else (lambda: None)
    audio = speech(args.seconds)
    seconds = len(audio) / 16000

    opus = SYSTEMS.create("opus", bitrate=8000)
    opus.load("cpu")
    x48 = audio  # the runner would resample; Opus here takes 16 kHz input directly
    ref_rtf = timed(lambda: opus.decode(opus.encode(x48)), args.repeats, lambda: None) / seconds
    print(f"{seconds:.1f} s of bundled speech, {args.threads} thread(s), device {args.device}, torch {torch.__version__}")
    print(f"reference: opus 8 kbit/s encode+decode RTF {ref_rtf:.5f}")
    print(f"{'system':22s} {'kbit/s':>7s} {'encode RTF':>11s} {'decode RTF':>11s} {'enc+dec RTF':>12s} "
          f"{'x opus':>8s}  weights")
    shipped = set(shipped_names())
    x = torch.from_numpy(audio)[None].to(args.device)
    for rate in (50, 25):
        name = CHECKPOINTS[rate]
        if name in shipped:
            model, _ = load_checkpoint(name, args.device)
            source = name
        else:
            torch.manual_seed(0)
            model = Qdac(QdacConfig(frame_rate=rate)).eval().to(args.device)
            source = "random init (no shipped checkpoint)"
        for k in (4, 8, 16):
            if k > model.cfg.n_codebooks:
                continue
            codes = model.encode(x, k)
            enc = timed(lambda: model.encode(x, k), args.repeats, sync) / seconds
            dec = timed(lambda: model.decode(codes), args.repeats, sync) / seconds
            kbps = rate * k * np.log2(model.cfg.codebook_size) / 1000
            print(f"{f'qdac-{k}@{rate}Hz':22s} {kbps:7.2f} {enc:11.5f} {dec:11.5f} {enc + dec:12.5f} "
                  f"{(enc + dec) / ref_rtf:8.2f}  {source}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

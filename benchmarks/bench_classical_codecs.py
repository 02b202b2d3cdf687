"""Encode + decode speed of the classical codec baselines, relative to passthrough.

Usage: PYTHONPATH=. python benchmarks/bench_classical_codecs.py [--seconds 10] [--repeats 5]

For each codec: one untimed warm-up round trip, then ``repeats`` timed ones on the same
deterministic speech-like signal (at the codec's own rate, so resampling to it is not
counted). Reported: median encode and decode real-time factors (compute seconds / audio
seconds, single process, CPU), their sum, and the sum divided by passthrough's measured in the
same run (the harness's floor: input validation and copying). ``load`` is the one-off delay
calibration (five 2 s signals through the codec).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

from qtts_bench.systems.classical import (
    AmrNbCodec,
    Codec2Codec,
    G722Codec,
    Mp3Codec,
    OpusCodec,
    Passthrough,
)
from qtts_bench.systems.delay import calibration_signal

CODECS = {
    "passthrough": lambda: Passthrough(),
    "opus 6k": lambda: OpusCodec(6000),
    "opus 12k": lambda: OpusCodec(12000),
    "opus 24k": lambda: OpusCodec(24000),
    "opus 12k @48k": lambda: OpusCodec(12000, sample_rate=48000),
    "mp3 32k": lambda: Mp3Codec(32000),
    "amr_nb 12.2k": lambda: AmrNbCodec(12200),
    "g722 64k": lambda: G722Codec(),
    "codec2 1200": lambda: Codec2Codec(1200),
    "codec2 3200": lambda: Codec2Codec(3200),
}


def time_round_trips(codec, seconds: float, repeats: int) -> tuple[float, float, float]:
    """(load s, median encode RTF, median decode RTF)."""
    t0 = time.perf_counter()
    codec.load()
    load = time.perf_counter() - t0
    x = calibration_signal(codec.sample_rate, seconds, seed=99)
    codec.decode(codec.encode(x))  # warm-up
    enc, dec = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        encoded = codec.encode(x)
        t1 = time.perf_counter()
        codec.decode(encoded)
        t2 = time.perf_counter()
        enc.append((t1 - t0) / seconds)
        dec.append((t2 - t1) / seconds)
    return load, statistics.median(enc), statistics.median(dec)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="signal length (s)")
    parser.add_argument("--repeats", type=int, default=5, help="timed round trips per codec")
    args = parser.parse_args()
    print(f"# {platform.processor() or platform.machine()}, python {platform.python_version()}, "
          f"{args.seconds:g} s signal, median of {args.repeats}")
    rows = {name: time_round_trips(make(), args.seconds, args.repeats) for name, make in CODECS.items()}
    floor = rows["passthrough"][1] + rows["passthrough"][2]
    print(f"{'codec':<15} {'load s':>7} {'enc RTF':>9} {'dec RTF':>9} {'total RTF':>10} {'x passthrough':>14}")
    for name, (load, enc, dec) in rows.items():
        print(f"{name:<15} {load:7.2f} {enc:9.5f} {dec:9.5f} {enc + dec:10.5f} {(enc + dec) / floor:14.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""PESQ-WB of the classical codec baselines on real speech files (a sanity check of ordering).

Usage: PYTHONPATH=. python benchmarks/quality_classical_codecs.py file1.wav [file2.wav ...]

Each file is resampled to 16 kHz (reference), to the codec's rate for coding, and the decoded
output back to 16 kHz; PESQ P.862.2 wide-band (``pesq`` package) compares the two. The codec's
measured delay is removed by the codec itself; PESQ also aligns internally.
"""

from __future__ import annotations

import sys

import numpy as np

from qtts_bench.audio import read_audio, resample
from qtts_bench.systems.classical import (
    AmrNbCodec,
    Codec2Codec,
    G722Codec,
    Mp3Codec,
    OpusCodec,
    Passthrough,
)

CODECS = {
    "passthrough": lambda: Passthrough(),
    "opus 6k": lambda: OpusCodec(6000),
    "opus 12k": lambda: OpusCodec(12000),
    "opus 24k": lambda: OpusCodec(24000),
    "mp3 32k": lambda: Mp3Codec(32000),
    "amr_nb 12.2k": lambda: AmrNbCodec(12200),
    "g722 64k": lambda: G722Codec(),
    "codec2 1200": lambda: Codec2Codec(1200),
    "codec2 3200": lambda: Codec2Codec(3200),
}


def main(paths: list[str]) -> int:
    from pesq import pesq

    refs = [read_audio(p).at(16000).samples for p in paths]
    per_file = len(refs) <= 8
    head = " ".join(f"{'PESQ-WB':>8}" for _ in refs) if per_file else f"{'n':>4} {'sd':>6}"
    print(f"{'codec':<14} {'kbit/s meas':>11} {head}    mean")
    for label, make in CODECS.items():
        codec = make()
        codec.load()
        scores, bits, seconds = [], 0, 0.0
        for ref in refs:
            x = resample(ref, 16000, codec.sample_rate)
            encoded = codec.encode(x)
            y = resample(codec.decode(encoded), codec.sample_rate, 16000)[: len(ref)]
            bits += codec.encoded_bits(encoded) or 0
            seconds += len(x) / codec.sample_rate
            scores.append(pesq(16000, ref, y, "wb"))
        rate = f"{bits / seconds / 1000:11.2f}" if bits else f"{'-':>11}"
        cols = " ".join(f"{s:8.3f}" for s in scores) if per_file else f"{len(scores):4d} {np.std(scores):6.3f}"
        print(f"{label:<14} {rate} {cols}  {np.mean(scores):6.3f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

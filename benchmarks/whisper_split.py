"""Where Whisper's time goes on this device: encoder vs decoder, one utterance per call vs batched.

Usage: python benchmarks/whisper_split.py [--n 16] [--batch 8] [--model base] [--threads 2] [--device cpu]

Loads the model the ``wer`` metric resolves (faster-whisper / CTranslate2, offline) once, then
transcribes the first N English bundled utterances greedily (no timestamps), timing the backend's
feature extraction + encoder (``_encode``: every clip padded to Whisper's 30-s window) apart from
the rest of the backend's ``decode`` (CTranslate2's ``generate`` with the metric's default
decoding options, and detokenising), first one clip per call, then ``--batch`` clips per call, in
interleaved repeats (best of each shown). Prints the seconds, the encoder's share, and the
largest speed-up batching could give if decoding cost nothing (Amdahl): on a CPU the encoder's
cost per window does not fall with batching, which bounds the batched ``wer`` path there.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=16)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--model", default="base")
    parser.add_argument("--threads", type=int, default=0, help="CTranslate2 CPU threads (0: its default)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args(argv)

    import soundfile as sf

    from qtts_bench.metrics.asr.backends import DecodeOptions, get_backend
    from qtts_bench.metrics.asr.models import resolve_model
    from qtts_bench.registry import DATASETS

    items = DATASETS.create("bundled", name="bundled", languages=["en"]).items[:args.n]
    clips = [sf.read(item.audio, dtype="float32")[0] for item in items]
    backend = get_backend(resolve_model("faster-whisper", args.model), device=args.device, cpu_threads=args.threads)
    backend.load()
    options = DecodeOptions()  # the wer metric's defaults: greedy, no timestamps
    encode_seconds = [0.0]
    encode = backend._encode

    def timed_encode(segments):  # the backend's decode() calls this first, then the model's generate
        started = time.perf_counter()
        encoded = encode(segments)
        encode_seconds[0] += time.perf_counter() - started
        return encoded

    backend._encode = timed_encode

    def transcribe(batch: int) -> tuple[float, float]:
        """-> (encode seconds, decode seconds) for every clip, ``batch`` clips per decode() call."""
        encode_seconds[0], total = 0.0, 0.0
        for start in range(0, len(clips), batch):
            part = clips[start:start + batch]
            t = time.perf_counter()
            backend.decode(part, ["en"] * len(part), options)
            total += time.perf_counter() - t
        return encode_seconds[0], total - encode_seconds[0]

    transcribe(args.batch)  # warm-up
    best: dict[int, tuple[float, float]] = {}
    for _ in range(args.repeats):
        for batch in (1, args.batch):
            found = transcribe(batch)
            if batch not in best or sum(found) < sum(best[batch]):
                best[batch] = found
    print(f"# Whisper {args.model} on {args.device}, {len(clips)} bundled English utterances, greedy; "
          f"best of {args.repeats}")
    for batch, (encode_s, decode_s) in best.items():
        total = encode_s + decode_s
        print(f"batch {batch:>2}: encode {encode_s:6.2f} s  decode {decode_s:6.2f} s  total {total:6.2f} s  "
              f"encoder share {100 * encode_s / total:4.1f} %")
    one, many = sum(best[1]), sum(best[args.batch])
    print(f"batched / one per call: {one / many:.2f}x; bound if decoding were free: {one / best[args.batch][0]:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())

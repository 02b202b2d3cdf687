#!/usr/bin/env python
"""RTF, TTFT and peak memory of real systems on the bundled set, with warm-up and percentiles.

Systems: Codec2 (``qtts_bench.systems.classical.Codec2Codec``, encode + decode per utterance) and
espeak-ng (Debian package; a streaming TTS: its WAV output is read from a pipe as it is written,
so TTFT is the time to the first audio bytes after the header). Before timing, each system gets
``--warmup`` untimed calls. A ``time.sleep`` of known length is measured in the same run as the
timer's reference. Values go through the ``rtf`` / ``ttft`` / ``peak_memory`` metrics.

    PYTHONPATH=. python benchmarks/speed_real_systems.py [--n 30] [--warmup 2] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from qtts_bench.audio import Audio, read_audio
from qtts_bench.errors import MetricFailure
from qtts_bench.metrics.base import Inputs
from qtts_bench.metrics.speed import PeakMemory, Rtf, Ttft, percentiles
from qtts_bench.timing import measure, provenance, stream_timing

WAV_HEADER = 44  # espeak-ng --stdout writes a canonical 44-byte RIFF header, 16-bit mono 22050 Hz
ESPEAK_RATE = 22050


def _score(metric, info):
    inputs = Inputs("u", estimate=Audio(np.zeros(1, np.float32), 16000), system_info=info)
    try:
        return metric.score(inputs)
    except MetricFailure:
        return None


def summarize(name: str, infos: list[dict]) -> dict:
    rtf = [_score(Rtf(), i) for i in infos]
    ttft = [_score(Ttft(), i) for i in infos]
    mem = [_score(PeakMemory(), i) for i in infos]
    total_s = sum(s.stats["seconds"] for s in rtf if s)
    total_a = sum(s.stats["audio_seconds"] for s in rtf if s)
    out = {"system": name, "n": len(infos), "rtf_aggregate": total_s / total_a,
           "rtf": percentiles([s.value for s in rtf if s]),
           "ttft": percentiles([s.value for s in ttft if s]) if any(ttft) else None,
           "peak_memory_mib": percentiles([s.value / 2**20 for s in mem if s])}
    return out


def codec2(audios: list[Audio], mode: int, warmup: int, device: str) -> list[dict]:
    from qtts_bench.systems.classical import Codec2Codec

    codec = Codec2Codec(mode=mode)
    codec.load(device)
    xs = [a.at(codec.sample_rate).samples for a in audios]
    for x in xs[:warmup]:
        codec.decode(codec.encode(x))
    infos = []
    for x in xs:
        out, seconds, peak = measure(lambda x=x: codec.decode(codec.encode(x)), device)
        infos.append({"seconds": seconds, "audio_seconds": len(out) / codec.sample_rate,
                      "peak_memory_bytes": peak, "ttft_seconds": None, "device": device})
    return infos


def espeak_stream(text: str, chunk_bytes: int = 4096):
    """Yield int16 sample chunks of espeak-ng's output as they arrive on the pipe."""
    proc = subprocess.Popen(["espeak-ng", "--stdout", text], stdout=subprocess.PIPE, bufsize=0)
    header, pending = b"", b""
    try:
        while True:
            block = proc.stdout.read(chunk_bytes)
            if not block:
                break
            if len(header) < WAV_HEADER:
                need = WAV_HEADER - len(header)
                header, block = header + block[:need], block[need:]
            block = pending + block
            usable = len(block) // 2 * 2
            pending = block[usable:]
            yield np.frombuffer(block[:usable], dtype="<i2")
    finally:
        proc.stdout.close()
        proc.wait()


def espeak(texts: list[str], warmup: int, device: str) -> list[dict]:
    for text in texts[:warmup]:
        list(espeak_stream(text))
    infos = []
    for text in texts:
        (chunks, ttft, _total), seconds, peak = measure(lambda t=text: stream_timing(lambda: espeak_stream(t), device),
                                                       device)
        n = sum(len(c) for c in chunks)
        infos.append({"seconds": seconds, "audio_seconds": n / ESPEAK_RATE, "ttft_seconds": ttft,
                      "peak_memory_bytes": peak, "device": device})
    return infos


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=30, help="utterances per system")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--codec2-mode", type=int, default=1200)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json")
    args = parser.parse_args(argv)

    from qtts_bench.data.bundled import load_bundled

    items = [it for it in load_bundled().items if it.language == "en" and it.text][: args.n]
    audios = [read_audio(it.audio) for it in items]

    _, slept, _ = measure(lambda: time.sleep(0.1), args.device)
    print(f"timer reference: time.sleep(0.100) measured as {slept:.4f} s (ratio {slept / 0.1:.3f})")
    results = [summarize(f"codec2-{args.codec2_mode}", codec2(audios, args.codec2_mode, args.warmup, args.device))]
    if shutil.which("espeak-ng"):
        results.append(summarize("espeak-ng (streaming)", espeak([it.text for it in items], args.warmup, args.device)))
    else:
        print("espeak-ng not installed (apt-get install espeak-ng): TTFT not measured")

    prov = provenance(args.device)
    print(f"device {prov['device']} ({prov['device_name']}), peak memory: {prov['peak_memory']}; "
          f"warm-up calls per system: {args.warmup} (excluded)")
    print(f"{'system':<24} {'n':>3} {'RTF agg':>9} {'RTF p50':>9} {'RTF p95':>9} {'TTFT p50':>9} {'TTFT p95':>9} "
          f"{'RSS p50 MiB':>11}")
    def fmt(v):
        return f"{v:9.4f}" if v is not None else f"{'-':>9}"

    for r in results:
        t = r["ttft"] or {"p50": None, "p95": None}
        print(f"{r['system']:<24} {r['n']:>3} {r['rtf_aggregate']:9.4f} {fmt(r['rtf']['p50'])} "
              f"{fmt(r['rtf']['p95'])} {fmt(t['p50'])} {fmt(t['p95'])} {r['peak_memory_mib']['p50']:11.1f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"provenance": prov, "sleep_reference": slept, "results": results},
                                              indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())

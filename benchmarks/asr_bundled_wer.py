#!/usr/bin/env python
"""Whisper WER on the bundled set's reference audio (the ASR floor), and ASR speed.

For each model: corpus WER and mean per-utterance WER under the ``whisper`` and ``seedtts``
normalisers, seconds per utterance (uncached), real-time factor, and the speed-up of batched
decoding over batch size 1 measured in the same run (transcripts must be identical).

Usage: ``python benchmarks/asr_bundled_wer.py [--models base tiny.en] [--languages en]
[--batch-size 8] [--compare-batch] [--limit N]``. Writes nothing outside a temporary cache.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["base", "tiny.en"])
    ap.add_argument("--languages", nargs="+", default=["en"])
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--compare-batch", action="store_true", help="also time batch size 1 and compare transcripts")
    ap.add_argument("--limit", type=int, default=None)
    root = Path(__file__).resolve().parents[1]
    ap.add_argument("--manifest", default=str(root / "qtts_bench/data/bundled/manifest.jsonl"))
    args = ap.parse_args()
    os.environ["QTTS_BENCH_CACHE"] = tempfile.mkdtemp(prefix="qtts-asr-bench-")

    from qtts_bench.audio import read_audio
    from qtts_bench.data.manifest import load_manifest
    from qtts_bench.metrics.asr import transcriber as transcriber_module
    from qtts_bench.metrics.asr.scoring import score_text
    from qtts_bench.metrics.asr.transcriber import Transcriber

    items = load_manifest(args.manifest).items
    for lang in args.languages:
        subset = [i for i in items if i.language == lang and i.audio and i.text][: args.limit]
        audios = [read_audio(i.audio) for i in subset]
        seconds = sum(a.duration for a in audios)
        for model in args.models:
            if model.endswith(".en") and lang != "en":
                continue
            runs = {}
            for bs in ([args.batch_size, 1] if args.compare_batch else [args.batch_size]):
                transcriber_module._MEMO.clear()  # time real decoding, not the in-process memo
                tr = Transcriber(model=model, batch_size=bs, cache=False)
                tr.load("cpu")
                t0 = time.perf_counter()
                out = tr.transcribe(audios, [lang] * len(audios), "reference audio")
                runs[bs] = (time.perf_counter() - t0, out)
            wall, out = runs[args.batch_size]
            failed = [(i.id, str(t)) for i, t in zip(subset, out) if isinstance(t, Exception)]
            print(f"\n== {lang}: whisper {model} (faster-whisper, {tr.settings()['compute_type']}, greedy, VAD), "
                  f"{len(subset)} utterances, {seconds:.1f} s audio, batch {args.batch_size}")
            for profile in ("whisper", "seedtts"):
                errors = words = 0
                rates = []
                for item, t in zip(subset, out):
                    if isinstance(t, Exception):
                        continue
                    s = score_text(reference=item.text, hypothesis=t.text, profile=profile, language=lang)
                    errors += s.counts.errors
                    words += s.counts.ref_len
                    rates.append(s.value)
                print(f"  {profile:8s} corpus WER {100 * errors / words:6.2f} %   mean per-utt WER "
                      f"{100 * sum(rates) / len(rates):6.2f} %   ({errors} errors / {words} words)")
            print(f"  failed: {len(failed)} {failed[:3]}")
            print(f"  time: {wall / len(subset):.3f} s/utterance, RTF {wall / seconds:.3f}")
            if args.compare_batch:
                wall1, out1 = runs[1]
                same = sum(getattr(a, "text", None) == getattr(b, "text", None) for a, b in zip(out, out1))
                print(f"  batch 1: {wall1 / len(subset):.3f} s/utterance; "
                      f"batch {args.batch_size} speed-up x{wall1 / wall:.2f}; "
                      f"identical transcripts {same}/{len(subset)}")
            if lang == "en" and model == args.models[0]:
                scored = [(score_text(reference=i.text, hypothesis=t.text, profile="whisper", language=lang).value,
                           i.text, t.text) for i, t in zip(subset, out) if not isinstance(t, Exception)]
                worst = sorted(scored, reverse=True)[:5]
                for v, ref, hyp in worst:
                    print(f"    {100 * v:5.1f} %  ref: {ref!r}  hyp: {hyp!r}")
            sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

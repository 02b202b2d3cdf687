#!/usr/bin/env python
"""Evaluate a QDAC checkpoint at codebook prefixes, plus classical baselines, on the bundled set.

Usage::

    python scripts/qdac_eval.py CHECKPOINT [--prefixes 4 8 16] [--limit-per-speaker N]
        [--baseline codec2:mode=2400 --baseline opus:bitrate=6000 ...] [--json OUT.json]

Prints mean PESQ-WB / STOI / SI-SDR with 95 % bootstrap CIs per prefix and baseline, paired
differences between prefixes, codebook usage (perplexity, dead-code fraction) and bitrates.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def parse_baseline(text: str) -> tuple[str, dict]:
    name, _, rest = text.partition(":")
    params = {}
    for part in filter(None, rest.split(",")):
        key, _, value = part.partition("=")
        params[key] = int(value) if value.lstrip("-").isdigit() else value
    return name, params


def fmt(entry: dict) -> str:
    if entry["low"] is None:
        return f"{entry['mean']:.3f}"
    return f"{entry['mean']:.3f} [{entry['low']:.3f}, {entry['high']:.3f}]"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--prefixes", type=int, nargs="+", default=[4, 8, 16])
    parser.add_argument("--limit-per-speaker", type=int, default=None)
    parser.add_argument("--baseline", action="append", default=[], help="NAME:key=value,... (registry system)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    from qtts_bench.data.bundled import load_bundled
    from qtts_bench.qdac.evaluate import evaluate_codec, evaluate_prefixes, summarize
    from qtts_bench.registry import SYSTEMS

    items = load_bundled(limit_per_speaker=args.limit_per_speaker).items
    results = evaluate_prefixes(args.checkpoint, items, args.prefixes)
    for spec in args.baseline:
        name, params = parse_baseline(spec)
        codec = SYSTEMS.create(name, **params)
        codec.load("cpu")
        rows = evaluate_codec(codec, items)
        results[spec] = {"bitrate": codec.nominal_bitrate, **summarize(rows)}
        results["per_utterance"][spec] = rows

    print(f"{len(items)} utterances of the bundled set; checkpoint {args.checkpoint}")
    print(f"{'system':24s} {'kbit/s':>7s}  {'PESQ-WB':24s} {'STOI':24s} {'SI-SDR dB':26s} {'ppl':>6s} {'dead':>5s}")
    for key, entry in results.items():
        if key in ("paired", "provenance", "per_utterance"):
            continue
        usage = entry.get("usage")
        extra = f" {usage['mean_perplexity']:6.0f} {usage['mean_dead_fraction']:5.2f}" if usage else ""
        print(f"{key:24s} {entry['bitrate'] / 1000:7.2f}  {fmt(entry['pesq_wb']):24s} {fmt(entry['stoi']):24s} "
              f"{fmt(entry['si_sdr']):26s}{extra}")
    for pair, deltas in results["paired"].items():
        parts = [f"{m} {d['delta']:+.3f} [{d['low']:+.3f}, {d['high']:+.3f}]" for m, d in deltas.items()]
        print(f"{pair}: " + "; ".join(parts))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=1, default=lambda o: o.tolist()
                                        if isinstance(o, np.ndarray) else str(o)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python
"""Do the no-reference MOS predictors rank clean speech above Codec2 output on the same utterances?

Runs the bundled references through Codec2 (``qtts_bench.systems.classical.Codec2Codec``) and
scores both with DNSMOS (P.808, OVRL, SIG, BAK), PLCMOS and, when installed, DistillMOS. Prints
per-metric means and the share of utterances where clean > coded.

    PYTHONPATH=. python scripts/mos_codec_check.py [--mode 1200] [--limit-per-speaker 4] [--json out.json]

Exit code 1 when mean DNSMOS P.808 of the clean references is not above that of the coded ones.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from qtts_bench.audio import Audio, read_audio
from qtts_bench.errors import MetricFailure, QttsBenchError
from qtts_bench.metrics import mos
from qtts_bench.metrics.base import Inputs


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", type=int, default=1200, help="Codec2 mode (bit/s)")
    parser.add_argument("--limit-per-speaker", type=int, default=4)
    parser.add_argument("--no-cache", action="store_true")
    parser.add_argument("--json")
    args = parser.parse_args(argv)

    from qtts_bench.data.bundled import load_bundled
    from qtts_bench.systems.classical import Codec2Codec

    items = load_bundled(limit_per_speaker=args.limit_per_speaker).items
    codec = Codec2Codec(mode=args.mode)
    codec.load("cpu")
    metrics = [cls(cache=not args.no_cache) for cls in (mos.DnsmosP808, mos.DnsmosOvrl, mos.DnsmosSig,
                                                        mos.DnsmosBak, mos.Plcmos)]
    try:
        mos._import_distillmos()
        metrics.append(mos.DistillMos(cache=not args.no_cache))
    except (ImportError, QttsBenchError) as exc:
        print(f"DistillMOS skipped: {exc}")
    for m in metrics:
        m.load("cpu")

    rows = []
    for it in items:
        ref = read_audio(it.audio).at(16000)
        x = ref.at(codec.sample_rate).samples
        coded = Audio(codec.decode(codec.encode(x)), codec.sample_rate).at(16000)
        row = {"id": it.id}
        for m in metrics:
            for label, audio in (("clean", ref), ("coded", coded)):
                try:
                    row[f"{m.name}/{label}"] = m.score(Inputs(it.id, estimate=audio)).value
                except MetricFailure as exc:
                    row[f"{m.name}/{label}"] = None
                    print(f"{it.id} {m.name} {label}: missing ({exc})")
        rows.append(row)

    print(f"{len(rows)} bundled utterances, Codec2 {args.mode} bit/s (decoded at 8 kHz, scored at 16 kHz)")
    print(f"{'metric':<14} {'clean':>7} {'coded':>7} {'clean>coded':>12}")
    summary = {}
    for m in metrics:
        pairs = [(r[f"{m.name}/clean"], r[f"{m.name}/coded"]) for r in rows
                 if r[f"{m.name}/clean"] is not None and r[f"{m.name}/coded"] is not None]
        clean, coded = np.array(pairs).T
        summary[m.name] = {"clean_mean": float(clean.mean()), "coded_mean": float(coded.mean()),
                           "clean_above": int(np.sum(clean > coded)), "n": len(pairs)}
        s = summary[m.name]
        print(f"{m.name:<14} {s['clean_mean']:7.3f} {s['coded_mean']:7.3f} {s['clean_above']:>6}/{s['n']:<5}")
    if args.json:
        Path(args.json).write_text(json.dumps({"summary": summary, "rows": rows,
                                               "codec": codec.provenance()}, indent=2, default=str),
                                   encoding="utf-8")
    p808 = summary["dnsmos_p808"]
    return 0 if p808["clean_mean"] > p808["coded_mean"] else 1


if __name__ == "__main__":
    sys.exit(main())

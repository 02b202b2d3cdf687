#!/usr/bin/env python
"""Copy a trained QDAC export into the package as a shipped checkpoint.

Usage: ``python scripts/qdac_ship.py RUN/export NAME [--note TEXT]``

Checks that the checkpoint loads (weights match config) and that model.safetensors is under
15 MB, then writes ``qtts_bench/qdac/checkpoints/NAME/{model.safetensors,config.json}`` with
``shipped_as``, the sha256 of the weights and an optional note in config.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

LIMIT_BYTES = 15 * 2**20


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("export", type=Path)
    parser.add_argument("name")
    parser.add_argument("--note", default="")
    args = parser.parse_args(argv)
    from qtts_bench.hashing import sha256_file
    from qtts_bench.qdac.checkpoint import SHIPPED_DIR, load_checkpoint

    _, info = load_checkpoint(args.export)
    weights = args.export / "model.safetensors"
    size = weights.stat().st_size
    if size > LIMIT_BYTES:
        print(f"{weights} is {size / 2**20:.1f} MB > 15 MB: not shipped", file=sys.stderr)
        return 1
    target = SHIPPED_DIR / args.name
    target.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(weights, target / "model.safetensors")
    meta = dict(info["config"])
    meta["shipped_as"] = args.name
    meta["weights_sha256"] = sha256_file(target / "model.safetensors")
    if args.note:
        meta["note"] = args.note
    (target / "config.json").write_text(json.dumps(meta, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    load_checkpoint(args.name)
    print(f"shipped {args.name}: {size / 2**20:.2f} MB, step {meta['training']['step']}, sha256 {meta['weights_sha256'][:16]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

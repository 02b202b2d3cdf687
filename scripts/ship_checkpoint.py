#!/usr/bin/env python
"""Copy a trained QDAC or QTTS export into the package as a shipped checkpoint.

Usage: ``python scripts/ship_checkpoint.py {qdac,qtts} RUN/export NAME [--float16] [--note TEXT] [--into DIR]``

Checks that the export loads (weights match config), optionally stores the floating-point
weights as float16 (half the size; they load back into the float32 model, and the shipped
weights are what every evaluation of the shipped name measures), checks that
model.safetensors is under 15 MB, then writes ``qtts_bench/<kind>/checkpoints/NAME/`` with
model.safetensors, config.json (plus ``shipped_as``, ``weights_dtype``, the sha256 of the
weights and the note) and, for QTTS, card.md.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

LIMIT_BYTES = 15 * 2**20


def copy_weights(source: Path, target: Path, float16: bool) -> str:
    """Copy safetensors ``source`` to ``target``; floating tensors cast to float16 when asked. -> dtype."""
    if not float16:
        shutil.copyfile(source, target)
        return "float32"
    import torch
    from safetensors.torch import load_file, save_file
    from safetensors import safe_open

    with safe_open(str(source), framework="pt") as handle:
        metadata = handle.metadata() or {}
    tensors = {k: (v.to(torch.float16) if v.is_floating_point() else v).contiguous()
               for k, v in load_file(str(source)).items()}
    save_file(tensors, str(target), metadata={**metadata, "dtype": "float16"})
    return "float16"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("kind", choices=("qdac", "qtts"))
    parser.add_argument("export", type=Path)
    parser.add_argument("name")
    parser.add_argument("--float16", action="store_true", help="store floating weights as float16")
    parser.add_argument("--note", default="")
    parser.add_argument("--into", type=Path, help="parent folder (default: the package's checkpoints folder)")
    args = parser.parse_args(argv)
    from qtts_bench.hashing import sha256_file
    if args.kind == "qdac":
        from qtts_bench.qdac.checkpoint import SHIPPED_DIR, load_checkpoint
    else:
        from qtts_bench.qtts.checkpoint import SHIPPED_DIR, load_checkpoint

    info = load_checkpoint(args.export)[-1]
    target = (args.into or SHIPPED_DIR) / args.name
    target.mkdir(parents=True, exist_ok=True)
    weights = target / "model.safetensors"
    dtype = copy_weights(args.export / "model.safetensors", weights, args.float16)
    size = weights.stat().st_size
    if size > LIMIT_BYTES:
        shutil.rmtree(target)
        print(f"{args.export} is {size / 2**20:.1f} MB > 15 MB as {dtype}: not shipped"
              f"{'' if args.float16 else ' (try --float16)'}", file=sys.stderr)
        return 1
    meta = dict(info["config"])
    meta["shipped_as"] = args.name
    meta["weights_dtype"] = dtype
    meta["weights_sha256"] = sha256_file(weights)
    if args.note:
        meta["note"] = args.note
    (target / "config.json").write_text(json.dumps(meta, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    card = args.export / "card.md"
    if card.is_file():
        shutil.copyfile(card, target / "card.md")
    load_checkpoint(target)
    print(f"shipped {args.kind} {args.name}: {size / 2**20:.2f} MB ({dtype}), step {meta['training']['step']}, "
          f"sha256 {meta['weights_sha256'][:16]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

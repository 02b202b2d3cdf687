"""``qtts-bench train qdac|qtts CONFIG.yaml [--resume] [--max-steps N] [--out DIR] [--device D]``.

Trains a QDAC codec (``configs/qdac/*.yaml``, ``docs/qdac.md``) or a QTTS model over QDAC codes
(``configs/qtts/*.yaml``, ``docs/qtts.md``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import ConfigError

MODELS = ("qdac", "qtts")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", choices=MODELS, help="what to train")
    parser.add_argument("config", help="training config YAML (model, train, data, exclude)")
    parser.add_argument("--out", help="output folder (default: runs/<model>/<config name>)")
    parser.add_argument("--resume", action="store_true", help="continue the run saved in --out")
    parser.add_argument("--max-steps", type=int, default=None,
                        help="stop after this many more steps (the schedule still spans train.steps)")
    parser.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def main(args: argparse.Namespace) -> int:
    if args.model == "qtts":
        from ..qtts.config import load_run_config
    else:
        from ..qdac.config import load_run_config

    run = load_run_config(args.config)
    if args.max_steps is not None and args.max_steps < 1:
        raise ConfigError(f"--max-steps must be >= 1 (got {args.max_steps})")
    out = Path(args.out) if args.out else Path("runs") / args.model / run.name
    if args.model == "qtts":
        from ..qtts.train import train
    else:
        from ..qdac.train import train

    export = train(run, out, resume=args.resume, max_steps=args.max_steps, device=args.device,
                   progress=not args.no_progress)
    print(f"checkpoint: {export}")
    return 0

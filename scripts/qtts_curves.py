#!/usr/bin/env python
"""Learning curves of QTTS training runs side by side: teacher-forced held-out loss per codebook.

Usage: ``python scripts/qtts_curves.py RUN [RUN ...] [--png FILE] [--markdown]``

Reads each run's ``log.jsonl`` (written by ``qtts-bench train qtts``) and prints, per evaluation
step, the mean held-out loss (nats per code), the loss of each codebook, and the text gap (loss
with another item's transcript minus the right one's: > 0 once the model uses the text, the first
sign of alignment). ``--png`` also draws the per-codebook curves (needs the ``report`` extra).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def read_evals(run: Path) -> list[dict]:
    log = run / "log.jsonl"
    if not log.is_file():
        raise SystemExit(f"{log}: not found (is {run} a `qtts-bench train qtts` output folder?)")
    rows = []
    for lineno, line in enumerate(log.read_text(encoding="utf-8").splitlines(), 1):
        try:
            row = json.loads(line)
        except ValueError:
            raise SystemExit(f"{log}:{lineno}: not valid JSON") from None
        if row.get("kind") == "eval":
            rows.append(row)
    return rows


def table(runs: dict[str, list[dict]], markdown: bool) -> str:
    lines = []
    sep = " | " if markdown else "  "
    header = ["run", "step", "minutes", "held-out", "per codebook", "text gap"]
    if markdown:
        lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    else:
        lines.append(sep.join(f"{h:>12}" for h in header))
    for name, rows in runs.items():
        for row in rows:
            cells = [name, str(row["step"]), f"{row.get('seconds', 0) / 60:.1f}", f"{row['heldout_loss']:.3f}",
                     " ".join(f"{x:.3f}" for x in row["heldout_loss_cb"]),
                     f"{row['text_gap']:+.3f}" if row.get("text_gap") is not None else "n/a"]
            lines.append(("| " + " | ".join(cells) + " |") if markdown else sep.join(f"{c:>12}" for c in cells))
    return "\n".join(lines)


def plot(runs: dict[str, list[dict]], png: Path) -> None:
    from qtts_bench.errors import require

    matplotlib = require("matplotlib", "report", "training-curve plots")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for i, (name, rows) in enumerate(runs.items()):  # colour = run, line style = codebook
        steps = [r["step"] for r in rows]
        n = len(rows[0]["heldout_loss_cb"]) if rows else 0
        for k in range(n):
            ax.plot(steps, [r["heldout_loss_cb"][k] for r in rows], label=f"{name} cb{k + 1}",
                    color=f"C{i}", linestyle=["-", "--", ":", "-."][k % 4])
    ax.set_xlabel("training step")
    ax.set_ylabel("teacher-forced held-out loss (nats/code)")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(png, dpi=120)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--png", type=Path)
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    runs = {run.name: read_evals(run) for run in args.runs}
    print(table(runs, args.markdown))
    if args.png:
        plot(runs, args.png)
        print(f"wrote {args.png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

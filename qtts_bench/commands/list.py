"""``qtts-bench list systems|metrics|datasets``: registry contents, importing nothing heavy."""

from __future__ import annotations


def configure(parser) -> None:
    parser.add_argument("kind", choices=["systems", "metrics", "datasets"])


def main(args) -> int:
    from ..registry import REGISTRIES

    entries = REGISTRIES[args.kind].entries()
    width = max(len(e.name) for e in entries) + 2
    for entry in entries:
        print(f"{entry.name.ljust(width)}{entry.summary}")
    return 0

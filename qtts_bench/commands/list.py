"""``qtts-bench list systems|metrics|datasets [--all]``: registry contents, importing nothing heavy.

Test doubles (``dummy_*`` systems, the ``synthetic`` dataset) are left out unless ``--all``; they
still resolve by name in suites.
"""

from __future__ import annotations


def configure(parser) -> None:
    parser.add_argument("kind", choices=["systems", "metrics", "datasets"])
    parser.add_argument("--all", action="store_true", dest="show_all",
                        help="also list the test doubles (dummy_* systems, the synthetic dataset)")


def main(args) -> int:
    from ..registry import REGISTRIES

    entries = REGISTRIES[args.kind].entries(include_testing=args.show_all)
    width = max(len(e.name) for e in entries) + 2
    for entry in entries:
        mark = "[test double] " if entry.testing else ""
        print(f"{entry.name.ljust(width)}{mark}{entry.summary}")
    return 0

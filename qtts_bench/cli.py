"""Command line: ``qtts-bench run | validate | list | score | report | compare | train | cache``.

Each subcommand lives in ``qtts_bench/commands/<name>.py`` with ``configure(parser)`` and
``main(args) -> exit code``; this module only dispatches, so ``--help`` imports nothing heavy.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from . import __version__
from .errors import QttsBenchError

COMMANDS = {
    "run": "run a suite: systems x datasets -> per-utterance results with provenance",
    "validate": "check a suite without running anything (names, parameters, files, requirements)",
    "list": "list registered systems, metrics or datasets",
    "score": "score one pair of audio files (or a transcript pair) and print JSON",
    "report": "render CSV + HTML leaderboards, ablations, plots and listening pages from results",
    "compare": "paired comparison of two runs with CIs; non-zero exit when a threshold is crossed",
    "train": "train a model (qdac) from a config file",
    "cache": "show the output cache (system outputs shared by runs) or prune it by size or age",
}


def _command_module(name: str):
    return importlib.import_module(f"qtts_bench.commands.{name}")


def build_parser(available: dict[str, str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="qtts-bench",
                                     description="Evaluate and benchmark speech codecs and TTS systems.")
    parser.add_argument("--version", action="version", version=f"qtts-bench {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, help_text in available.items():
        sub_parser = sub.add_parser(name, help=help_text, description=help_text)
        _command_module(name).configure(sub_parser)
    return parser


def available_commands() -> dict[str, str]:
    """Commands whose module is present (optional parts may be absent in a partial install)."""
    import importlib.util

    return {n: h for n, h in COMMANDS.items() if importlib.util.find_spec(f"qtts_bench.commands.{n}")}


def main(argv: list[str] | None = None) -> int:
    available = available_commands()
    args = build_parser(available).parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(_command_module(args.command).main(args) or 0)
    except QttsBenchError as exc:
        print(f"qtts-bench {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a file or folder the user named or chose: say which, no traceback
        if args.verbose:
            logging.getLogger("qtts_bench").exception("traceback")
        what = f"{exc.filename}: {exc.strerror or exc}" if exc.filename else str(exc)
        print(f"qtts-bench {args.command}: error: {what} (run with -v for the traceback)", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; completed utterances are saved and a re-run resumes", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

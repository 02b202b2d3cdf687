"""`qtts-bench report RESULTS_DIR... [--out reports/NAME]`: HTML + CSV leaderboards from the store.

Reads only the results store (docs/results-format.md); never imports the runner, systems or torch.
Exit codes: 0 written, 2 nothing to report or incompatible results.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import QttsBenchError
from ..report.stats import DEFAULT_LEVEL, DEFAULT_RESAMPLES


def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = ("Render leaderboards with bootstrap CIs, ablation deltas, plots and listening "
                          "pages from one or more results folders.")
    parser.add_argument("results", nargs="+", metavar="RESULTS_DIR",
                        help="results root, suite, dataset or run folder (any number; may come from "
                             "several suites and machines)")
    parser.add_argument("--out", default=None, metavar="DIR",
                        help="report folder (default: reports/<name of the first RESULTS_DIR>)")
    parser.add_argument("--axis", action="append", default=[], metavar="NAME",
                        help="also treat this system parameter as an ablation axis (repeatable); axes "
                             "recorded in run.json are always used")
    parser.add_argument("--bootstrap", type=int, default=DEFAULT_RESAMPLES, metavar="N",
                        help=f"bootstrap resamples (default {DEFAULT_RESAMPLES})")
    parser.add_argument("--level", type=float, default=DEFAULT_LEVEL, help="CI level (default 0.95)")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    parser.add_argument("--ignore-setting", action="append", default=[], metavar="KEY",
                        help="metric settings key that does not change numbers (e.g. a model path that "
                             "differs between machines while its sha256 matches); repeatable")
    parser.add_argument("--merge-suites", action="store_true",
                        help="one leaderboard per dataset across suites instead of per suite and dataset")
    parser.add_argument("--copy-audio", action="store_true",
                        help="copy audio beside the report instead of linking into the results folder")
    parser.add_argument("--no-plots", action="store_true", help="skip matplotlib plots")
    parser.add_argument("--no-listen", action="store_true", help="skip listening pages")
    parser.add_argument("--title", default="qtts-bench report", help="page title")


def main(args: argparse.Namespace) -> int:
    from ..report.render import write_report
    from ..report.table import ReportOptions

    if not 0 < args.level < 1 or args.bootstrap < 0:
        print("error: --level must be in (0, 1) and --bootstrap >= 0", file=sys.stderr)
        return 2
    out = Path(args.out) if args.out else Path("reports") / (Path(args.results[0]).resolve().name or "report")
    options = ReportOptions(n_resamples=args.bootstrap, level=args.level, seed=args.seed,
                            axes=tuple(args.axis), ignore_settings=tuple(args.ignore_setting),
                            merge_suites=args.merge_suites)
    try:
        report, files = write_report(args.results, out, options, plots=not args.no_plots,
                                     listen=not args.no_listen, copy_audio=args.copy_audio,
                                     command=_command_line(), title=args.title)
    except QttsBenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for warning in files.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    n_notes = len(report.notes) + sum(len(t.notes) for t in report.tables)
    print(f"{len(report.runs)} runs in {len(report.tables)} table(s); {n_notes} note(s) shown on the page")
    for path in (files.index, files.leaderboard, files.columns, files.ablations, *files.listen):
        print(f"  {path}")
    return 0


def _command_line() -> list[str] | None:
    """The invoking command, when run as `qtts-bench report ...` (not from tests or other tools)."""
    return ["qtts-bench", *sys.argv[1:]] if sys.argv[1:2] == ["report"] else None

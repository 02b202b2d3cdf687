"""`qtts-bench compare BASELINE CANDIDATE [--fail METRIC:-0.05] [--fail METRIC:+5%]`: CI regression gate.

Each side is a run folder, or a results folder whose runs are paired by suite/dataset/label.
Prints paired per-metric deltas with bootstrap CIs (``--json`` for machines).
Exit codes: 0 pass, 1 a threshold crossed, 2 usage error or incompatible input.
"""

from __future__ import annotations

import argparse
import json
import sys

from ..errors import QttsBenchError
from ..report.stats import DEFAULT_LEVEL, DEFAULT_RESAMPLES


def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = ("Compare a candidate against a baseline on the utterances both scored; exit 1 "
                          "when a --fail threshold is crossed.")
    parser.add_argument("baseline", metavar="BASELINE", help="baseline run folder or results folder")
    parser.add_argument("candidate", metavar="CANDIDATE", help="candidate run folder or results folder")
    parser.add_argument("--fail", action="append", default=[], metavar="METRIC:LIMIT",
                        help="allowed worsening: METRIC:-0.05 absolute, METRIC:+5%% relative to the baseline; "
                             "the sign (optional) must match the metric's bad direction; repeatable")
    parser.add_argument("--require-significance", action="store_true",
                        help="fail a threshold only when the CI of the change also excludes zero")
    parser.add_argument("--allow-new-failures", type=int, default=0, metavar="N",
                        help="extra failed utterances a gated metric may have in the candidate (default 0)")
    parser.add_argument("--bootstrap", type=int, default=DEFAULT_RESAMPLES, metavar="N")
    parser.add_argument("--level", type=float, default=DEFAULT_LEVEL)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--ignore-setting", action="append", default=[], metavar="KEY",
                        help="metric settings key that does not change numbers (e.g. a model path)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of the table")


def main(args: argparse.Namespace) -> int:
    from ..report.compare import compare, format_text, parse_gate
    from ..report.table import ReportOptions

    if not 0 < args.level < 1 or args.bootstrap < 0 or args.allow_new_failures < 0:
        print("error: --level must be in (0, 1); --bootstrap and --allow-new-failures >= 0", file=sys.stderr)
        return 2
    try:
        gates = [parse_gate(text) for text in args.fail]
        options = ReportOptions(n_resamples=args.bootstrap, level=args.level, seed=args.seed,
                                ignore_settings=tuple(args.ignore_setting))
        result = compare(args.baseline, args.candidate, gates, options,
                         require_significance=args.require_significance,
                         allow_new_failures=args.allow_new_failures)
    except QttsBenchError as exc:
        if args.json:
            print(json.dumps({"passed": None, "error": str(exc)}))
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result.to_json(), indent=2, ensure_ascii=False))
    else:
        print(format_text(result, args.level))
    return 1 if result.failed else 0

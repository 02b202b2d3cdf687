"""``qtts-bench run SUITE``: validate, then run every dataset x system point, resumably."""

from __future__ import annotations

import sys


def configure(parser) -> None:
    parser.add_argument("suite", help="suite YAML file, or the name of a shipped suite (qtts-bench list suites); "
                                      "a file of that name in the working folder wins")
    parser.add_argument("--limit", type=int, help="only the first N utterances of each dataset")
    parser.add_argument("--systems", nargs="+", metavar="KEY", help="only these system keys of the suite")
    parser.add_argument("--device", help="cpu, cuda, cuda:N or auto (default: the suite's, else auto)")
    parser.add_argument("--out", help="results root (default: the suite's `output`, else results/, relative to the "
                                      "working folder)")
    parser.add_argument("--jobs", type=int, help="worker processes (CPU; default: the suite's `jobs`, else 1)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument("--set", action="append", default=[], dest="overrides", metavar="KEY.PATH=VALUE",
                        help="override one suite value after includes, e.g. "
                             "--set datasets.d.params.path=/data/meta.lst (repeatable; VALUE is YAML)")


def main(args) -> int:
    from ..runner import run_suite
    from ..suite import load_suite, validate_suite

    from ..errors import ConfigError

    if args.limit is not None and args.limit < 1:
        raise ConfigError("--limit must be >= 1")
    if args.jobs is not None and args.jobs < 1:
        raise ConfigError("--jobs must be >= 1")
    suite = load_suite(args.suite, args.overrides)
    if args.systems:
        suite.select_systems(args.systems)
    validated = validate_suite(suite)
    outcomes = run_suite(validated, limit=args.limit, device=args.device, out=args.out,
                         progress=not args.no_progress, command=["qtts-bench", *sys.argv[1:]],
                         jobs=args.jobs)
    print_summaries(outcomes)
    for label, why in validated.skipped.items():
        print(f"not run (optional, not installed): {label}: {why}")
    return 0


def print_summaries(outcomes) -> None:
    """A compact table: one row per run, one column per metric aggregate, then counts.

    ``failed`` counts utterances a metric could not score (the most of any metric);
    ``n/a`` counts those a metric does not apply to (e.g. codebook usage of a classical codec,
    TTFT of a system that does not stream), which are not failures. A metric with no value
    shows ``n/a`` when it applied to no utterance, ``failed`` when it failed on every one.
    """
    if not outcomes:
        return
    metric_keys = list(outcomes[0].summary["metrics"])
    widths = [max(9, len(k)) for k in metric_keys]
    label_width = max(len(f"{o.dataset}/{o.label}") for o in outcomes) + 2
    print("run".ljust(label_width) + "".join(f"  {k:>{w}}" for k, w in zip(metric_keys, widths))
          + "     n  failed  n/a  new")
    for o in outcomes:
        metrics = o.summary["metrics"]
        cells = [f"{_cell(metrics.get(k) or {}):>{w}}" for k, w in zip(metric_keys, widths)]
        failed = max((m.get("n_failed", 0) for m in metrics.values()), default=0)
        not_applicable = max((m.get("n_not_applicable", 0) for m in metrics.values()), default=0)
        print(f"{o.dataset}/{o.label}".ljust(label_width) + "".join(f"  {c}" for c in cells)
              + f"  {o.summary['n_done']:>4}  {failed:>6}  {not_applicable:>3}  {o.computed:>3}")
    print(f"results: {outcomes[0].folder.parent.parent}")


def _cell(block: dict) -> str:
    if block.get("value") is not None:
        return format(block["value"], ".3f")
    if block.get("n_not_applicable") and not block.get("n_failed") and not block.get("n_scored"):
        return "n/a"
    return "failed" if block.get("n_failed") else "—"

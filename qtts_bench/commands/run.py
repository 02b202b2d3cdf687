"""``qtts-bench run SUITE``: validate, then run every dataset x system point, resumably."""

from __future__ import annotations

import os
import sys

ENV_CACHE_MAX_SIZE = "QTTS_BENCH_OUTPUT_CACHE_MAX_SIZE"  # the size limit when --output-cache-max-size is not given


def configure(parser) -> None:
    parser.add_argument("suite", help="suite YAML file, or the name of a shipped suite (qtts-bench list suites); "
                                      "a file of that name in the working folder wins")
    parser.add_argument("--limit", type=int, help="only the first N utterances of each dataset")
    parser.add_argument("--systems", nargs="+", metavar="KEY", help="only these system keys of the suite")
    parser.add_argument("--device", help="cpu, cuda, cuda:N or auto (default: the suite's, else auto)")
    parser.add_argument("--out", help="results root (default: the suite's `output`, else results/, relative to the "
                                      "working folder)")
    parser.add_argument("--jobs", help="worker processes (CPU), or auto: the usable cores (default: the suite's "
                                       "`jobs`, else 1); with --executor ray: Ray actors")
    parser.add_argument("--executor", choices=("local", "pipelined", "ray"), default="local",
                        help="local (this machine's processes, default), pipelined (system and model metrics in "
                             "this process on the device, CPU metrics in --jobs workers; for GPUs) or ray (Ray "
                             "actors; extra `ray`)")
    parser.add_argument("--address", help="with --executor ray: the Ray cluster to join (e.g. auto, ray://host:10001); "
                                          "default: start a local one")
    parser.add_argument("--output-cache", choices=("auto", "on", "off"),
                        help="reuse system outputs from the output cache shared by all run folders: auto (default: "
                             "except in runs that score speed metrics), on (always; speed metrics then have no value "
                             "for reused outputs), off (neither read nor write); overrides the suite's output_cache")
    parser.add_argument("--output-cache-path", metavar="DIR",
                        help="the output cache's folder (default: <$QTTS_BENCH_CACHE or ~/.cache/qtts-bench>/system-outputs)")
    parser.add_argument("--output-cache-max-size", metavar="SIZE",
                        help="after the run, remove the output cache's least recently used outputs until it holds "
                             f"at most SIZE, e.g. 20G (default: ${ENV_CACHE_MAX_SIZE}, else no limit)")
    parser.add_argument("--retry-failed", action="store_true",
                        help="resuming: also recompute utterances whose system failed and metric values recorded as "
                             "failed (a transient error, a fixed system or a longer timeout); not-applicable values "
                             "are kept")
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
    from ..executors import resolve_jobs

    if args.jobs is not None:
        try:
            resolve_jobs(args.jobs)
        except ConfigError:
            raise ConfigError(f"--jobs must be a number >= 1 or auto, got '{args.jobs}'") from None
    cache_limit = output_cache_limit(args.output_cache_max_size)
    suite = load_suite(args.suite, args.overrides)
    _apply_output_cache_flags(suite, args)
    if args.systems:
        suite.select_systems(args.systems)
    validated = validate_suite(suite)
    outcomes = run_suite(validated, limit=args.limit, device=args.device, out=args.out,
                         progress=not args.no_progress, command=["qtts-bench", *sys.argv[1:]],
                         jobs=args.jobs, executor=args.executor, address=args.address,
                         retry_failed=args.retry_failed)
    print_summaries(outcomes)
    print_output_cache(outcomes)
    if cache_limit is not None:
        enforce_output_cache_limit(outcomes, cache_limit)
    print_timing(outcomes)
    for label, why in validated.skipped.items():
        print(f"not run (optional, not available here): {label}: {why}")
    return 0


def _apply_output_cache_flags(suite, args) -> None:
    """--output-cache / --output-cache-path replace the suite's values (recorded in run.json's suite)."""
    if args.output_cache is not None:
        suite.output_cache = {"on": True, "off": False, "auto": "auto"}[args.output_cache]
        suite.raw["output_cache"] = suite.output_cache
    if args.output_cache_path is not None:
        suite.output_cache_path = args.output_cache_path
        suite.raw["output_cache_path"] = args.output_cache_path


def output_cache_limit(option: str | None) -> int | None:
    """Bytes the output cache may hold after a run (the option, else the environment), or None."""
    from .cache import parse_size

    if option is not None:
        return parse_size(option, "--output-cache-max-size")
    value = os.environ.get(ENV_CACHE_MAX_SIZE, "").strip()
    return parse_size(value, f"${ENV_CACHE_MAX_SIZE}") if value else None


def enforce_output_cache_limit(outcomes, max_bytes: int) -> None:
    """Prune every output cache these runs used to ``max_bytes``, least recently used first (the
    outputs this run read or wrote are the most recent, so they go last)."""
    from pathlib import Path

    from ..output_cache import prune_outputs
    from .cache import human_size

    used = [c["output_cache"] for o in outcomes if (c := o.summary.get("system_outputs")) and c.get("output_cache")]
    locations = {info["location"] for info in used if info.get("location") and (info.get("reads") or info.get("writes"))}
    for location in sorted(locations):
        done = prune_outputs(Path(location), max_bytes=max_bytes)
        if done["removed"]:
            print(f"output cache over {human_size(max_bytes)}: removed {done['removed']} least recently used outputs "
                  f"({human_size(done['removed_bytes'])}); {done['kept']} kept ({human_size(done['kept_bytes'])})")


def print_output_cache(outcomes) -> None:
    """How many system outputs this invocation computed and reused from the output cache, which
    metrics have no value for the reused ones, and the runs that did not read the cache, and why."""
    from ..output_cache import NOT_TIMED

    counts = [o.summary.get("system_outputs") for o in outcomes]
    computed = sum(c["n_computed"] for c in counts if c)
    reused = sum(c["n_from_cache"] for c in counts if c)
    if not computed and not reused:
        return
    location = next((c["output_cache"]["location"] for c in counts if c and c.get("output_cache")), None)
    print(f"system outputs: {computed} computed, {reused} reused from the output cache"
          + (f" ({location})" if location else ""))
    untimed = sorted({key for o in outcomes for key, block in o.summary["metrics"].items()
                      if NOT_TIMED in (block.get("not_applicable_reasons") or {})})
    if reused and untimed:
        print(f"  {', '.join(untimed)}: no value for reused outputs ({NOT_TIMED}; --output-cache off times "
              "every output)")
    not_read: dict[str, list[str]] = {}  # reason -> runs
    for o, c in zip(outcomes, counts):
        info = (c or {}).get("output_cache")
        if c and c["n_computed"] and info and not info.get("reads") and info.get("reason"):
            not_read.setdefault(info["reason"], []).append(f"{o.dataset}/{o.label}")
    for reason, runs in not_read.items():
        print(f"  not read by {', '.join(runs)}: {reason}")


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
    retried = sum(o.retried for o in outcomes)
    if retried:
        print(f"retried: {retried} utterances whose system had failed (counted in 'new')")


def process_seconds() -> float | None:
    """Seconds since this process started (Linux: /proc; else None)."""
    import os

    try:
        ticks = os.sysconf("SC_CLK_TCK")
        with open("/proc/self/stat", encoding="ascii") as fh:
            start = int(fh.read().rsplit(")", 1)[1].split()[19]) / ticks
        with open("/proc/uptime", encoding="ascii") as fh:
            return float(fh.read().split()[0]) - start
    except (OSError, ValueError, IndexError, AttributeError):
        return None


def print_timing(outcomes) -> None:
    """Where the time went: one line per run (wall = system + metrics + harness, in wall seconds
    of this invocation; worker seconds are divided by the measured parallelism), then a total
    from process start (imports, validation and metric loading are the start-up)."""
    if not outcomes:
        return
    print("time (this invocation; s):")
    total = {"system": 0.0, "metrics": 0.0, "harness": 0.0}
    for o in outcomes:
        t = o.summary.get("timing")
        if not t:
            continue
        per_metric = ", ".join(f"{k} {v / t['parallelism']:.2f}" for k, v in t["metric_seconds"].items())
        total["system"] += t["system_wall_seconds"]
        total["metrics"] += t["metrics_wall_seconds"]
        total["harness"] += t["overhead_seconds"]
        workers = f"; {t['workers']} workers, parallelism {t['parallelism']:.2f}" if t["workers"] > 1 else ""
        print(f"  {o.dataset}/{o.label}: {t['wall_seconds']:.2f} = system {t['system_wall_seconds']:.2f} + metrics "
              f"{t['metrics_wall_seconds']:.2f} ({per_metric}) + harness {t['overhead_seconds']:.2f} "
              f"({100 * (t['overhead_share'] or 0):.0f} %){workers}")
    startup = outcomes[0].startup or {}
    since_start = process_seconds()
    runs = sum(total.values())
    line = (f"  total: system {total['system']:.2f} + metrics {total['metrics']:.2f} + harness {total['harness']:.2f}"
            f"; start-up {startup.get('seconds', 0.0):.2f} (device, metric loading)")
    if since_start is not None:
        before = max(0.0, since_start - runs - startup.get("seconds", 0.0))
        line += f"; {since_start:.2f} since process start ({before:.2f} imports, validation, printing)"
    print(line)


def _cell(block: dict) -> str:
    if block.get("value") is not None:
        return format(block["value"], ".3f")
    if block.get("n_not_applicable") and not block.get("n_failed") and not block.get("n_scored"):
        return "n/a"
    return "failed" if block.get("n_failed") else "—"

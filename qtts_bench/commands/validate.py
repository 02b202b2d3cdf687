"""``qtts-bench validate SUITE``: every check ``run`` does before working, nothing loaded.

Names, parameters, files, metric requirements, folder-safe names, duplicate YAML keys, the
headers of every audio file, and whether each system's and metric's packages are installed.
"""

from __future__ import annotations


def configure(parser) -> None:
    parser.add_argument("suite", help="suite YAML file, or the name of a shipped suite (qtts-bench list suites); "
                                      "a file of that name in the working folder wins")
    parser.add_argument("--set", action="append", default=[], dest="overrides", metavar="KEY.PATH=VALUE",
                        help="override one suite value after includes, e.g. "
                             "--set datasets.d.params.path=/data/meta.lst (repeatable; VALUE is YAML)")


def main(args) -> int:
    from ..suite import load_suite, validate_suite

    validated = validate_suite(load_suite(args.suite, args.overrides))
    suite = validated.suite
    n_items = sum(len(d.items) for d in validated.datasets.values())
    print(f"{suite.path}: OK — suite '{suite.name}': {len(validated.datasets)} dataset(s), "
          f"{n_items} utterances, {len(validated.points)} system point(s), "
          f"{len(validated.metrics)} metric(s); headers of {validated.audio_files_checked} audio file(s) readable")
    only = {spec.key: spec.datasets for spec in suite.metrics}
    for point in validated.points:
        where = f" (datasets: {', '.join(point.datasets)})" if point.datasets else ""
        print(f"  system {point.label}: {point.name} {point.params}{where}")
    for key, metric in validated.metrics.items():
        where = f" (datasets: {', '.join(only[key])})" if only.get(key) else ""
        print(f"  metric {key}: {type(metric).__name__} requires {list(metric.requires) or 'nothing'}{where}")
    return 0

"""``qtts-bench list systems|metrics|datasets|suites [--all]``: what is there, importing nothing heavy.

``systems`` and ``metrics`` also say what each entry needs beyond the core dependencies (an
extra of the package, or Debian packages) and whether that is installed here: each entry is
constructed with its registered defaults (constructors are light) and asked ``unavailable()``;
an entry whose class does not say is checked against its extra's distributions in the installed
package's metadata. An entry that cannot be built without parameters (``outputs`` needs ``dir``)
says so. ``suites`` lists the suites shipped in the package, with the first sentence of each
description.

Test doubles (``dummy_*`` systems, the ``synthetic`` dataset) are left out unless ``--all``; they
still resolve by name in suites.
"""

from __future__ import annotations

import re

READY, MISSING, PARAMETERS, SETUP = "ready", "not installed", "needs parameters", "needs setup"


def configure(parser) -> None:
    parser.add_argument("kind", choices=["systems", "metrics", "datasets", "suites"])
    parser.add_argument("--all", action="store_true", dest="show_all",
                        help="also list the test doubles (dummy_* systems, the synthetic dataset)")


def main(args) -> int:
    if args.kind == "suites":
        return list_suites()
    from ..registry import REGISTRIES

    registry = REGISTRIES[args.kind]
    entries = registry.entries(include_testing=args.show_all)
    if args.kind == "datasets":
        width = max(len(e.name) for e in entries) + 2
        for entry in entries:
            mark = "[test double] " if entry.testing else ""
            print(f"{entry.name.ljust(width)}{mark}{entry.summary}")
        return 0
    rows = [(entry, *availability(registry, entry)) for entry in entries]
    widths = [max(len(h), *(len(str(r[i])) for r in rows)) + 2
              for i, h in ((0, "NAME"), (1, "NEEDS"), (2, "HERE"))]
    widths[0] = max(len("NAME"), *(len(e.name) for e in entries)) + 2
    print("NAME".ljust(widths[0]) + "NEEDS".ljust(widths[1]) + "HERE".ljust(widths[2]) + "WHAT")
    for entry, needs, status, _ in rows:
        mark = "[test double] " if entry.testing else ""
        print(entry.name.ljust(widths[0]) + needs.ljust(widths[1]) + status.ljust(widths[2]) + mark + entry.summary)
    hints: dict[str, list[str]] = {}
    for entry, _, status, detail in rows:
        if status == MISSING:  # one line per install command
            hints.setdefault(install_hint(detail), []).append(entry.name)
    if hints:
        print("not installed here:")
        for hint, names in hints.items():
            print(f"  {hint}    ({', '.join(names)})")
    for entry, _, status, detail in rows:
        if status == SETUP:
            print(f"needs setup: {entry.name}: {detail}")
    print("NEEDS: core = the base install; [x] = pip install 'qtts-bench[x]'; apt = Debian packages. "
          "HERE: ready, not installed, needs parameters (set them in the suite) or needs setup (local files).")
    return 0


def availability(registry, entry) -> tuple[str, str, str]:
    """(needs, status, detail) of one registry entry; status is ready / not installed / needs parameters."""
    from ..registry import entry_needs, extra_missing, extras_of

    needs = entry_needs(entry)
    obj, required = None, ""
    try:
        obj = registry.create(entry.name)
    except Exception as exc:  # a required parameter (any failure means the same here)
        required = _required_parameters(entry) or str(exc)
    if obj is not None:
        try:
            missing = obj.unavailable()
        except Exception as exc:
            missing = f"cannot tell ({type(exc).__name__}: {exc})"
        if missing:  # a package or program to install, or local files to point at
            return needs, (MISSING if "install" in missing.lower() else SETUP), missing
        if _says_itself(obj):
            return needs, READY, ""
    for extra in extras_of(needs):  # the class does not say: the extra's distributions
        lacking = extra_missing(extra)
        if lacking:
            return needs, MISSING, (f"{', '.join(lacking)} not installed. Install it with: "
                                    f"pip install 'qtts-bench[{extra}]'")
    if obj is None:
        return needs, (f"{PARAMETERS} ({required})" if required and len(required) <= 24 else PARAMETERS), required
    return needs, READY, ""


def _says_itself(obj) -> bool:
    """True when the object's class (not only the System/Metric base) defines unavailable()."""
    for cls in type(obj).__mro__:
        if "unavailable" in vars(cls):
            return cls.__module__ not in ("qtts_bench.systems.base", "qtts_bench.metrics.base")
    return False


def _required_parameters(entry) -> str:
    import inspect

    try:
        target = entry.load()
        sig = inspect.signature(target)
    except Exception:
        return ""
    names = [n for n, p in sig.parameters.items() if p.default is p.empty and n not in entry.defaults
             and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    return ", ".join(names)


def install_hint(message: str) -> str:
    """The command a not-installed message suggests (the whole message when it names none)."""
    match = re.search(r"Install it with: (.+)$", message) or re.search(r"(apt-get install .+)$", message)
    return match.group(1).strip() if match else message


def list_suites() -> int:
    from ..errors import ConfigError
    from ..suite import SHIPPED_SUITES, describe_suite, shipped_suites

    suites = shipped_suites()
    if not suites:
        print(f"no suites shipped in {SHIPPED_SUITES}")
        return 0
    width = max(len(n) for n in suites) + 2
    for name, path in suites.items():
        try:
            _, text = describe_suite(path)
        except ConfigError as exc:
            text = f"(unreadable: {exc})"
        print(f"{name.ljust(width)}{text}")
    print(f"Run one by name: qtts-bench run NAME (a file NAME or NAME.yaml in the working folder wins). "
          f"To change one, copy it from {SHIPPED_SUITES} and run the copy.")
    return 0

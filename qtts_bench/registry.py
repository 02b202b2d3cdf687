"""One lazy registry mechanism for systems, metrics and datasets.

Entries are ``"module:attr"`` strings with a one-line summary, so ``qtts-bench list`` and
``validate`` never import heavy modules (torch, model weights). Third-party packages add systems
through the ``qtts_bench.systems`` entry-point group (likewise ``qtts_bench.metrics`` and
``qtts_bench.datasets``). Entries registered with ``testing=True`` are test doubles: they resolve
by name like any other (suites and tests use them) but ``qtts-bench list`` shows them only with
``--all``.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from importlib.metadata import entry_points

from .errors import ConfigError, UnknownNameError, did_you_mean


@dataclass(frozen=True)
class Entry:
    name: str
    target: str  # "package.module:attr"
    summary: str = ""
    defaults: dict = field(default_factory=dict)  # parameters bound for this registered variant
    testing: bool = False  # a test double: hidden from `qtts-bench list` unless --all

    def load(self):
        module_name, _, attr = self.target.partition(":")
        try:
            module = importlib.import_module(module_name)
            return getattr(module, attr)
        except (ImportError, AttributeError) as exc:
            raise ConfigError(f"cannot load '{self.name}' from '{self.target}': {exc}") from exc


class Registry:
    """Name -> lazy target, for one kind of thing ("system", "metric", "dataset")."""

    def __init__(self, kind: str, entry_point_group: str):
        self.kind = kind
        self.group = entry_point_group
        self._entries: dict[str, Entry] = {}
        self._plugins_loaded = False

    def register(self, name: str, target: str, summary: str = "", *, testing: bool = False, **defaults) -> None:
        """Add ``name`` -> ``target`` ("module:attr"); ``defaults`` bind parameters of a variant.

        ``testing=True`` marks a test double (listed only by ``qtts-bench list --all``).
        """
        if name in self._entries and self._entries[name].target != target:
            raise ConfigError(f"{self.kind} '{name}' is registered twice")
        self._entries[name] = Entry(name, target, summary, dict(defaults), bool(testing))

    def _load_plugins(self) -> None:
        if self._plugins_loaded:
            return
        self._plugins_loaded = True
        for ep in entry_points(group=self.group):
            if ep.name not in self._entries:
                self._entries[ep.name] = Entry(ep.name, ep.value, f"plugin from {ep.dist.name if ep.dist else '?'}")

    def names(self) -> list[str]:
        self._load_plugins()
        return sorted(self._entries)

    def entries(self, include_testing: bool = True) -> list[Entry]:
        """Every entry, sorted by name; ``include_testing=False`` leaves out the test doubles."""
        return [self._entries[n] for n in self.names() if include_testing or not self._entries[n].testing]

    def entry(self, name: str) -> Entry:
        self._load_plugins()
        try:
            return self._entries[name]
        except KeyError:
            hint = did_you_mean(name, self._entries, n=3, cutoff=0.5)
            raise UnknownNameError(
                f"unknown {self.kind} '{name}'{hint} (see `qtts-bench list {self.kind}s`)"
            ) from None

    def get(self, name: str):
        """Import and return the registered class or factory."""
        return self.entry(name).load()

    def create(self, registered_name: str, /, **params):
        """Instantiate with the variant's defaults overridden by ``params`` (no weights load)."""
        entry = self.entry(registered_name)
        return entry.load()(**{**entry.defaults, **params})

    def __contains__(self, name: str) -> bool:
        self._load_plugins()
        return name in self._entries


# --------------------------------------------------------------------- what an entry needs
# For `qtts-bench list`: what a built-in entry needs beyond the core dependencies, by target
# ("module:attr", checked first) or module. "[name]" is an extra of pyproject.toml (pip install
# 'qtts-bench[name]'), "apt ..." Debian packages; anything else is shown as written. Entries
# not listed need only the core dependencies. tests/test_registry.py checks every entry against
# what its class's unavailable() asks to install when nothing optional is present.
BUILTIN_NEEDS = {
    "qtts_bench.systems.kokoro": "[tts]",
    "qtts_bench.systems.piper": "[piper]",
    "qtts_bench.systems.qdac": "[torch]",
    "qtts_bench.systems.qtts": "[torch]",
    "qtts_bench.systems.neural_codecs": "[neural-codecs]",
    "qtts_bench.systems.tts_cli:EspeakNgTTS": "apt espeak-ng",
    "qtts_bench.systems.tts_cli:FliteTTS": "apt flite",
    "qtts_bench.systems.tts_cli:FestivalTTS": "apt festival festvox-kallpc16k",
    "qtts_bench.metrics.asr.metric": "[asr]",
    "qtts_bench.metrics.speaker": "[speaker]",
    "qtts_bench.metrics.mos": "[mos]",
    "qtts_bench.metrics.mos:DistillMos": "[torch] + distillmos",
    "qtts_bench.metrics.mos:Utmos": "[torch] + local SpeechMOS",
}
CORE = "core"


def entry_needs(entry: Entry) -> str:
    """What ``entry`` needs beyond the core dependencies ("core" for nothing more); imports nothing."""
    if entry.target in BUILTIN_NEEDS:
        return BUILTIN_NEEDS[entry.target]
    module = entry.target.partition(":")[0]
    if module in BUILTIN_NEEDS:
        return BUILTIN_NEEDS[module]
    if not module.startswith("qtts_bench."):
        return "plugin"
    return CORE


def extras_of(needs: str) -> list[str]:
    """The pyproject extras named in a ``needs`` text: "[torch] + distillmos" -> ["torch"]."""
    import re

    return re.findall(r"\[([A-Za-z0-9_-]+)\]", needs)


def extra_missing(extra: str, distribution: str = "qtts-bench") -> list[str] | None:
    """Distributions of ``extra`` (as the installed qtts-bench declares it) that are not installed,
    or None when that cannot be told (qtts-bench's metadata not found, or it has no such extra).
    Imports nothing."""
    import re
    from importlib import metadata

    try:
        requirements = metadata.requires(distribution) or []
    except metadata.PackageNotFoundError:
        return None
    missing: list[str] = []
    declared = False
    for requirement in requirements:
        spec, _, marker = requirement.partition(";")
        if not re.search(r"""extra\s*==\s*["']""" + re.escape(extra) + r"""["']""", marker):
            continue
        declared = True
        name = re.match(r"\s*([A-Za-z0-9._-]+)", spec).group(1)
        nested = re.search(r"\[([^\]]+)\]", spec)
        if name.replace("_", "-").lower() == distribution and nested:
            for sub in nested.group(1).split(","):
                missing += extra_missing(sub.strip(), distribution) or []
            continue
        try:
            metadata.distribution(name)
        except metadata.PackageNotFoundError:
            missing.append(name)
    return list(dict.fromkeys(missing)) if declared else None


SYSTEMS = Registry("system", "qtts_bench.systems")
METRICS = Registry("metric", "qtts_bench.metrics")
DATASETS = Registry("dataset", "qtts_bench.datasets")

REGISTRIES = {"systems": SYSTEMS, "metrics": METRICS, "datasets": DATASETS}


def _register_builtins() -> None:
    from . import catalog  # noqa: F401  (registers the built-in entries)


_register_builtins()

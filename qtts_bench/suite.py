"""Declarative suites: strict YAML schema, ``include:`` with deep merge, grid expansion.

A suite names datasets, systems (with parameter grids) and metrics. ``load_suite`` parses and
checks the structure; ``validate_suite`` also resolves every registry name, builds every system
and metric (light constructors: nothing heavy is imported or loaded) and loads every dataset
manifest, so a malformed suite fails before any work starts. Errors name the file and the field
path, e.g. ``suites/x.yaml: systems.opus.params.bitrate: ...``. See docs/suites.md.

The suites that ship with the package live in ``qtts_bench/suites/`` (package data; the
checkout's ``suites/`` is a symlink to it). ``load_suite`` takes a path or the name of a shipped
suite (:func:`resolve_suite`): a file that exists always wins, so a local copy shadows the
shipped one.
"""

from __future__ import annotations

import copy
import hashlib
import inspect
import itertools
import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .errors import ConfigError, QttsBenchError, did_you_mean
from .registry import DATASETS, METRICS, SYSTEMS, Registry
from .systems.base import emits_codes

log = logging.getLogger("qtts_bench")

TOP_LEVEL_KEYS = {
    "name": str, "description": str, "include": (str, list), "seed": int, "device": str,
    "output": str, "save_audio": bool, "warmup": int, "jobs": (int, str), "samples": int, "datasets": dict,
    "output_cache": (bool, str), "output_cache_path": str,
    "systems": dict,
    "metrics": dict,
}
ENTRY_KEYS = {"datasets": "dataset", "systems": "system", "metrics": "metric"}
DEVICE_CHOICES = ("auto", "cpu", "cuda")
# Names that become folders of the results (<out>/<suite name>/<dataset key>/<system label>).
SAFE_NAME = re.compile(r"[A-Za-z0-9._\-@=,]+")
SAFE_NAME_RULE = "letters, digits and . _ - @ = , only; no '/', no '..'"


def check_path_name(value, where: str, what: str = "name", context: str = "") -> str:
    """``value`` if it is safe as one folder name of the results, else ConfigError naming ``where``."""
    text = str(value)
    if not SAFE_NAME.fullmatch(text) or ".." in text or set(text) == {"."}:
        raise ConfigError(f"{where}: {what} {text!r}{context} becomes a folder of the results, so it may "
                          f"use {SAFE_NAME_RULE}")
    return text


# ------------------------------------------------------------------------------- loading
def deep_merge(base: dict, override: dict) -> dict:
    """Recursive merge: mappings merge key by key, anything else in ``override`` replaces."""
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


class DuplicateKeyError(yaml.constructor.ConstructorError):
    """A mapping of a suite names the same key twice (plain YAML would keep only the last)."""


class StrictLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses duplicate keys in a mapping, naming their lines.

    Merge keys (``<<: *base``) keep their meaning: a key written in the mapping may override one
    merged in; only keys written twice in the same mapping are refused.
    """

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen: dict = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    hash(key)
                except TypeError:
                    continue  # the base constructor reports unhashable keys
                line = key_node.start_mark.line + 1
                if key in seen:
                    raise DuplicateKeyError(
                        None, None, f"duplicate key {key!r} on lines {seen[key]} and {line} of one mapping "
                        f"(YAML would silently keep only the last); merge the two entries or rename one",
                        key_node.start_mark)
                seen[key] = line
        return super().construct_mapping(node, deep=deep)


def load_yaml(text: str):
    """Parse YAML safely (no code execution), refusing duplicate mapping keys."""
    return yaml.load(text, Loader=StrictLoader)  # noqa: S506 (a SafeLoader subclass)


# ------------------------------------------------------------------------------- shipped suites
SHIPPED_SUITES = Path(__file__).resolve().parent / "suites"
SUITE_SUFFIXES = (".yaml", ".yml")


def shipped_suites() -> dict[str, Path]:
    """Name -> file of every suite shipped in the package, sorted by name.

    The name is the file's path below ``qtts_bench/suites`` without ``.yaml``, e.g.
    ``codec_baselines`` or ``ablations/qdac_asr_supervision``.
    """
    if not SHIPPED_SUITES.is_dir():
        return {}
    files = [p for p in SHIPPED_SUITES.rglob("*") if p.suffix in SUITE_SUFFIXES and p.is_file()]
    return {p.relative_to(SHIPPED_SUITES).with_suffix("").as_posix(): p
            for p in sorted(files, key=lambda p: p.relative_to(SHIPPED_SUITES).as_posix())}


def _shipped_name(text: str) -> str:
    """``suites/ablations/x.yaml`` / ``./x.yml`` / ``x`` -> the shipped-suite name it would mean."""
    name = text.replace("\\", "/")
    while name.startswith("./"):
        name = name[2:]
    name = name.removeprefix("suites/")
    for suffix in SUITE_SUFFIXES:
        name = name.removesuffix(suffix)
    return name


def _shipped(text: str) -> Path | None:
    """The shipped suite a relative ``text`` names, or None."""
    if Path(text).is_absolute():
        return None
    return shipped_suites().get(_shipped_name(text))


def resolve_suite(path: str | Path) -> Path:
    """The suite file ``path`` names: the file itself when it exists (a local path always wins),
    else ``path`` + ``.yaml`` for a bare name, else the shipped suite of that name.

    A name may carry ``.yaml`` and the ``suites/`` prefix of the checkout, so
    ``codec_baselines``, ``codec_baselines.yaml`` and ``suites/codec_baselines.yaml`` all name
    the shipped suite from any folder. Raises ConfigError listing the shipped suites otherwise.
    """
    path = Path(path)
    if path.is_file():
        return path
    if path.exists():
        raise ConfigError(f"{path} is a folder, not a suite file; shipped suites: "
                          f"{', '.join(shipped_suites()) or 'none'} (qtts-bench list suites)")
    if not path.suffix and path.with_suffix(".yaml").is_file():
        return path.with_suffix(".yaml")
    text = str(path)
    if path.is_absolute():
        raise ConfigError(f"suite file not found: {text}")
    found = _shipped(text)
    if found is not None:
        return found
    shipped = shipped_suites()
    name = _shipped_name(text)
    hint = did_you_mean(name, shipped, n=3, cutoff=0.5)
    listed = ", ".join(shipped) or "none"
    raise ConfigError(f"suite file not found: {text}, and no shipped suite is named '{name}'{hint} "
                      f"(shipped suites: {listed}; see qtts-bench list suites)")


def describe_suite(path: Path) -> tuple[str, str]:
    """(name, first sentence of the description) of a suite file, includes merged; nothing validated."""
    data, _ = _resolve_includes(path)
    return str(data.get("name", path.stem)), first_sentence(str(data.get("description") or ""))


def first_sentence(text: str) -> str:
    """The first sentence of ``text`` with its whitespace folded ("" for no text)."""
    folded = " ".join(text.split())
    match = re.search(r"(?<=[.!?])\s+(?=[A-Z(\"'])", folded)
    return folded[:match.start()] if match else folded


def _read_yaml(path: Path) -> dict:
    if not path.is_file():
        raise ConfigError(f"suite file not found: {path}")
    try:
        data = load_yaml(path.read_text(encoding="utf-8"))
    except DuplicateKeyError as exc:
        raise ConfigError(f"{path}:{exc.problem_mark.line + 1}: {exc.problem}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping")
    return data


def _resolve_includes(path: Path, seen: tuple[Path, ...] = ()) -> tuple[dict, list[Path]]:
    """The suite at ``path`` with its includes merged in (included first, this file last)."""
    path = path.resolve()
    if path in seen:
        chain = " -> ".join(str(p) for p in (*seen, path))
        raise ConfigError(f"include cycle: {chain}")
    data = _read_yaml(path)
    includes = data.pop("include", [])
    if isinstance(includes, str):
        includes = [includes]
    if not isinstance(includes, list) or not all(isinstance(i, str) for i in includes):
        raise ConfigError(f"{path}: include: expected a path or a list of paths")
    merged: dict = {}
    files = []
    for inc in includes:
        inc_path = (path.parent / inc)
        if not inc_path.is_file() and not inc_path.suffix and inc_path.with_suffix(".yaml").is_file():
            inc_path = inc_path.with_suffix(".yaml")
        if not inc_path.is_file():  # relative to this file first; else a shipped suite's name
            inc_path = _shipped(inc) or inc_path
        if not inc_path.is_file():
            raise ConfigError(f"{path}: include: file not found: {path.parent / inc} (an include is "
                              f"relative to the including file, or the name of a shipped suite: "
                              f"{', '.join(shipped_suites()) or 'none'})")
        inc_data, inc_files = _resolve_includes(inc_path, (*seen, path))
        merged = deep_merge(merged, inc_data)
        files += inc_files
    return deep_merge(merged, data), [*files, path]


# ------------------------------------------------------------------------------- model
@dataclass(frozen=True)
class EntrySpec:
    """One named entry of ``datasets:``, ``systems:`` or ``metrics:``."""

    key: str          # the suite's label for it
    name: str         # registry name
    params: dict      # for systems, values may be lists (grid axes)
    optional: bool = False  # skipped with a notice when not installed here (systems) or not set up (metrics)
    timeout: float | None = None  # metrics: seconds per utterance, scored in a killable worker process
    datasets: tuple | None = None  # systems, metrics: run only on these dataset keys (None: all)


@dataclass(frozen=True)
class SystemPoint:
    """One system at one grid point."""

    key: str
    name: str
    params: dict
    axes: dict        # the parameters that vary across this system's grid
    optional: bool = False
    datasets: tuple | None = None  # run only on these dataset keys (None: all)

    def runs_on(self, dataset_key: str) -> bool:
        """Whether this point runs on ``dataset_key`` (its ``datasets:`` restriction, if any)."""
        return self.datasets is None or dataset_key in self.datasets

    @property
    def label(self) -> str:
        if not self.axes:
            return self.key
        return self.key + "@" + ",".join(f"{k}={_fmt(v)}" for k, v in sorted(self.axes.items()))


def _fmt(value) -> str:
    return json.dumps(value) if not isinstance(value, (str, int, float)) else str(value)


@dataclass
class Suite:
    path: Path
    files: list[Path]
    raw: dict
    name: str
    description: str = ""
    seed: int = 0
    device: str = "auto"
    output: str = "results"
    save_audio: bool = False
    warmup: int = 1
    jobs: int | str = 1  # or "auto": the usable cores
    samples: int = 1  # draws per item (each with its own seed); summary.json shows their spread
    # Reuse system outputs across run folders (output_cache.py): "auto", True or False; None =
    # not set in the suite ($QTTS_BENCH_OUTPUT_CACHE, else "auto"). See resolve_output_cache.
    output_cache: bool | str | None = None
    output_cache_path: str | None = None  # default <cache root>/system-outputs
    datasets: list[EntrySpec] = field(default_factory=list)
    systems: list[EntrySpec] = field(default_factory=list)
    metrics: list[EntrySpec] = field(default_factory=list)

    def sha256(self) -> str:
        """Hash of the resolved suite (after includes), independent of key order."""
        return hashlib.sha256(json.dumps(self.raw, sort_keys=True, default=str).encode()).hexdigest()

    def system_points(self) -> list[SystemPoint]:
        """Expand parameter grids: a list-valued parameter is an axis (cartesian product).

        A one-element list is a fixed value, so a literal list is written ``[[1, 2]]``. Axes
        (and the run label) name only the parameters with more than one value.
        """
        points = []
        for spec in self.systems:
            grid = {k: v for k, v in spec.params.items() if isinstance(v, list)}
            fixed = {k: v for k, v in spec.params.items() if not isinstance(v, list)}
            for combo in itertools.product(*grid.values()) if grid else [()]:
                chosen = dict(zip(grid, combo))
                axes = {k: v for k, v in chosen.items() if len(grid[k]) > 1}
                points.append(SystemPoint(spec.key, spec.name, {**fixed, **chosen}, axes, spec.optional,
                                          spec.datasets))
        return points

    def select_systems(self, keys: list[str]) -> None:
        """Keep only the named system keys (or labels' keys); unknown ones fail with did-you-mean."""
        known = {s.key for s in self.systems}
        for key in keys:
            if key not in known:
                hint = did_you_mean(key, sorted(known), n=3)
                raise ConfigError(f"{self.path}: --systems: no system '{key}' in this suite{hint} "
                                  f"(it has: {', '.join(sorted(known))})")
        self.systems = [s for s in self.systems if s.key in keys]


def _parse_entries(path: Path, section: str, value) -> list[EntrySpec]:
    kind = ENTRY_KEYS[section]
    if not isinstance(value, dict) or not value:
        raise ConfigError(f"{path}: {section}: expected a non-empty mapping of label -> settings")
    entries = []
    for key, body in value.items():
        where = f"{path}: {section}.{key}"
        if body is None:
            body = {}
        if not isinstance(body, dict):
            raise ConfigError(f"{where}: expected a mapping (e.g. {{{kind}: NAME, params: {{...}}}})")
        allowed = entry_keys(section)
        unknown = set(body) - set(allowed)
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {sorted(unknown)}; allowed: {allowed}")
        name = body.get(kind, key)
        params = body.get("params") or {}
        optional = body.get("optional", False)
        if not isinstance(name, str):
            raise ConfigError(f"{where}.{kind}: expected a registry name")
        if not isinstance(params, dict):
            raise ConfigError(f"{where}.params: expected a mapping")
        if not isinstance(optional, bool):
            raise ConfigError(f"{where}.optional: expected true or false")
        timeout = _check_timeout(body["timeout"], f"{where}.timeout") if "timeout" in body else None
        only = _check_dataset_list(body["datasets"], f"{where}.datasets") if "datasets" in body else None
        entries.append(EntrySpec(str(key), name, params, optional, timeout, only))
    return entries


def _check_dataset_list(value, where: str) -> tuple:
    """A system's or metric's ``datasets``: a non-empty list of dataset keys (checked against the
    suite's datasets once all are parsed)."""
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where}: expected a list of dataset keys of this suite, e.g. [heldout], got {value!r}")
    return tuple(value)


def entry_keys(section: str) -> list[str]:
    """The keys an entry of ``section`` (datasets / systems / metrics) may have."""
    return (["params", ENTRY_KEYS[section]] + (["optional", "datasets"] if section in ("systems", "metrics") else [])
            + (["timeout"] if section == "metrics" else []))


def _check_timeout(value, where: str) -> float:
    """A metric's ``timeout``: seconds, a finite number > 0; else ConfigError naming ``where``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < float("inf"):
        raise ConfigError(f"{where}: expected a number of seconds > 0 (each utterance's score must finish "
                          f"within it), got {value!r}")
    return float(value)


# ------------------------------------------------------------------------------- --set overrides
def parse_override(text: str, where: str = "--set") -> tuple[list[str], object]:
    """``"systems.x.params.dir=/data"`` -> (["systems", "x", "params", "dir"], "/data").

    The value is read as YAML (``16000`` is a number, ``true`` a boolean, ``[1, 2]`` a list,
    ``'"on"'`` the string "on"; an empty value is null).
    """
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"{where} {text!r}: expected KEY.PATH=VALUE, e.g. "
                          f"--set datasets.my_list.params.path=/data/meta.lst")
    parts = key.strip().split(".")
    if any(not p for p in parts):
        raise ConfigError(f"{where} {text!r}: empty part in the key path '{key}'")
    try:
        parsed = load_yaml(value) if value.strip() else None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{where} {text!r}: the value is not valid YAML: {exc}") from None
    return parts, parsed


def apply_overrides(data: dict, overrides, path: Path | str = "") -> dict:
    """Apply ``--set KEY.PATH=VALUE`` overrides to a resolved suite mapping (a new dict).

    The first part must be a top-level key; under ``datasets``/``systems``/``metrics`` the
    second part must be a label the suite already has, the third ``params`` or the entry's
    registry key; below that keys are created as needed (parameter names are then checked by
    validation). Errors name the override and the bad key.
    """
    data = copy.deepcopy(data)
    prefix = f"{path}: " if path else ""
    for text in overrides or ():
        parts, value = parse_override(text)
        where = f"{prefix}--set {text!r}"
        top = parts[0]
        if top == "include":
            raise ConfigError(f"{where}: 'include' is resolved before overrides and cannot be set")
        if top not in TOP_LEVEL_KEYS:
            raise ConfigError(f"{where}: unknown top-level key '{top}'{did_you_mean(top, TOP_LEVEL_KEYS)}")
        if top in ENTRY_KEYS and len(parts) >= 2:
            entries = data.get(top) or {}
            label = parts[1]
            if label not in entries:
                have = ", ".join(map(str, entries)) or "none"
                raise ConfigError(f"{where}: no {top[:-1]} '{label}' in this suite"
                                  f"{did_you_mean(label, entries)} (it has: {have})")
            allowed = entry_keys(top)
            if len(parts) >= 3 and parts[2] not in allowed:
                raise ConfigError(f"{where}: {top}.{label}: unknown key '{parts[2]}'; "
                                  f"allowed: {', '.join(map(repr, allowed))}")
        node = data
        for depth, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                dotted = ".".join(parts[:depth + 1])
                raise ConfigError(f"{where}: '{dotted}' is a {type(child).__name__} ({child!r}), "
                                  f"not a mapping, so it has no key '{parts[depth + 1]}'")
            node = child
        node[parts[-1]] = value
    return data


def load_suite(path: str | Path, overrides: list[str] | None = None) -> Suite:
    """Parse a suite file and its includes, checking structure and types (no registry imports).

    ``overrides``: ``KEY.PATH=VALUE`` strings (the CLI's ``--set``), applied after includes and
    before any check; the resolved suite (``Suite.raw``, stored in run.json) holds their result.
    ``path`` may also name a shipped suite (:func:`resolve_suite`).
    """
    path = resolve_suite(path)
    data, files = _resolve_includes(path)
    data = apply_overrides(data, overrides, path)
    for key, value in data.items():
        if key not in TOP_LEVEL_KEYS:
            raise ConfigError(f"{path}: unknown top-level key '{key}'{did_you_mean(key, TOP_LEVEL_KEYS)}")
        expected = TOP_LEVEL_KEYS[key]
        if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            names = expected.__name__ if isinstance(expected, type) else " or ".join(t.__name__ for t in expected)
            raise ConfigError(f"{path}: {key}: expected {names}, got {type(value).__name__}")
    for section in ENTRY_KEYS:
        if section not in data:
            raise ConfigError(f"{path}: missing required key '{section}'")
    device = data.get("device", "auto")
    if device.split(":")[0] not in DEVICE_CHOICES:
        raise ConfigError(f"{path}: device: expected one of auto, cpu, cuda, cuda:N; got '{device}'")
    if data.get("warmup", 1) < 0:
        raise ConfigError(f"{path}: warmup: must be >= 0")
    if isinstance(data.get("jobs"), str) and data["jobs"] != "auto":
        raise ConfigError(f"{path}: jobs: expected a number >= 1 or 'auto' (the usable cores), got '{data['jobs']}'")
    for key in ("jobs", "samples"):
        if not isinstance(data.get(key, 1), str) and data.get(key, 1) < 1:
            raise ConfigError(f"{path}: {key}: must be >= 1")
    if isinstance(data.get("output_cache"), str) and data["output_cache"] != "auto":
        raise ConfigError(f"{path}: output_cache: expected true, false or 'auto', got '{data['output_cache']}'")
    if "output_cache_path" in data and not data["output_cache_path"].strip():
        raise ConfigError(f"{path}: output_cache_path: expected a folder, got an empty string")
    if "name" in data:
        check_path_name(data["name"], f"{path}: name")
    else:
        check_path_name(path.stem, f"{path}: name", "the suite's file name (its default name)")
    suite = Suite(
        path=path, files=files, raw=data,
        name=data.get("name", path.stem),
        description=data.get("description", ""),
        seed=data.get("seed", 0),
        device=device,
        output=data.get("output", "results"),
        save_audio=data.get("save_audio", False),
        warmup=data.get("warmup", 1),
        jobs=data.get("jobs", 1),
        samples=data.get("samples", 1),
        output_cache=data.get("output_cache"),
        output_cache_path=data.get("output_cache_path"),
        datasets=_parse_entries(path, "datasets", data["datasets"]),
        systems=_parse_entries(path, "systems", data["systems"]),
        metrics=_parse_entries(path, "metrics", data["metrics"]),
    )
    _check_folder_names(suite)
    _check_dataset_restrictions(suite)
    return suite


def _check_dataset_restrictions(suite: Suite) -> None:
    """Every ``datasets:`` restriction names datasets of the suite (with a did-you-mean)."""
    known = [d.key for d in suite.datasets]
    for section, specs in (("systems", suite.systems), ("metrics", suite.metrics)):
        for spec in specs:
            for key in spec.datasets or ():
                if key not in known:
                    raise ConfigError(f"{suite.path}: {section}.{spec.key}.datasets: no dataset '{key}' in this "
                                      f"suite{did_you_mean(key, known)} (it has: {', '.join(known)})")


def _check_folder_names(suite: Suite) -> None:
    """Dataset and system keys become folders of the results: refuse unsafe ones (grid values,
    also part of run labels, are checked by validation once the system accepted them)."""
    path = suite.path
    for spec in suite.datasets:
        check_path_name(spec.key, f"{path}: datasets.{spec.key}", "the dataset key")
    for spec in suite.systems:
        check_path_name(spec.key, f"{path}: systems.{spec.key}", "the system key")


def _check_label(path: Path, point: SystemPoint) -> None:
    """A run label (``key@axis=value,...``) is a folder of the results: each grid value must be safe."""
    for axis, value in sorted(point.axes.items()):
        check_path_name(_fmt(value), f"{path}: systems.{point.key}.params.{axis}", "the grid value",
                        f" (in the run label {point.label!r})")
    check_path_name(point.label, f"{path}: systems.{point.key}", "the run label")


# ------------------------------------------------------------------------------- validation
def check_params(target, params: dict, where: str) -> None:
    """Fail when ``params`` has names the callable does not accept (did-you-mean)."""
    try:
        sig = inspect.signature(target)
    except (TypeError, ValueError):
        return
    accepted = [n for n, p in sig.parameters.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    if any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values()):
        return
    for key in params:
        if key not in accepted:
            hint = did_you_mean(key, accepted)
            allowed = ", ".join(accepted) or "none"
            raise ConfigError(f"{where}.{key}: unknown parameter{hint} (accepted: {allowed})")


def _build_target(registry: Registry, spec_name: str, where: str):
    try:
        return registry.entry(spec_name).load()
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _build(registry: Registry, spec_name: str, params: dict, where: str):
    target = _build_target(registry, spec_name, where)
    check_params(target, params, f"{where}.params")
    try:
        return registry.create(spec_name, **params)
    except QttsBenchError as exc:
        raise ConfigError(f"{where}.params: {exc}") from None
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}.params: {exc}") from None


@dataclass
class ValidatedSuite:
    """A suite whose every name, parameter and requirement has been checked."""

    suite: Suite
    datasets: dict   # key -> Dataset
    points: list[SystemPoint]
    metrics: dict    # key -> Metric (constructed, not loaded)
    skipped: dict = field(default_factory=dict)  # label (or "metric KEY") -> why an optional entry is not run
    audio_files_checked: int = 0  # distinct audio files whose headers validation read

    def points_for(self, dataset_key: str) -> list[SystemPoint]:
        """The system points that run on ``dataset_key`` (a point's ``datasets:`` restricts it)."""
        return [p for p in self.points if p.runs_on(dataset_key)]

    def metrics_for(self, dataset_key: str) -> dict:
        """The metrics scored on ``dataset_key`` (a metric's ``datasets:`` restricts it)."""
        return _metrics_on(self.suite, self.metrics, dataset_key)


def validate_suite(suite: Suite) -> ValidatedSuite:
    """Resolve names, build systems/metrics (light), load manifests, check requirements."""
    path = suite.path
    datasets = {}
    for spec in suite.datasets:
        where = f"{path}: datasets.{spec.key}"
        if "name" in spec.params:
            raise ConfigError(f"{where}.params.name: the dataset's name is its key in the suite")
        dataset = _build(DATASETS, spec.name, {**spec.params, "name": spec.key}, where)
        if not dataset.items:
            raise ConfigError(f"{where}: the dataset has no items")
        datasets[spec.key] = dataset
    metrics = {}
    skipped = {}
    for spec in suite.metrics:
        where = f"{path}: metrics.{spec.key}"
        if spec.optional:  # optional covers "not set up here", never a misspelt name or parameter
            check_params(_build_target(METRICS, spec.name, where), spec.params, f"{where}.params")
        try:
            metric = _build(METRICS, spec.name, spec.params, where)
            unavailable = getattr(metric, "unavailable", None)
            missing = unavailable() if callable(unavailable) else None
            if missing:
                raise ConfigError(f"{where}: {missing}")
        except ConfigError as exc:
            if not spec.optional:
                raise
            skipped[f"metric {spec.key}"] = str(exc)
            log.warning("skipped (optional, not available here): %s", exc)
            continue
        metrics[spec.key] = metric
    points = suite.system_points()
    code_emitters, kept = 0, []
    for point in points:
        where = f"{path}: systems.{point.key}"
        system = _build(SYSTEMS, point.name, point.params, where)
        _check_label(path, point)
        missing = system.unavailable()
        if missing and point.optional:
            skipped[point.label] = missing
            log.warning("%s: skipped (optional, not installed): %s", where, missing)
            continue
        if missing:
            raise ConfigError(f"{where}: {missing}")
        kept.append(point)
        code_emitters += emits_codes(system)
        for dkey, dataset in datasets.items():
            if point.runs_on(dkey):
                _check_requirements(path, point, system, dkey, dataset, _metrics_on(suite, metrics, dkey))
    for mkey, metric in metrics.items():
        # Not an error: other systems of a mixed suite (or a --systems selection) record the
        # metric as missing with the reason.
        if "codes" in metric.requires and not code_emitters:
            log.warning("%s: metrics.%s: needs codec tokens, but no selected system emits them: every "
                        "value will be missing", path, mkey)
    n_audio = sum(check_audio_headers(dataset, f"{path}: datasets.{dkey}") for dkey, dataset in datasets.items())
    return ValidatedSuite(suite, datasets, kept, metrics, skipped, n_audio)


def _metrics_on(suite: Suite, metrics: dict, dataset_key: str) -> dict:
    """The entries of ``metrics`` whose ``datasets:`` (if any) include ``dataset_key``."""
    only = {spec.key: spec.datasets for spec in suite.metrics}
    return {k: m for k, m in metrics.items() if only.get(k) is None or dataset_key in only[k]}


AUDIO_FIELDS = ("audio", "prompt_audio")
MAX_LISTED = 5


def check_audio_headers(dataset, where: str) -> int:
    """Every item's audio and prompt_audio must open as audio with at least one sample.

    Reads only the file headers (``soundfile.info``; about 0.1 ms a file, each file once however
    many items share it), so a dataset of unreadable files fails validation rather than every
    utterance of the run. Returns the number of distinct files checked; raises ConfigError naming
    the items and files.
    """
    import soundfile

    checked: dict[str, str | None] = {}
    problems = []
    for item in dataset.items:
        for name in AUDIO_FIELDS:
            file = getattr(item, name, None)
            if not file:
                continue
            if file not in checked:
                try:
                    info = soundfile.info(file)
                    checked[file] = None if info.frames > 0 else "holds no samples"
                except Exception as exc:  # libsndfile raises several types
                    checked[file] = f"cannot read the audio header: {str(exc).strip() or type(exc).__name__}"
            if checked[file]:
                problems.append(f"item '{item.id}': {name} {file}: {checked[file]}")
    if problems:
        shown = "; ".join(problems[:MAX_LISTED])
        more = f"; ... and {len(problems) - MAX_LISTED} more" if len(problems) > MAX_LISTED else ""
        raise ConfigError(f"{where}: {len(problems)} unreadable audio file(s) (formats libsndfile reads: wav, "
                          f"flac, ogg, mp3...): {shown}{more}. Fix or convert them, or remove those items")
    return len(checked)


def _check_requirements(path, point, system, dkey, dataset, metrics) -> None:
    have = dataset.provides()
    for need in getattr(system, "needs", ()):
        if need not in have:
            missing = [i.id for i in dataset.items if need not in i.provides()][:3]
            raise ConfigError(
                f"{path}: systems.{point.key}: '{point.name}' needs '{need}' on every item, "
                f"but dataset '{dkey}' lacks it (e.g. {', '.join(missing)})")
    for mkey, metric in metrics.items():
        for need in metric.requires:
            if need == "codes":  # provided by the system, checked over the whole suite
                continue
            if need not in have:
                missing = [i.id for i in dataset.items if need not in i.provides()][:3]
                raise ConfigError(
                    f"{path}: metrics.{mkey}: requires '{need}' on every item, but dataset "
                    f"'{dkey}' lacks it (e.g. {', '.join(missing)})")

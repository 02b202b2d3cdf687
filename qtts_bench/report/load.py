"""Read run folders of the results store (docs/results-format.md) into :class:`Run` objects.

A run folder holds run.json, items.jsonl and summary.json. Problems that do not make a run
unreadable (truncated last line, missing summary, unfinished run) become visible ``notes``;
a different schema version is refused with :class:`IncompatibleResults`.

Draws (a suite's ``samples: N``): items.jsonl then holds N records per item, told apart by
``draw``. Everything the tables pair or bootstrap is per *item*: a mean metric's item value is
the mean over the draws that scored, a ratio metric's item stats are summed over those draws
(so the corpus value is the pooled ratio). The per-draw values stay available
(``draw_values`` / ``draw_stats``) for the spread across draws and the listening page.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import RESULTS_SCHEMA_VERSION
from ..errors import ConfigError, QttsBenchError

# Columns derived from each item's documented ``system`` block (not from any metric's name).
RTF_KEY = "sys.rtf"
BITRATE_KEY = "sys.kbps"

# Reference rows (the input itself, i.e. the ground truth) are marked and never ranked "best".
# run.json says so in the system block (``system.reference`` or ``system.provenance.reference``)
# when the runner records it; results without that flag are recognised by the system's target.
# tests/test_report_table.py checks this set against the systems whose class sets ``reference``.
REFERENCE_TARGETS = frozenset({"qtts_bench.systems.classical:Passthrough"})


def is_reference(run_json: dict) -> bool:
    """True when run.json describes a reference system (passthrough: the ground truth itself)."""
    system = run_json.get("system") or {}
    for block in (system, system.get("provenance") or {}):
        if isinstance(block, dict) and isinstance(block.get("reference"), bool):
            return block["reference"]
    return system.get("target") in REFERENCE_TARGETS


class IncompatibleResults(QttsBenchError):
    """Runs that cannot be read or put side by side (schema or metric version differ)."""


@dataclass(frozen=True)
class MetricInfo:
    """What run.json declares about one metric column. ``source``: "metric" or "system"."""

    key: str
    direction: str | None
    unit: str = ""
    aggregation: str = "mean"
    ratio: tuple | None = None  # (numerator stat, denominator stat, scale)
    version: str | None = None
    sample_rate: int | None = None
    settings: dict = field(default_factory=dict)
    title: str = ""
    source: str = "metric"

    @classmethod
    def from_run_json(cls, key: str, meta: dict) -> "MetricInfo":
        direction = meta.get("direction")
        ratio = meta.get("ratio")
        return cls(
            key=key,
            direction=direction if direction in ("higher", "lower") else None,
            unit=meta.get("unit") or "",
            aggregation=meta.get("aggregation") or "mean",
            ratio=tuple(ratio) if ratio else None,
            version=None if meta.get("version") is None else str(meta.get("version")),
            sample_rate=meta.get("sample_rate"),
            settings=dict(meta.get("settings") or {}),
            title=key,
        )

    def comparable(self, ignore: tuple[str, ...] = ()) -> dict:
        """Everything that must match for two runs' numbers to share a column."""
        return {
            "direction": self.direction, "unit": self.unit, "aggregation": self.aggregation,
            "ratio": list(self.ratio) if self.ratio else None, "version": self.version,
            "sample_rate": self.sample_rate,
            "settings": {k: v for k, v in self.settings.items() if k not in ignore},
        }

    def fingerprint(self, ignore: tuple[str, ...] = ()) -> str:
        blob = json.dumps(self.comparable(ignore), sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:8]


@dataclass(eq=False)
class Run:
    """One dataset x system x grid point, read from its folder.

    Per-metric arrays are aligned with ``ids`` (one entry per item): ``values[key]`` is float64
    with NaN where the metric has no value (its reason in ``reasons[key]``); ``stats[key][name]``
    likewise. ``records`` holds one record per item (its lowest draw), aligned with ``ids``.
    ``not_applicable[key]`` is True where the metric does not apply to the item (stored entries
    flagged ``not_applicable``; entries without the flag, as in older results, are failures).

    With several draws per item, ``values`` / ``stats`` are the per-item collapse (mean over the
    draws that scored; ratio stats summed over them), ``draws`` lists the draw numbers present,
    ``draw_records[i]`` the item's records by draw, and ``draw_values[key]`` /
    ``draw_stats[key][name]`` are (items, draws) arrays, NaN where that draw has no value.
    """

    path: Path
    source: str
    suite: str
    dataset: str
    label: str
    system: str
    params: dict
    axes: dict
    metrics: dict[str, MetricInfo]
    run_json: dict
    summary: dict | None
    ids: list[str]
    records: list[dict]
    values: dict[str, np.ndarray]
    reasons: dict[str, list]
    stats: dict[str, dict[str, np.ndarray]]
    n_items: int | None
    n_system_errors: int
    notes: list[str] = field(default_factory=list)
    name: str = ""  # unique display name within a report
    draws: list[int] = field(default_factory=lambda: [0])
    samples: int = 1  # draws per item the suite asked for
    draw_records: list[list[dict]] = field(default_factory=list)
    draw_values: dict[str, np.ndarray] = field(default_factory=dict)
    draw_stats: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    draw_reasons: dict[str, list[list]] = field(default_factory=dict)
    n_records: int = 0  # (item, draw) records read
    not_applicable: dict[str, np.ndarray] = field(default_factory=dict)  # key -> bool per item
    reference: bool = False  # a reference row (passthrough / ground truth): never "best"

    @property
    def n_draws(self) -> int:
        return len(self.draws)

    @property
    def jobs(self) -> int | None:
        """Worker processes the run used (run.json ``jobs``; None in results that do not say)."""
        value = self.run_json.get("jobs")
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    @property
    def device(self) -> str | None:
        return self.environment().get("device")

    @property
    def kept_audio(self) -> bool:
        """True when at least one record of the run links a saved output file."""
        return any(record.get("output_audio") for group in (self.draw_records or [self.records])
                   for record in group)

    def pooled(self) -> dict[str, dict]:
        """Metric key -> the corpus ``pooled`` codebook usage block of summary.json (summed
        histograms over the utterances the run scored: perplexity, dead-code fraction, entropy
        bitrate), for the metrics that have one."""
        blocks = ((self.summary or {}).get("metrics") or {})
        return {key: block["pooled"] for key, block in blocks.items()
                if isinstance(block, dict) and isinstance(block.get("pooled"), dict)
                and block["pooled"].get("mean_perplexity") is not None}

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.suite, self.dataset, self.label)

    @property
    def index(self) -> dict[str, int]:
        if not hasattr(self, "_index"):
            self._index = {item_id: i for i, item_id in enumerate(self.ids)}
        return self._index

    def scored_ids(self, key: str) -> set[str]:
        """Ids with a finite value for metric ``key`` (empty when the run lacks the metric)."""
        if key not in self.values:
            return set()
        ok = np.isfinite(self.values[key])
        return {item_id for item_id, good in zip(self.ids, ok) if good}

    def n_scored(self, key: str) -> int:
        return int(np.isfinite(self.values[key]).sum()) if key in self.values else 0

    def n_not_applicable(self, key: str) -> int:
        """Items the metric does not apply to (not failures)."""
        flags = self.not_applicable.get(key)
        return int(flags.sum()) if flags is not None else 0

    def n_failed(self, key: str) -> int:
        """Items recorded without a value for ``key`` that are failures (not the not-applicable ones)."""
        return len(self.ids) - self.n_scored(key) - self.n_not_applicable(key)

    def failure_reasons(self, key: str) -> dict[str, int]:
        """Reason -> count over the items that failed (not-applicable ones excluded)."""
        return self._reasons(key, want_not_applicable=False)

    def not_applicable_reasons(self, key: str) -> dict[str, int]:
        """Reason -> count over the items the metric does not apply to."""
        return self._reasons(key, want_not_applicable=True)

    def _reasons(self, key: str, want_not_applicable: bool) -> dict[str, int]:
        counts: dict[str, int] = {}
        flags = self.not_applicable.get(key)
        for i, (value, reason) in enumerate(zip(self.values.get(key, ()), self.reasons.get(key, ()))):
            is_na = bool(flags[i]) if flags is not None else False
            if not math.isfinite(value) and is_na == want_not_applicable:
                counts[reason or "unknown"] = counts.get(reason or "unknown", 0) + 1
        return dict(sorted(counts.items(), key=lambda kv: -kv[1]))

    def environment(self) -> dict:
        return self.run_json.get("environment") or {}


def find_run_folders(paths: list[str | Path]) -> tuple[list[tuple[Path, str]], list[str]]:
    """Run folders under each path (itself, or any depth below), with the path they came from.

    Returns ([(folder, source)], problems). A folder with items.jsonl or summary.json but no
    run.json is reported as a problem, not read.
    """
    found: list[tuple[Path, str]] = []
    problems: list[str] = []
    seen: set[Path] = set()
    for raw in paths:
        root = Path(raw)
        if not root.exists():
            raise ConfigError(f"results folder not found: {root}")
        if root.is_file():
            root = root.parent
        candidates = {Path(dirpath) for dirpath, _, files in os.walk(root)
                      if {"run.json", "items.jsonl", "summary.json"} & set(files)}
        for folder in sorted(candidates):
            if folder.resolve() in seen:
                continue
            seen.add(folder.resolve())
            if (folder / "run.json").is_file():
                found.append((folder, str(raw)))
            else:
                problems.append(f"{folder}: skipped, no run.json (written when a run starts; "
                                "the folder was copied incompletely or is not a qtts-bench run)")
    return found, problems


def read_run(folder: Path, source: str = "") -> Run:
    """Read one run folder. Raises IncompatibleResults for an unreadable or foreign run.json."""
    folder = Path(folder)
    try:
        run_json = json.loads((folder / "run.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise IncompatibleResults(f"{folder / 'run.json'}: unreadable ({exc})") from exc
    version = run_json.get("schema_version")
    if version != RESULTS_SCHEMA_VERSION:
        raise IncompatibleResults(
            f"{folder / 'run.json'}: results schema version {version!r}; this qtts-bench reads "
            f"version {RESULTS_SCHEMA_VERSION}. Re-run the suite or report it with a matching "
            "qtts-bench release.")
    notes: list[str] = []
    summary = _read_summary(folder, notes)
    flat = _read_records(folder / "items.jsonl", notes)

    run_section = run_json.get("run") or {}
    dataset_section = run_json.get("dataset") or {}
    suite = (run_json.get("suite") or {}).get("name") or folder.parent.parent.name
    dataset = run_section.get("dataset") or dataset_section.get("name") or folder.parent.name
    label = run_section.get("label") or folder.name
    system = run_section.get("system") or (run_json.get("system") or {}).get("name") or label

    metrics = {key: MetricInfo.from_run_json(key, meta or {})
               for key, meta in (run_json.get("metrics") or {}).items()}
    flat_values, flat_reasons, flat_stats, flat_na = {}, {}, {}, {}
    for key, info in metrics.items():
        flat_values[key], flat_reasons[key], flat_stats[key] = _metric_arrays(flat, key, info)
        flat_na[key] = _not_applicable_flags(flat, key)
    _add_system_columns(run_json, flat, metrics, flat_values, flat_reasons, flat_stats)

    # (item, draw) layout: one row per item id (first-seen order), one column per draw number
    ids: list[str] = []
    row_of: dict[str, int] = {}
    for record in flat:
        row_of.setdefault(str(record["id"]), len(row_of))
    ids = list(row_of)
    draws = sorted({_draw(r) for r in flat}) or [0]
    col_of = {d: j for j, d in enumerate(draws)}
    rows = np.array([row_of[str(r["id"])] for r in flat], dtype=np.int64)
    cols = np.array([col_of[_draw(r)] for r in flat], dtype=np.int64)
    draw_records: list[list[dict]] = [[] for _ in ids]
    for record in sorted(flat, key=_draw):
        draw_records[row_of[str(record["id"])]].append(record)
    records = [group[0] for group in draw_records]
    values, reasons, stats, not_applicable = {}, {}, {}, {}
    draw_values, draw_stats, draw_reasons = {}, {}, {}
    partly_failed: dict[str, tuple[int, int]] = {}
    for key in metrics:
        draw_values[key] = _scatter(flat_values[key], rows, cols, len(ids), len(draws))
        draw_stats[key] = {name: _scatter(arr, rows, cols, len(ids), len(draws))
                           for name, arr in flat_stats[key].items()}
        grid: list[list] = [[None] * len(draws) for _ in ids]
        for reason, i, j in zip(flat_reasons[key], rows, cols):
            grid[i][j] = reason
        draw_reasons[key] = grid
        values[key], stats[key], reasons[key], partial = _collapse(draw_values[key], draw_stats[key], grid)
        not_applicable[key] = _collapse_not_applicable(flat_na.get(key), rows, cols, len(ids), len(draws),
                                                       values[key])
        if partial[0]:
            partly_failed[key] = partial

    samples = _declared_samples(run_json, summary)
    n_items = dataset_section.get("n_items")
    if n_items is None and summary:
        n_items = summary.get("n_items")
    n_errors = sum(1 for r in flat if r.get("status") != "ok")
    expected_draws = max(samples, len(draws))
    if not flat:
        notes.append("no utterances recorded (items.jsonl missing or empty)")
    elif n_items is not None and len(ids) < n_items:
        notes.append(f"partial: {len(ids)} of {n_items} utterances done"
                     + (f" ({len(flat)} of {n_items * expected_draws} draws)" if expected_draws > 1 else ""))
    elif expected_draws > 1 and len(flat) < len(ids) * expected_draws:
        notes.append(f"partial: {len(flat)} of {len(ids) * expected_draws} draws done "
                     f"({expected_draws} per utterance)")
    if not run_json.get("finished") or summary is None:
        notes.append("unfinished: run.json has no end time or summary.json is missing "
                     "(interrupted or still running)")
    if n_errors:
        if len(draws) > 1:
            n_err_items = len({str(r["id"]) for r in flat if r.get("status") != "ok"})
            notes.append(f"system failed on {n_errors} draw(s) of {n_err_items} utterance(s)")
        else:
            notes.append(f"system failed on {n_errors} utterance(s)")
    for key, (n_failed_draws, n_affected) in partly_failed.items():
        notes.append(f"{key}: {n_failed_draws} draw(s) failed on {n_affected} utterance(s) whose other draws "
                     "scored; those utterances count with the mean of their scored draws")
    return Run(path=folder, source=source, suite=str(suite), dataset=str(dataset),
               label=str(label), system=str(system), params=dict(run_section.get("params") or {}),
               axes=dict(run_section.get("axes") or {}), metrics=metrics, run_json=run_json,
               summary=summary, ids=ids, records=records, values=values, reasons=reasons,
               stats=stats, n_items=n_items, n_system_errors=n_errors, notes=notes, name=str(label),
               draws=draws, samples=samples, draw_records=draw_records, draw_values=draw_values,
               draw_stats=draw_stats, draw_reasons=draw_reasons, n_records=len(flat),
               not_applicable=not_applicable, reference=is_reference(run_json))


def load_runs(paths: list[str | Path]) -> tuple[list[Run], list[str]]:
    """Every run under ``paths`` plus report-level problems. Refuses mixed schema versions."""
    folders, problems = find_run_folders(paths)
    runs, refused = [], []
    for folder, source in folders:
        try:
            runs.append(read_run(folder, source))
        except IncompatibleResults as exc:
            refused.append(str(exc))
    if refused:
        raise IncompatibleResults("refusing to report incompatible results:\n  " + "\n  ".join(refused))
    _name_runs(runs)
    return runs, problems


def check_metric_versions(runs: list[Run]) -> None:
    """Refuse runs whose same metric key declares different versions (numbers not comparable)."""
    by_key: dict[str, dict[str, list[str]]] = {}
    for run in runs:
        for key, info in run.metrics.items():
            by_key.setdefault(key, {}).setdefault(str(info.version), []).append(str(run.path))
    clashes = []
    for key, versions in sorted(by_key.items()):
        if len(versions) > 1:
            detail = "; ".join(f"version {v}: {', '.join(paths[:3])}{' ...' if len(paths) > 3 else ''}"
                               for v, paths in sorted(versions.items()))
            clashes.append(f"metric '{key}' has different versions ({detail})")
    if clashes:
        raise IncompatibleResults("refusing to combine runs with different metric versions; "
                                  "report them separately:\n  " + "\n  ".join(clashes))


def resolve_audio(run: Run, path: str | None) -> Path | None:
    """An audio path from a record: relative paths are relative to the run folder."""
    if not path:
        return None
    p = Path(path)
    return p if p.is_absolute() else run.path / p


# --- helpers -------------------------------------------------------------------------------

def _read_summary(folder: Path, notes: list[str]) -> dict | None:
    path = folder / "summary.json"
    if not path.is_file():
        return None
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        notes.append(f"summary.json unreadable ({exc}); aggregates recomputed from items.jsonl")
        return None
    if summary.get("schema_version") != RESULTS_SCHEMA_VERSION:
        raise IncompatibleResults(f"{path}: results schema version {summary.get('schema_version')!r}; "
                                  f"this qtts-bench reads version {RESULTS_SCHEMA_VERSION}")
    return summary


def _draw(record: dict) -> int:
    """A record's draw number (0 when the run made one draw per item)."""
    try:
        return int(record.get("draw") or 0)
    except (TypeError, ValueError):
        return 0


def _declared_samples(run_json: dict, summary: dict | None) -> int:
    resolved = (run_json.get("suite") or {}).get("resolved") or {}
    for value in (resolved.get("samples") if isinstance(resolved, dict) else None,
                  (summary or {}).get("samples")):
        try:
            if value is not None and int(value) >= 1:
                return int(value)
        except (TypeError, ValueError):
            continue
    return 1


def _scatter(flat: np.ndarray, rows: np.ndarray, cols: np.ndarray, n: int, d: int) -> np.ndarray:
    out = np.full((n, d), np.nan)
    if flat.size:
        out[rows, cols] = flat
    return out


def _collapse(values: np.ndarray, stats: dict[str, np.ndarray], reasons: list[list]):
    """(items, draws) -> per item: mean over the draws that scored; ratio stats summed over them.

    An item whose draws all failed has no value (reason: its first draw's, or each draw's when
    they differ). Stats of a scored draw that lack a number make the item's sum NaN (no stats).
    Returns (values, stats, reasons, (failed draws of partly scored items, such items)).
    With one draw this is the identity.
    """
    ok = np.isfinite(values)
    count = ok.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(count > 0, np.where(ok, values, 0.0).sum(axis=1) / np.maximum(count, 1), np.nan)
    summed = {}
    for name, arr in stats.items():
        bad = (ok & ~np.isfinite(arr)).any(axis=1)
        total = np.where(ok, np.nan_to_num(arr, nan=0.0), 0.0).sum(axis=1)
        summed[name] = np.where((count > 0) & ~bad, total, np.nan)
    if values.shape[1] == 1:  # bit-identical to the single-draw values
        mean = values[:, 0].copy()
        summed = {name: np.where(ok[:, 0], arr[:, 0], np.nan) for name, arr in stats.items()}
    item_reasons: list = []
    for i, row in enumerate(reasons):
        if count[i]:
            item_reasons.append(None)
            continue
        present = [r for r in row if r is not None]
        distinct = list(dict.fromkeys(present))
        if len(distinct) <= 1:
            item_reasons.append(distinct[0] if distinct else "no draw recorded")
        else:
            item_reasons.append("; ".join(f"draw {j}: {r}" for j, r in enumerate(row) if r is not None))
    present = np.array([[r is not None or ok[i, j] for j, r in enumerate(row)] for i, row in enumerate(reasons)],
                       dtype=bool).reshape(values.shape)
    partly = (count > 0) & ((present & ~ok).sum(axis=1) > 0)
    n_failed_draws = int((present & ~ok)[partly].sum())
    return mean, summed, item_reasons, (n_failed_draws, int(partly.sum()))


def _read_records(path: Path, notes: list[str]) -> list[dict]:
    """Parse items.jsonl; first record of an (id, draw) wins; an unparsable last line is dropped."""
    if not path.is_file():
        return []
    lines = path.read_text(encoding="utf-8", errors="replace").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    records, seen, duplicates, corrupt = [], set(), 0, []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            item_key = (str(record["id"]), _draw(record))
        except (json.JSONDecodeError, KeyError, TypeError, AttributeError):
            if number == len(lines):
                notes.append("last line of items.jsonl truncated (run interrupted); ignored")
            else:
                corrupt.append(number)
            continue
        if item_key in seen:
            duplicates += 1
            continue
        seen.add(item_key)
        records.append(record)
    if corrupt:
        notes.append(f"items.jsonl lines {corrupt[:5]}{'...' if len(corrupt) > 5 else ''} "
                     "corrupt; those utterances are left out")
    if duplicates:
        notes.append(f"{duplicates} duplicate utterance line(s) in items.jsonl; first kept")
    return records


def _not_applicable_flags(records: list[dict], key: str) -> np.ndarray:
    """Per record: the stored entry has no value and says the metric does not apply."""
    flags = np.zeros(len(records), dtype=bool)
    for i, record in enumerate(records):
        entry = (record.get("metrics") or {}).get(key)
        if (isinstance(entry, dict) and entry.get("not_applicable") is True
                and math.isnan(_float(entry.get("value")))):
            flags[i] = True
    return flags


def _collapse_not_applicable(flat: np.ndarray | None, rows: np.ndarray, cols: np.ndarray, n: int, d: int,
                             values: np.ndarray) -> np.ndarray:
    """Per item: no draw scored and every recorded draw was not applicable."""
    if flat is None or not flat.size:
        return np.zeros(n, dtype=bool)
    recorded = np.zeros((n, d), dtype=bool)
    na = np.zeros((n, d), dtype=bool)
    recorded[rows, cols] = True
    na[rows, cols] = flat
    return ~np.isfinite(values) & recorded.any(axis=1) & (na | ~recorded).all(axis=1)


RUNAWAY_STAT = "runaway"  # stats key of the ASR metrics' per-utterance runaway flag (1 = flagged)


def _float(value) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return math.nan
    return out if math.isfinite(out) else math.nan


def _metric_arrays(records: list[dict], key: str, info: MetricInfo):
    n = len(records)
    values = np.full(n, np.nan)
    reasons: list = [None] * n
    # ratio metrics (WER, CER) also carry the ASR-runaway flag per utterance, when the metric sets it
    stat_names = (*info.ratio[:2], RUNAWAY_STAT) if info.ratio else ()
    stats = {name: np.full(n, np.nan) for name in stat_names}
    for i, record in enumerate(records):
        entry = (record.get("metrics") or {}).get(key)
        if record.get("status", "ok") != "ok" and (entry is None or entry.get("value") is None):
            reasons[i] = f"system error: {record.get('error') or 'unknown'}"
            continue
        if entry is None:
            reasons[i] = "not computed (metric absent from this record)"
            continue
        value = _float(entry.get("value"))
        if math.isnan(value):
            reasons[i] = entry.get("reason") or ("non-finite value" if entry.get("value") is not None
                                                 else "no value and no reason recorded")
            continue
        values[i] = value
        for name in stat_names:
            stats[name][i] = _float((entry.get("stats") or {}).get(name))
    return values, reasons, stats


def _add_system_columns(run_json, records, metrics, values, reasons, stats) -> None:
    """RTF = sum(seconds) / sum(audio_seconds); bitrate = sum(encoded_bits) / sum(input_seconds)."""
    env = run_json.get("environment") or {}
    machine = {k: env.get(k) for k in ("device", "device_name", "cpu") if env.get(k) is not None}
    specs = [
        (RTF_KEY, "seconds", "audio_seconds", 1.0,
         MetricInfo(RTF_KEY, "lower", "× real time", "ratio", ("seconds", "audio_seconds", 1.0),
                    None, None, machine, "RTF", "system")),
        (BITRATE_KEY, "encoded_bits", "input_seconds", 1e-3,
         MetricInfo(BITRATE_KEY, None, "kbit/s", "ratio", ("encoded_bits", "input_seconds", 1e-3),
                    None, None, {"measured": "encoded bits / input seconds"}, "bitrate", "system")),
    ]
    for key, num_name, den_name, scale, info in specs:
        n = len(records)
        num, den, vals = np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)
        why: list = [None] * n
        for i, record in enumerate(records):
            block = record.get("system") or {}
            a, b = _float(block.get(num_name)), _float(block.get(den_name))
            if record.get("status", "ok") != "ok":
                why[i] = f"system error: {record.get('error') or 'unknown'}"
            elif math.isnan(a) or math.isnan(b) or b <= 0:
                why[i] = f"no {num_name}/{den_name} recorded"
            else:
                num[i], den[i], vals[i] = a, b, a / b * scale
        if np.isfinite(vals).any():
            metrics[key] = info
            values[key], reasons[key] = vals, why
            stats[key] = {num_name: num, den_name: den}


def _name_runs(runs: list[Run]) -> None:
    """Unique display names: the label, plus the source folder when the same run appears twice."""
    counts: dict[tuple, int] = {}
    for run in runs:
        counts[run.key] = counts.get(run.key, 0) + 1
    for run in runs:
        run.name = run.label if counts[run.key] == 1 else f"{run.label} ⟨{run.source}⟩"
    names: dict[str, int] = {}
    for run in runs:  # still ambiguous (same label and source): number them
        names[run.name] = names.get(run.name, 0) + 1
        if names[run.name] > 1:
            run.name = f"{run.name} #{names[run.name]}"

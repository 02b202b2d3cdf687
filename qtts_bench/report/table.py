"""The neutral table model every renderer (CSV, HTML, plots, listening page) reads.

Rules (docs/reports.md):
- A column is one metric with one set of declared settings. When runs declare different
  settings for the same metric (e.g. SIM from two models), each variant gets its own column
  (``key~fingerprint``) with a note; numbers from different settings never share a column.
- Within a table, systems are compared on the utterances every one of them scored for that
  column (its ``n_common``); a run that scored none is left out of that intersection and says so.
- "Best" follows the metric's declared direction; a row whose paired difference to the best
  has a CI containing zero is marked tied. Reference rows (passthrough: the ground truth
  itself, see ``load.is_reference``) come first, are marked, and never take best or tied.
- Timed columns (RTF, TTFT, peak memory) carry each run's ``jobs`` and device, since parallel
  workers inflate timings.
- Codebook usage pooled over the corpus (summary.json's ``pooled`` block) is kept per run.
- Ablations: along a declared axis, consecutive levels are compared with paired per-utterance
  deltas; a verdict is given only where the CI excludes zero.
- Draws (``samples: N``): the unit of pairing and resampling is the item; its value is the mean
  over its scored draws (ratio metrics: stats summed over them), see ``load``. Each cell of a
  run with several draws also carries the spread of the per-draw corpus values on the same
  common items (:class:`DrawSpread`).
- Categories: when records carry ``category``, every column is also broken down per category on
  the column's common items (``category.py``).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field

import numpy as np

from .load import BITRATE_KEY, RTF_KEY, RUNAWAY_STAT, MetricInfo, Run, check_metric_versions
from .stats import DEFAULT_LEVEL, DEFAULT_RESAMPLES, Estimate, Sample, bootstrap, paired_delta, verdict


@dataclass(frozen=True)
class ReportOptions:
    n_resamples: int = DEFAULT_RESAMPLES
    level: float = DEFAULT_LEVEL
    seed: int = 0
    axes: tuple[str, ...] = ()  # extra ablation axes declared by the user (params names)
    ignore_settings: tuple[str, ...] = ()  # settings keys that do not change numbers (e.g. paths)
    merge_suites: bool = False  # one table per dataset instead of per suite and dataset


@dataclass
class Column:
    key: str
    metric: str
    info: MetricInfo
    note: str | None = None  # why this metric is split into several columns

    @property
    def title(self) -> str:
        return self.info.title or self.metric

    @property
    def direction(self) -> str | None:
        return self.info.direction

    @property
    def unit(self) -> str:
        return self.info.unit

    def provenance(self) -> str:
        """Compact settings text shown under the header (sha256 values shortened)."""
        parts = []
        for k, v in self.info.settings.items():
            if k == "version":
                continue
            text = json.dumps(v, default=str) if isinstance(v, (dict, list)) else str(v)
            if re.fullmatch(r"[0-9a-f]{40,}", text):
                text = text[:12] + "…"
            parts.append(f"{k}={text}")
        if self.info.aggregation == "ratio" and self.info.ratio:
            num, den, scale = self.info.ratio
            parts.append(f"Σ{num}/Σ{den}" + (f"×{scale:g}" if scale != 1 else ""))
        if self.info.version:
            parts.append(f"v{self.info.version}")
        return " · ".join(parts)

    def provenance_full(self) -> str:
        return json.dumps(self.info.comparable(), sort_keys=True, default=str)

    @property
    def timed(self) -> bool:
        """A speed column (RTF, TTFT, peak memory): its numbers depend on the run's jobs and device."""
        return self.metric == RTF_KEY or "timer" in self.info.settings


@dataclass(frozen=True)
class DrawSpread:
    """The corpus value of each draw on the cell's common items (None where a draw scored none)."""

    values: tuple
    mean: float | None
    std: float | None  # sample standard deviation (n - 1) across draws
    min: float | None
    max: float | None

    @property
    def n(self) -> int:
        return sum(v is not None for v in self.values)


@dataclass
class Cell:
    """One run x one column. ``estimate`` is on the table's common utterances for the column."""

    status: str  # ok | absent | all_failed | not_applicable | no_common | no_stats
    estimate: Estimate | None = None
    n_scored: int = 0
    n_failed: int = 0  # failures only: utterances the metric does not apply to are n_not_applicable
    n_common: int = 0
    all_value: float | None = None  # aggregate over every utterance this run scored
    note: str | None = None
    best: bool = False
    tied: bool = False  # paired CI vs the best contains zero
    delta_to_best: Estimate | None = None
    failure_reasons: dict = field(default_factory=dict)
    draws: DrawSpread | None = None  # runs with several draws per item
    n_not_applicable: int = 0
    not_applicable_reasons: dict = field(default_factory=dict)

    @property
    def value(self) -> float | None:
        return self.estimate.value if self.estimate is not None else None


@dataclass(eq=False)
class Row:
    run: Run
    name: str
    cells: dict[str, Cell]


@dataclass
class PairDelta:
    estimate: Estimate | None
    baseline: float | None
    candidate: float | None
    verdict: str
    note: str | None = None


@dataclass
class Comparison:
    level_a: object
    level_b: object
    run_a: Run
    run_b: Run
    deltas: dict[str, PairDelta]


@dataclass
class Ablation:
    axis: str
    system: str
    fixed: dict  # the other parameters, constant within this ablation
    levels: list
    runs: list[Run]  # one per level, in level order
    comparisons: list[Comparison]

    @property
    def title(self) -> str:
        fixed = ", ".join(f"{k}={v}" for k, v in sorted(self.fixed.items()))
        return f"{self.system}: {self.axis}" + (f" (with {fixed})" if fixed else "")

    @property
    def numeric(self) -> bool:
        return all(_is_number(v) for v in self.levels)


@dataclass
class PooledUsage:
    """One run's corpus codebook usage for one metric (summary.json ``pooled``: histograms summed
    over the utterances the run scored)."""

    row: Row
    metric: str
    usage: dict

    def get(self, key: str) -> float | None:
        value = self.usage.get(key)
        return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


@dataclass
class Table:
    suite: str
    dataset: str
    columns: list[Column]
    rows: list[Row]
    notes: list[str]
    n_common: dict[str, int]
    ablations: list[Ablation] = field(default_factory=list)
    common_ids: dict[str, list[str]] = field(default_factory=dict)  # column key -> common items
    categories: object = None  # category.CategoryBreakdown when records carry ``category``
    pooled: list[PooledUsage] = field(default_factory=list)  # corpus codebook usage per run and metric

    @property
    def title(self) -> str:
        return f"{self.suite} / {self.dataset}"

    @property
    def slug(self) -> str:
        return re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{self.suite}-{self.dataset}")


@dataclass
class Report:
    tables: list[Table]
    columns: list[Column]
    runs: list[Run]
    notes: list[str]
    options: ReportOptions


def build_report(runs: list[Run], problems: list[str] | None = None,
                 options: ReportOptions | None = None) -> Report:
    """Runs -> tables (per suite and dataset), columns, cells, ablations and notes."""
    options = options or ReportOptions()
    check_metric_versions(runs)
    columns, run_columns, split_notes = assign_columns(runs, options.ignore_settings)
    groups: dict[tuple, list[Run]] = {}
    for run in runs:
        key = ("(all suites)" if options.merge_suites else run.suite, run.dataset)
        groups.setdefault(key, []).append(run)
    tables = []
    for (suite, dataset), members in sorted(groups.items()):
        members.sort(key=_run_order)
        tables.append(_build_table(suite, dataset, members, columns, run_columns, split_notes, options))
    return Report(tables, list(columns.values()), runs, list(problems or []), options)


def assign_columns(runs: list[Run], ignore: tuple[str, ...] = ()):
    """Map each run's metric keys to report columns; split a metric whose settings differ.

    Returns (columns by key in first-seen order, {id(run): {metric: column key}}, notes).
    """
    variants: dict[str, dict[str, MetricInfo]] = {}
    for run in runs:
        for metric, info in run.metrics.items():
            variants.setdefault(metric, {}).setdefault(info.fingerprint(ignore), info)
    ordered = sorted(variants, key=lambda m: (m in (RTF_KEY, BITRATE_KEY), _first_seen(runs, m)))
    columns: dict[str, Column] = {}
    notes: dict[str, str] = {}
    for metric in ordered:
        infos = variants[metric]
        if len(infos) == 1:
            (info,) = infos.values()
            columns[metric] = Column(metric, metric, info)
            continue
        note = _split_note(metric, list(infos.values()), ignore)
        notes[metric] = note
        for fp, info in infos.items():
            columns[f"{metric}~{fp}"] = Column(f"{metric}~{fp}", metric, info, note)
    run_columns = {}
    for run in runs:
        run_columns[id(run)] = {
            metric: (metric if metric in columns else f"{metric}~{info.fingerprint(ignore)}")
            for metric, info in run.metrics.items()}
    return columns, run_columns, notes


def sample_for(run: Run, metric: str, ids: list[str]) -> Sample | None:
    """The run's data for ``metric`` on ``ids`` (all scored), or None if ratio stats are missing."""
    info = run.metrics[metric]
    index = run.index
    rows = np.fromiter((index[i] for i in ids), dtype=np.int64, count=len(ids))
    values = run.values[metric][rows]
    if info.aggregation == "ratio" and info.ratio:
        num_name, den_name, scale = info.ratio
        num = run.stats[metric][num_name][rows]
        den = run.stats[metric][den_name][rows]
        if not (np.isfinite(num).all() and np.isfinite(den).all()):
            return None
        return Sample(values, num, den, float(scale))
    return Sample(values)


def draw_sample(run: Run, metric: str, ids: list[str], draw_index: int) -> Sample | None:
    """One draw's data for ``metric`` on those of ``ids`` that this draw scored (None: none / no stats)."""
    info = run.metrics[metric]
    index = run.index
    rows = np.fromiter((index[i] for i in ids), dtype=np.int64, count=len(ids))
    values = run.draw_values[metric][rows, draw_index]
    keep = np.isfinite(values)
    if not keep.any():
        return None
    if info.aggregation == "ratio" and info.ratio:
        num_name, den_name, scale = info.ratio
        num = run.draw_stats[metric][num_name][rows, draw_index][keep]
        den = run.draw_stats[metric][den_name][rows, draw_index][keep]
        if not (np.isfinite(num).all() and np.isfinite(den).all()):
            return None
        return Sample(values[keep], num, den, float(scale))
    return Sample(values[keep])


def draw_spread(run: Run, metric: str, ids: list[str]) -> DrawSpread | None:
    """Spread across draws of the corpus value on ``ids`` (None for a run with one draw)."""
    if run.n_draws < 2 or not ids:
        return None
    values = []
    for j in range(run.n_draws):
        sample = draw_sample(run, metric, ids, j)
        value = sample.statistic() if sample is not None else None
        values.append(float(value) if value is not None and math.isfinite(value) else None)
    kept = [v for v in values if v is not None]
    if not kept:
        return DrawSpread(tuple(values), None, None, None, None)
    mean = sum(kept) / len(kept)
    std = math.sqrt(sum((v - mean) ** 2 for v in kept) / (len(kept) - 1)) if len(kept) > 1 else None
    return DrawSpread(tuple(values), mean, std, min(kept), max(kept))


def _in_units(info: MetricInfo, values: np.ndarray, stats: dict[str, np.ndarray]) -> np.ndarray:
    if info.aggregation == "ratio" and info.ratio:
        num_name, den_name, scale = info.ratio
        num, den = stats[num_name], stats[den_name]
        with np.errstate(divide="ignore", invalid="ignore"):
            out = np.where(den > 0, num / den * float(scale), np.nan)
        return np.where(np.isfinite(values), out, np.nan)
    return values


def per_utterance(run: Run, metric: str) -> np.ndarray:
    """Per-utterance values in the aggregate's units (ratio metrics: num / den x scale), NaN = none.

    With several draws: the item's value (mean over its scored draws; ratio: summed stats)."""
    return _in_units(run.metrics[metric], run.values[metric], run.stats[metric])


def per_draw(run: Run, metric: str) -> np.ndarray:
    """(items, draws) values in the aggregate's units, NaN where that draw has no value."""
    return _in_units(run.metrics[metric], run.draw_values[metric], run.draw_stats[metric])


# --- tables --------------------------------------------------------------------------------

def _build_table(suite, dataset, runs, columns, run_columns, split_notes, options) -> Table:
    names = _row_names(runs)
    used = [key for key in columns if any(key in run_columns[id(r)].values() for r in runs)]
    table_columns = [columns[k] for k in used]
    rows = [Row(run, names[id(run)], {}) for run in runs]
    notes: list[str] = []
    n_common: dict[str, int] = {}
    common_ids: dict[str, list[str]] = {}
    for column in table_columns:
        common_ids[column.key] = _fill_column(column, rows, run_columns, options, notes)
        n_common[column.key] = len(common_ids[column.key])
    notes = _merge_common_notes(notes)
    for metric, note in split_notes.items():
        if any(c.metric == metric for c in table_columns):
            notes.append(note)
    for row in rows:
        for note in row.run.notes:
            notes.append(f"{row.name}: {note}")
    hashes = {(r.run_json.get("dataset") or {}).get("items_sha256") for r in runs} - {None}
    if len(hashes) > 1:
        notes.append("runs were made on different versions of this dataset (items_sha256 differ); "
                     "utterances are paired by id")
    draws = {r.n_draws for r in runs}
    if len(draws) > 1 or (draws and max(draws) > 1):
        notes.append("draws: " + ", ".join(f"{row.name} {row.run.n_draws}" for row in rows)
                     + " per utterance; each utterance counts once, with the mean over its draws "
                     "(ratio metrics: statistics summed over draws); ± is the standard deviation of "
                     "the per-draw corpus values")
    notes.extend(_jobs_notes(table_columns, rows))
    table = Table(suite, dataset, table_columns, rows, notes, n_common, common_ids=common_ids)
    table.pooled = [PooledUsage(row, key, usage) for row in rows for key, usage in row.run.pooled().items()]
    table.ablations = _ablations(table, run_columns, options)
    from .category import build_categories  # category builds on this module

    table.categories = build_categories(table, options)
    if table.categories is not None:
        table.notes.extend(table.categories.notes)
    return table


def _fill_column(column: Column, rows: list[Row], run_columns, options, notes) -> list[str]:
    key, direction = column.key, column.direction
    members = [row for row in rows if run_columns[id(row.run)].get(column.metric) == key]
    for row in rows:
        if row not in members:
            if column.metric in row.run.metrics:
                why = f"scored with different settings: see the other '{column.metric}' column"
            else:
                why = "not recorded in this run" if column.info.source == "system" else "not scored in this run"
            row.cells[key] = Cell("absent", note=why)
    scored = {id(row): row.run.scored_ids(column.metric) for row in members}
    contributing = [row for row in members if scored[id(row)]]
    common = sorted(set.intersection(*(scored[id(r)] for r in contributing))) if contributing else []
    universe = set().union(*scored.values()) if scored else set()
    samples: dict[int, Sample] = {}
    for row in members:
        run = row.run
        n_scored = run.n_scored(column.metric)
        cell = Cell("ok", n_scored=n_scored, n_failed=run.n_failed(column.metric), n_common=len(common),
                    failure_reasons=run.failure_reasons(column.metric),
                    n_not_applicable=run.n_not_applicable(column.metric),
                    not_applicable_reasons=run.not_applicable_reasons(column.metric))
        row.cells[key] = cell
        if not n_scored and cell.n_not_applicable and not cell.n_failed:
            cell.status = "not_applicable"
            top = next(iter(cell.not_applicable_reasons))
            cell.note = f"not applicable ({top})"
            continue
        if not n_scored:
            cell.status = "all_failed"
            top = next(iter(cell.failure_reasons), "no utterances recorded")
            cell.note = f"no utterance scored ({top})"
            continue
        own = sample_for(run, column.metric, sorted(scored[id(row)]))
        cell.all_value = own.statistic() if own is not None else None
        if not common:
            cell.status, cell.note = "no_common", "no utterance scored by every system in this table"
            continue
        sample = sample_for(run, column.metric, common)
        if sample is None:
            cell.status = "no_stats"
            cell.note = f"ratio statistics {column.info.ratio[:2]} missing; no corpus aggregate"
            continue
        estimate = bootstrap(sample, n_resamples=options.n_resamples, level=options.level, seed=options.seed)
        if not math.isfinite(estimate.value):
            cell.status, cell.note = "no_stats", "aggregate undefined (denominator sums to zero)"
            continue
        samples[id(row)] = sample
        cell.estimate = estimate
        cell.draws = draw_spread(run, column.metric, common)
    _mark_best(column, rows, samples, options)
    notes.extend(_runaway_notes(column, members, common))
    if common and len(common) < len(universe):
        missing = {row.name: len(universe - scored[id(row)]) for row in contributing
                   if len(universe - scored[id(row)])}
        who = ", ".join(f"{name} ({n})" for name, n in sorted(missing.items(), key=lambda kv: -kv[1]))
        notes.append(_CommonNote(column.title, f"compared on {len(common)} of {len(universe)} "
                                 f"utterances common to all systems; not scored by {who}"))
    left_out = [row.name for row in members if not scored[id(row)] and row.cells[key].status != "not_applicable"]
    if left_out:
        notes.append(f"{column.title}: no value for {', '.join(left_out)} (every utterance failed)")
    not_applicable = [row.name for row in members if row.cells[key].status == "not_applicable"]
    if not_applicable:
        notes.append(f"{column.title}: not applicable to {', '.join(not_applicable)}")
    absent = [row.name for row in rows if row not in members and column.metric not in row.run.metrics]
    if absent and members:
        verb = "not recorded" if column.info.source == "system" else "not scored"
        notes.append(f"{column.title}: {verb} in {', '.join(absent)}")
    if direction is None and column.info.source == "metric":
        notes.append(f"{column.title}: no direction declared in run.json; no best highlighted")
    return common


def _runaway_notes(column: Column, members: list[Row], common: list[str]) -> list[str]:
    """For an ASR column: which runs' transcripts ran away (flagged by the metric) on the common
    utterances, and the corpus value without them (the table's value keeps them: they are real
    transcripts of the audio, but one can outweigh dozens of utterances)."""
    notes = []
    for row in members:
        flags = row.run.stats.get(column.metric, {}).get(RUNAWAY_STAT)
        if flags is None or not common or row.cells[column.key].estimate is None:
            continue
        is_flagged = {i: flags[row.run.index[i]] > 0 for i in common}
        flagged = [i for i in common if is_flagged[i]]
        if not flagged:
            continue
        kept = sample_for(row.run, column.metric, [i for i in common if not is_flagged[i]])
        without = kept.statistic() if kept is not None else None  # an empty sample gives NaN
        value = "no utterance left" if without is None or not math.isfinite(without) else _plain(without, column)
        notes.append(f"{column.title}: the ASR ran away on {len(flagged)} utterance(s) of {row.name} (flagged "
                     f"by the metric: {', '.join(flagged[:3])}{' ...' if len(flagged) > 3 else ''}); "
                     f"without them {value}")
    return notes


def _plain(value: float, column: Column) -> str:
    """A value for a note: fractions and percentages as "12.3 %", others with 4 significant digits."""
    unit = column.info.unit
    if unit in ("fraction", "%"):
        return f"{value * (100.0 if unit == 'fraction' else 1.0):.1f} %"
    return f"{value:.4g}{(' ' + unit) if unit else ''}"


def _mark_best(column: Column, rows: list[Row], samples: dict[int, Sample], options) -> None:
    """Best and tied among the non-reference rows (a reference is the input itself: not a contender)."""
    mark_best([(row.cells[column.key], samples[id(row)]) for row in rows
               if id(row) in samples and not row.run.reference], column.direction, options)


def _jobs_notes(columns: list[Column], rows: list[Row]) -> list[str]:
    """A note per timed column whose runs used different ``jobs`` (or one that used several)."""
    notes = []
    for column in columns:
        if not column.timed:
            continue
        used = [row for row in rows if (cell := row.cells.get(column.key)) is not None and cell.estimate is not None]
        by_jobs: dict = {}
        for row in used:
            by_jobs.setdefault(row.run.jobs, []).append(row.name)
        if len(by_jobs) > 1:
            detail = "; ".join(f"jobs {'?' if j is None else j}: {', '.join(names)}" for j, names in
                               sorted(by_jobs.items(), key=lambda kv: (kv[0] is None, kv[0] or 0)))
            notes.append(f"{column.title}: runs used different numbers of worker processes ({detail}); parallel "
                         "workers share the CPU and inflate timings, so compare speed only at equal jobs")
        elif any(j is not None and j > 1 for j in by_jobs):
            notes.append(f"{column.title}: timed with jobs {next(iter(by_jobs))} (worker processes sharing the CPU); "
                         "run with jobs: 1 for speed figures")
    return notes


def mark_best(entries: list[tuple[Cell, Sample]], direction: str | None, options) -> None:
    """Flag the best cell(s) by ``direction``; cells whose paired CI vs the best contains 0 are tied.

    ``entries``: (cell with an estimate, its sample on the same utterances as every other entry).
    """
    if direction is None or not entries:
        return
    sign = 1.0 if direction == "higher" else -1.0
    best_value = max(sign * cell.value for cell, _ in entries)
    best = [i for i, (cell, _) in enumerate(entries) if sign * cell.value == best_value]
    reference = entries[best[0]][1]
    for i, (cell, sample) in enumerate(entries):
        if i in best:
            cell.best = True
            continue
        delta = paired_delta(reference, sample, n_resamples=options.n_resamples,
                             level=options.level, seed=options.seed)
        cell.delta_to_best = delta
        cell.tied = delta.low is not None and not delta.excludes_zero


# --- ablations -----------------------------------------------------------------------------

def axis_names(runs: list[Run], declared: tuple[str, ...] = ()) -> list[str]:
    names = []
    for run in runs:
        for name in run.axes:
            if name not in names:
                names.append(name)
    return names + [n for n in declared if n not in names]


def level_of(run: Run, axis: str):
    if axis in run.axes:
        return run.axes[axis]
    if axis in run.params:
        return run.params[axis]
    return ((run.run_json.get("system") or {}).get("params") or {}).get(axis)


def _ablations(table: Table, run_columns, options) -> list[Ablation]:
    runs = [row.run for row in table.rows]
    out = []
    for axis in axis_names(runs, options.axes):
        for system, fixed, members in _axis_groups(runs, axis):
            levels = _sorted_levels({_hashable(level_of(r, axis)) for r in members})
            by_level = {_hashable(level_of(r, axis)): r for r in members}
            ordered = [by_level[level] for level in levels]
            comparisons = [_compare_pair(a, b, level_of(a, axis), level_of(b, axis), table, run_columns, options)
                           for a, b in zip(ordered, ordered[1:])]
            out.append(Ablation(axis, system, fixed, [level_of(r, axis) for r in ordered], ordered, comparisons))
    return out


def _axis_groups(runs: list[Run], axis: str):
    """Runs of one system that differ only in ``axis``; duplicates at a level split by suite/source."""
    groups: dict[tuple, list[Run]] = {}
    for run in runs:
        if level_of(run, axis) is None:
            continue
        fixed = {k: v for k, v in run.params.items() if k != axis}
        key = (run.system, json.dumps(fixed, sort_keys=True, default=str))
        groups.setdefault(key, []).append(run)
    for (system, fixed_json), members in sorted(groups.items(),
                                                key=lambda kv: (kv[0][0], _param_sort_key(json.loads(kv[0][1])))):
        levels = [_hashable(level_of(r, axis)) for r in members]
        if len(set(levels)) != len(levels):
            sub: dict[tuple, list[Run]] = {}
            for run in members:
                sub.setdefault((run.suite, run.source), []).append(run)
            parts = [m for m in sub.values() if len({_hashable(level_of(r, axis)) for r in m}) == len(m)]
        else:
            parts = [members]
        for part in parts:
            if len(part) >= 2:
                yield system, json.loads(fixed_json), part


def _compare_pair(a: Run, b: Run, level_a, level_b, table: Table, run_columns, options) -> Comparison:
    deltas = {}
    for column in table.columns:
        col_a = run_columns[id(a)].get(column.metric)
        col_b = run_columns[id(b)].get(column.metric)
        if col_a != column.key and col_b != column.key:
            continue
        if col_a != col_b:
            deltas[column.key] = PairDelta(None, None, None, "not compared",
                                           "absent or scored with different settings in one run")
            continue
        deltas[column.key] = paired_runs_delta(a, b, column.metric, column.direction, options)
    return Comparison(level_a, level_b, a, b, deltas)


def paired_runs_delta(a: Run, b: Run, metric: str, direction: str | None, options) -> PairDelta:
    """b − a on the utterances both scored for ``metric``, with a paired bootstrap CI."""
    common = sorted(a.scored_ids(metric) & b.scored_ids(metric))
    if not common:
        return PairDelta(None, None, None, "not compared", "no utterance scored by both runs")
    sa, sb = sample_for(a, metric, common), sample_for(b, metric, common)
    if sa is None or sb is None:
        return PairDelta(None, None, None, "not compared", "ratio statistics missing")
    delta = paired_delta(sa, sb, n_resamples=options.n_resamples, level=options.level, seed=options.seed)
    return PairDelta(delta, sa.statistic(), sb.statistic(), verdict(delta, direction))


# --- helpers -------------------------------------------------------------------------------

@dataclass(frozen=True)
class _CommonNote:
    column: str
    text: str


def _merge_common_notes(notes: list) -> list[str]:
    """One line per distinct common-set note, naming every column it applies to."""
    merged: dict[str, list[str]] = {}
    for note in notes:
        if isinstance(note, _CommonNote):
            merged.setdefault(note.text, []).append(note.column)
    out, emitted = [], set()
    for note in notes:
        if isinstance(note, _CommonNote):
            if note.text not in emitted:
                emitted.add(note.text)
                out.append(f"{', '.join(merged[note.text])}: {note.text}")
        else:
            out.append(note)
    return out


def _first_seen(runs: list[Run], metric: str) -> tuple[int, int]:
    for i, run in enumerate(runs):
        if metric in run.metrics:
            return (i, list(run.metrics).index(metric))
    return (len(runs), 0)


def _split_note(metric: str, infos: list[MetricInfo], ignore) -> str:
    dicts = [info.comparable(ignore) for info in infos]
    flat = [_flatten(d) for d in dicts]
    differing = sorted({k for f in flat for k in f if len({json.dumps(g.get(k), default=str) for g in flat}) > 1})
    shown = []
    for k in differing[:4]:
        values = " vs ".join(_short(g.get(k)) for g in flat)
        shown.append(f"{k}: {values}")
    return (f"{metric}: runs declare different settings ({'; '.join(shown)}); shown as "
            f"{len(infos)} separate columns, never compared with each other")


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _short(value) -> str:
    text = json.dumps(value, default=str) if not isinstance(value, str) else value
    return text if len(text) <= 40 else text[:37] + "…"


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _hashable(value):
    return json.dumps(value, sort_keys=True, default=str) if isinstance(value, (dict, list)) else value


def _sorted_levels(levels: set) -> list:
    if all(_is_number(v) for v in levels):
        return sorted(levels)
    return sorted(levels, key=str)


def _param_sort_key(params: dict) -> tuple:
    return tuple((k, (0, v, "") if _is_number(v) else (1, 0, str(v))) for k, v in sorted(params.items()))


def _run_order(run: Run):
    return (not run.reference, run.system, _param_sort_key(run.params), run.suite, run.label, run.source)


def _row_names(runs: list[Run]) -> dict[int, str]:
    names = {id(r): r.name for r in runs}
    labels: dict[str, int] = {}
    for run in runs:
        labels[run.name] = labels.get(run.name, 0) + 1
    for run in runs:  # merged suites: the same label from two suites
        if labels[run.name] > 1:
            names[id(run)] = f"{run.suite}/{run.name}"
    return names

"""Per-category breakdown of a table (records with ``category``, e.g. hard TTS sets).

For every column of the table and every category: each system's aggregate on the column's
common utterances (the ones every system in the table scored, as in the leaderboard) that belong
to the category, by the metric's own aggregation (``mean`` of per-utterance values, ``ratio`` =
Σ num / Σ den × scale), with its bootstrap CI and ``n``. The best system per category follows the
metric's declared direction; ≈ marks a system whose paired CI against the best contains zero.
With draws, an utterance counts once with its per-item collapse (see ``load``).

An utterance's category is taken from the first run in the table that recorded it; utterances
without one form the group ``(none)``, shown only when some utterances do have a category.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from .stats import Sample, bootstrap
from .table import Cell, Column, Table, draw_spread, mark_best, sample_for

NO_CATEGORY = "(none)"


@dataclass
class CategoryColumn:
    """One table column broken down by category: ``cells[(row index, category)]``."""

    column: Column
    n: dict[str, int]  # category -> common utterances of the column in that category
    cells: dict[tuple[int, str], Cell] = field(default_factory=dict)


@dataclass
class CategoryBreakdown:
    categories: list[str]  # in first-seen order
    sizes: dict[str, int]  # category -> utterances recorded in the table (any system)
    columns: list[CategoryColumn]
    notes: list[str] = field(default_factory=list)


def item_categories(table: Table) -> tuple[dict[str, str], list[str]]:
    """{utterance id: category} over every run of the table, and notes on conflicting labels."""
    out: dict[str, str] = {}
    conflicts: set[str] = set()
    labelled = False
    for row in table.rows:
        for item_id, record in zip(row.run.ids, row.run.records):
            category = record.get("category")
            labelled = labelled or category is not None
            name = NO_CATEGORY if category in (None, "") else str(category)
            if item_id in out and out[item_id] != name:
                conflicts.add(item_id)
            out.setdefault(item_id, name)
    if not labelled:
        return {}, []
    notes = []
    if conflicts:
        shown = ", ".join(sorted(conflicts)[:5]) + (" …" if len(conflicts) > 5 else "")
        notes.append(f"by category: {len(conflicts)} utterance(s) carry different categories in different "
                     f"runs ({shown}); the first run's category is used")
    return out, notes


def build_categories(table: Table, options) -> CategoryBreakdown | None:
    """The breakdown of ``table``, or None when no record carries a category."""
    category_of, notes = item_categories(table)
    if not category_of:
        return None
    categories = list(dict.fromkeys(category_of.values()))
    sizes = {c: sum(1 for v in category_of.values() if v == c) for c in categories}
    out = CategoryBreakdown(categories, sizes, [], notes)
    for column in table.columns:
        common = table.common_ids.get(column.key) or []
        if not common:
            continue
        by_category: dict[str, list[str]] = {c: [] for c in categories}
        for item_id in common:
            by_category[category_of.get(item_id, NO_CATEGORY)].append(item_id)
        entry = CategoryColumn(column, {c: len(ids) for c, ids in by_category.items()})
        for category, ids in by_category.items():
            scored: list[tuple[Cell, Sample]] = []
            for j, row in enumerate(table.rows):
                cell, sample = _cell(row.cells.get(column.key), row.run, column, ids, options)
                entry.cells[(j, category)] = cell
                if sample is not None and not row.run.reference:  # a reference is never best
                    scored.append((cell, sample))
            mark_best(scored, column.direction, options)
        out.columns.append(entry)
    return out


def _cell(parent: Cell | None, run, column: Column, ids: list[str], options) -> tuple[Cell, Sample | None]:
    """One system x category: the aggregate on ``ids`` (the category's common utterances), and
    the sample behind it (for the paired comparison with the best)."""
    if parent is None or parent.status != "ok":
        status = parent.status if parent is not None else "absent"
        return Cell(status, note=parent.note if parent is not None else "not in this table"), None
    if not ids:
        return Cell("no_common", note="no utterance of this category scored by every system"), None
    sample = sample_for(run, column.metric, ids)
    if sample is None:
        return Cell("no_stats", note=f"ratio statistics {column.info.ratio[:2]} missing; no corpus aggregate"), None
    estimate = bootstrap(sample, n_resamples=options.n_resamples, level=options.level, seed=options.seed)
    if not math.isfinite(estimate.value):
        return Cell("no_stats", note="aggregate undefined (denominator sums to zero)"), None
    cell = Cell("ok", estimate=estimate, n_scored=len(ids), n_common=len(ids),
                draws=draw_spread(run, column.metric, ids))
    return cell, sample

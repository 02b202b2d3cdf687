"""Plots of one table, as base64 PNGs for embedding (matplotlib, Agg backend).

Every point is a table cell (aggregate on the common utterances, 95 % bootstrap CI as error
bars), so plots and leaderboard show the same numbers.
"""

from __future__ import annotations

import base64
import io
import math
from dataclasses import dataclass

import numpy as np

from ..errors import require
from .load import BITRATE_KEY, RTF_KEY
from .table import Column, Table, per_utterance

_COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22"]


@dataclass(frozen=True)
class Figure:
    title: str
    caption: str
    png_base64: str


def _plt():
    matplotlib = require("matplotlib", "report", "report plots")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.size": 9, "axes.titlesize": 10, "axes.spines.top": False,
                         "axes.spines.right": False, "figure.dpi": 100})
    return plt


def _encode(fig) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def quality_columns(table: Table) -> list[Column]:
    return [c for c in table.columns if c.info.source == "metric" and c.direction]


def _axis_label(column: Column) -> str:
    arrow = {"higher": "↑", "lower": "↓"}.get(column.direction, "")
    return f"{column.title}{f' ({column.unit})' if column.unit else ''} {arrow}".strip()


def _grid(plt, n: int, width: float = 3.4, height: float = 2.7):
    cols = min(n, 3)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows + 0.5), squeeze=False,
                             layout="constrained")
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, list(axes.flat[:n])


def _errorbar(ax, xs, cells, color, label, xerr=None, line: bool = True):
    ys = [c.value for c in cells]
    lo = [c.value - c.estimate.low if c.estimate.low is not None else 0.0 for c in cells]
    hi = [c.estimate.high - c.value if c.estimate.high is not None else 0.0 for c in cells]
    ax.errorbar(xs, ys, yerr=[lo, hi], xerr=xerr, marker="o", ms=4, capsize=3, lw=1.4 if line else 0,
                elinewidth=1.2, color=color, label=label)


def _plain_log_ticks(ax, values: list[float], base: float = 10) -> None:
    """Log x axis labelled with the plotted values themselves (no 2x10^0 style labels)."""
    from matplotlib.ticker import FixedLocator, NullFormatter, NullLocator

    ax.set_xscale("log", base=base)
    ticks: list[float] = []
    for v in sorted(set(values)):  # drop a tick too close to the previous one to be readable
        if not ticks or v / ticks[-1] >= 1.3:
            ticks.append(v)
    if len(ticks) > 8:
        ticks = ticks[:: math.ceil(len(ticks) / 8)]
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.set_xticklabels([f"{v:g}" for v in ticks])
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_minor_formatter(NullFormatter())


def axis_curves(table: Table) -> list[Figure]:
    """Quality vs each numeric ablation axis (codebooks...), one line per group.

    An axis whose levels are the runs' nominal bitrates is left to :func:`bitrate_curves`.
    """
    plt = None
    out = []
    by_axis: dict[str, list] = {}
    for ablation in table.ablations:
        if ablation.numeric and len(ablation.levels) >= 2:
            by_axis.setdefault(ablation.axis, []).append(ablation)
    rows_by_run = {id(r.run): r for r in table.rows}
    for axis, ablations in by_axis.items():
        pairs = [(lvl, run) for a in ablations for lvl, run in zip(a.levels, a.runs)]
        if all(_nominal_kbps(run) is not None and abs(_nominal_kbps(run) * 1000 - lvl) < 1e-6
               for lvl, run in pairs):
            continue
        columns = [c for c in quality_columns(table)
                   if any(_has_value(rows_by_run[id(run)], c) for _, run in pairs)]
        if not columns:
            continue
        plt = plt or _plt()
        fig, axes = _grid(plt, len(columns))
        for ax, column in zip(axes, columns):
            for i, ablation in enumerate(ablations):
                points = [(lvl, rows_by_run[id(run)].cells.get(column.key))
                          for lvl, run in zip(ablation.levels, ablation.runs)]
                points = [(x, c) for x, c in points if c is not None and c.estimate is not None]
                if points:
                    fixed = ", ".join(f"{k}={v}" for k, v in sorted(ablation.fixed.items()))
                    _errorbar(ax, [p[0] for p in points], [p[1] for p in points], _COLORS[i % len(_COLORS)],
                              f"{ablation.system}{f' ({fixed})' if fixed else ''}")
            levels = [lvl for lvl, _ in pairs]
            if min(levels) > 0 and max(levels) / min(levels) >= 4:
                _plain_log_ticks(ax, levels, base=2)
            ax.set_xlabel(axis)
            ax.set_ylabel(_axis_label(column))
            ax.grid(alpha=0.3)
        _legend(fig, axes)
        out.append(Figure(f"Quality vs {axis}", f"Aggregate on the common utterances with 95 % bootstrap "
                          f"CI, per {axis} level.", _encode(fig)))
    return out


def _log_decades(ax) -> None:
    """Log x axis with labelled decades only (cheap to lay out, readable)."""
    from matplotlib.ticker import LogLocator, NullLocator

    ax.set_xscale("log")
    ax.xaxis.set_major_locator(LogLocator(base=10, numticks=6))
    ax.xaxis.set_minor_locator(NullLocator())


def _has_value(row, column: Column) -> bool:
    cell = row.cells.get(column.key)
    return cell is not None and cell.estimate is not None


def _legend(fig, axes, ncol: int = 3) -> None:
    """One legend under the grid, each label once."""
    unique: dict = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            unique.setdefault(label, handle)
    if unique:
        fig.legend(list(unique.values()), list(unique), loc="outside lower center",
                   ncol=min(len(unique), ncol), frameon=False)


def _nominal_kbps(run) -> float | None:
    nominal = (run.run_json.get("system") or {}).get("nominal_bitrate")
    if isinstance(nominal, (int, float)) and not isinstance(nominal, bool) and nominal > 0:
        return float(nominal) / 1000.0
    return None


def _bitrate(row) -> float | None:
    nominal = _nominal_kbps(row.run)
    if nominal is not None:
        return nominal
    cell = row.cells.get(BITRATE_KEY)
    return cell.value if cell is not None and cell.value is not None else None


def _bitrate_lines(points: list[tuple]) -> dict[str, list[tuple]]:
    """Group runs into curves: per system, split by every parameter that does not set the bitrate.

    A parameter sets the bitrate when two runs differing only in it have different bitrates
    (e.g. codebooks); one that never does (e.g. decoder type) separates curves.
    """
    lines: dict[str, list[tuple]] = {}
    systems = sorted({row.run.system for row, _ in points})
    for system in systems:
        mine = [(row, b) for row, b in points if row.run.system == system]
        names = sorted({k for row, _ in mine for k in row.run.params})
        drivers = set()
        for name in names:
            for (r1, b1) in mine:
                for (r2, b2) in mine:
                    others1 = {k: v for k, v in r1.run.params.items() if k != name}
                    others2 = {k: v for k, v in r2.run.params.items() if k != name}
                    if others1 == others2 and r1.run.params.get(name) != r2.run.params.get(name) and b1 != b2:
                        drivers.add(name)
        varying = {k for k in names if len({repr(row.run.params.get(k)) for row, _ in mine}) > 1}
        for row, b in mine:
            split = {k: v for k, v in sorted(row.run.params.items()) if k in varying and k not in drivers}
            label = system + (f" ({', '.join(f'{k}={v}' for k, v in split.items())})" if split else "")
            lines.setdefault(label, []).append((row, b))
    return lines


def bitrate_curves(table: Table) -> list[Figure]:
    """Quality vs bitrate (kbit/s, nominal else measured), one line per system configuration."""
    points = [(row, _bitrate(row)) for row in table.rows]
    points = [(row, b) for row, b in points if b is not None and b > 0]
    columns = [c for c in quality_columns(table) if any(_has_value(row, c) for row, _ in points)]
    if len(points) < 2 or not columns:
        return []
    plt = _plt()
    lines = _bitrate_lines(points)
    fig, axes = _grid(plt, len(columns))
    for ax, column in zip(axes, columns):
        for i, (label, members) in enumerate(lines.items()):
            mine = sorted(((b, row.cells.get(column.key)) for row, b in members), key=lambda p: p[0])
            mine = [(b, c) for b, c in mine if c is not None and c.estimate is not None]
            if mine:
                _errorbar(ax, [b for b, _ in mine], [c for _, c in mine], _COLORS[i % len(_COLORS)], label)
        _plain_log_ticks(ax, [b for _, b in points])
        ax.set_xlabel("bitrate (kbit/s, log)")
        ax.set_ylabel(_axis_label(column))
        ax.grid(alpha=0.3)
    _legend(fig, axes)
    return [Figure("Quality vs bitrate", "Nominal bitrate from run.json (measured when absent), "
                   "aggregate on the common utterances with 95 % bootstrap CI.", _encode(fig))]


def pareto_front(points: list[tuple[float, float]], direction: str) -> list[int]:
    """Indices of points not dominated in (lower cost x, better quality y), sorted by x."""
    sign = 1.0 if direction == "higher" else -1.0
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -sign * points[i][1]))
    front, best = [], -math.inf
    for i in order:
        if sign * points[i][1] > best:
            front.append(i)
            best = sign * points[i][1]
    return front


def rtf_pareto(table: Table) -> list[Figure]:
    """Quality vs RTF with the Pareto front (faster and better), one point per run."""
    if not any(c.key.startswith(RTF_KEY) for c in table.columns):
        return []
    rtf_column = next(c for c in table.columns if c.key.startswith(RTF_KEY))
    columns = quality_columns(table)
    rows = [r for r in table.rows if r.cells.get(rtf_column.key) and r.cells[rtf_column.key].estimate]
    if len(rows) < 2 or not columns:
        return []
    plt = _plt()
    systems = sorted({r.run.system for r in rows})
    fig, axes = _grid(plt, len(columns), width=3.6)
    for ax, column in zip(axes, columns):
        pts, names = [], []
        for k, system in enumerate(systems):
            mine = [(row.cells[rtf_column.key], row.cells[column.key]) for row in rows
                    if row.run.system == system and _has_value(row, column)]
            if not mine:
                continue
            xerr = [[r.value - (r.estimate.low if r.estimate.low is not None else r.value) for r, _ in mine],
                    [(r.estimate.high if r.estimate.high is not None else r.value) - r.value for r, _ in mine]]
            _errorbar(ax, [r.value for r, _ in mine], [c for _, c in mine], _COLORS[k % len(_COLORS)], system,
                      xerr=xerr, line=False)
        for row in rows:  # a reference (passthrough) does nothing: plotted, but not part of the front
            if _has_value(row, column) and not row.run.reference:
                pts.append((row.cells[rtf_column.key].value, row.cells[column.key].value))
                names.append(row.name)
        if pts:
            front = pareto_front(pts, column.direction)
            ax.step([pts[i][0] for i in front], [pts[i][1] for i in front], where="post", color="#444",
                    lw=1, ls="--", label="Pareto front")
            for i in front:
                ax.annotate(names[i], pts[i], fontsize=6, xytext=(3, 3), textcoords="offset points")
        xs = [p[0] for p in pts]
        log = bool(xs) and min(xs) > 0 and max(xs) / min(xs) >= 10
        if log:
            _log_decades(ax)
        ax.set_xlabel(f"RTF (× real time{', log' if log else ''}) ↓")
        ax.set_ylabel(_axis_label(column))
        ax.grid(alpha=0.3)
    _legend(fig, axes, ncol=4)
    note = ("RTF columns differ by machine; the first is plotted" if
            sum(c.key.startswith(RTF_KEY) for c in table.columns) > 1 else "")
    reference = " Reference rows (passthrough) are plotted but not part of the front." if any(
        r.run.reference for r in rows) else ""
    return [Figure("Quality vs RTF (Pareto front)", "Runs on the dashed front are not beaten on both "
                   f"speed and quality by any other run.{reference} {note}".strip(), _encode(fig))]


def distributions(table: Table) -> list[Figure]:
    """Per-utterance values on the common utterances: one panel per metric, one box per run."""
    panels = []
    for column in quality_columns(table):
        data, names = [], []
        common = _common_ids(table, column)
        for row in table.rows:
            if not _has_value(row, column):
                continue
            index = row.run.index
            values = per_utterance(row.run, column.metric)[[index[i] for i in common]]
            data.append(values[np.isfinite(values)])
            names.append(row.name)
        if data:
            panels.append((column, data, names, len(common)))
    if not panels:
        return []
    plt = _plt()
    cols = min(2, len(panels))
    rows = math.ceil(len(panels) / cols)
    height = 0.6 + 0.26 * max(len(p[1]) for p in panels)
    fig, axes = plt.subplots(rows, cols, figsize=(6.2 * cols, height * rows), squeeze=False, layout="constrained")
    for ax in axes.flat[len(panels):]:
        ax.set_visible(False)
    for ax, (column, data, names, n_common) in zip(axes.flat, panels):
        ax.boxplot(data[::-1], orientation="horizontal", widths=0.6, showmeans=True, flierprops={"ms": 3},
                   meanprops={"marker": "D", "ms": 4, "markerfacecolor": "white", "markeredgecolor": "k"})
        ax.set_yticks(range(1, len(names) + 1), names[::-1], fontsize=7)
        ratio = " per utterance" if column.info.aggregation == "ratio" else ""
        ax.set_xlabel(f"{_axis_label(column)}{ratio} — {n_common} common utt.")
        ax.grid(alpha=0.3, axis="x")
    return [Figure("Per-utterance distributions", "Values on the common utterances of each metric; box = "
                   "quartiles, orange line = median, diamond = mean.", _encode(fig))]


def _common_ids(table: Table, column: Column) -> list[str]:
    sets = [row.run.scored_ids(column.metric) for row in table.rows
            if row.cells.get(column.key) is not None and row.cells[column.key].estimate is not None]
    return sorted(set.intersection(*sets)) if sets else []


def table_figures(table: Table) -> list[Figure]:
    """Every plot that applies to ``table``."""
    return axis_curves(table) + bitrate_curves(table) + rtf_pareto(table) + distributions(table)


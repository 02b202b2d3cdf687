"""CSV renderings of the table model.

``leaderboard.csv``: one row per run (suite x dataset x system x parameter point), with
``reference`` (1 for a reference row such as passthrough: never best), ``jobs`` and ``device``
(what timed columns depend on) and, for runs whose summary.json pools codebook usage,
``pooled.<metric>.{perplexity,dead_fraction,entropy_bitrate,bitrate,n_utterances}``. Per column
``K``: ``K`` (aggregate on the table's common utterances), ``K.ci_low``, ``K.ci_high``,
``K.n_common``, ``K.n_scored``, ``K.n_failed``, ``K.n_not_applicable`` (utterances the metric
does not apply to: not failures; status ``not_applicable`` when it applies to none), ``K.all``
(aggregate over all the run's scored utterances), ``K.best`` (1 best, 0 not, empty without a
value), ``K.status`` and ``K.note`` (why there is no number), and for runs with several draws
per item ``K.draws_std``, ``K.draws_min``, ``K.draws_max`` and ``K.draws`` (JSON list: the corpus
value of each draw on the same common utterances). Missing numbers are empty cells, never 0.
Floats are written with Python's shortest round-trip repr, so ``pandas.read_csv`` gives back the
same doubles.
``columns.csv`` describes each column (unit, direction, aggregation, settings); ``ablations.csv``
holds the paired deltas; ``by_category.csv`` (when records carry ``category``) one row per
table x column x category x run.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

from .table import Report

# CSV name -> key of summary.json's pooled codebook usage (metrics/codebook.py)
POOLED_FIELDS = {"perplexity": "mean_perplexity", "dead_fraction": "mean_dead_fraction",
                 "entropy_bitrate": "entropy_bitrate", "bitrate": "bitrate", "n_utterances": "n_utterances"}
CELL_FIELDS = ("ci_low", "ci_high", "n_common", "n_scored", "n_failed", "n_not_applicable", "all", "best",
               "status", "note", "draws_std", "draws_min", "draws_max", "draws")


def _num(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    value = float(value)
    return repr(value) if math.isfinite(value) else ""


def _param_names(report: Report) -> list[str]:
    names: list[str] = []
    for run in report.runs:
        for name in run.params:
            if name not in names:
                names.append(name)
    return names


def leaderboard_rows(report: Report) -> tuple[list[str], list[dict]]:
    """Header and rows of the leaderboard CSV (also used by tests)."""
    params = _param_names(report)
    header = ["suite", "dataset", "run", "label", "system", "reference", "params", *[f"param.{p}" for p in params],
              "n_items", "n_done", "n_draws", "n_system_errors", "jobs", "device", "notes", "source", "path"]
    for column in report.columns:
        header += [column.key, *[f"{column.key}.{f}" for f in CELL_FIELDS]]
    pooled_metrics = list(dict.fromkeys(key for run in report.runs for key in run.pooled()))
    header += [f"pooled.{key}.{f}" for key in pooled_metrics for f in POOLED_FIELDS]
    rows = []
    for table in report.tables:
        for row in table.rows:
            run = row.run
            out = {"suite": table.suite if table.suite != "(all suites)" else run.suite,
                   "dataset": table.dataset, "run": row.name, "label": run.label, "system": run.system,
                   "params": json.dumps(run.params, sort_keys=True),
                   "n_items": _num(run.n_items), "n_done": _num(len(run.ids)), "n_draws": _num(run.n_draws),
                   "n_system_errors": _num(run.n_system_errors), "notes": "; ".join(run.notes),
                   "source": run.source, "path": str(run.path), "reference": _num(run.reference),
                   "jobs": _num(run.jobs), "device": run.device or ""}
            for key, usage in run.pooled().items():
                for name, field in POOLED_FIELDS.items():
                    value = usage.get(field)
                    out[f"pooled.{key}.{name}"] = _num(value) if isinstance(value, (int, float)) else ""
            for p in params:
                value = run.params.get(p)
                out[f"param.{p}"] = "" if value is None else (
                    _num(value) if isinstance(value, (int, float)) else json.dumps(value) if
                    isinstance(value, (dict, list)) else str(value))
            for column in report.columns:
                cell = row.cells.get(column.key)
                k = column.key
                if cell is None:
                    out[f"{k}.status"] = "absent"
                    out[f"{k}.note"] = "not in this table"
                    continue
                est = cell.estimate
                out[k] = _num(est.value if est else None)
                out[f"{k}.ci_low"] = _num(est.low if est else None)
                out[f"{k}.ci_high"] = _num(est.high if est else None)
                out[f"{k}.n_common"] = _num(cell.n_common) if cell.status != "absent" else ""
                out[f"{k}.n_scored"] = _num(cell.n_scored) if cell.status != "absent" else ""
                out[f"{k}.n_failed"] = _num(cell.n_failed) if cell.status != "absent" else ""
                out[f"{k}.n_not_applicable"] = _num(cell.n_not_applicable) if cell.status != "absent" else ""
                out[f"{k}.all"] = _num(cell.all_value)
                out[f"{k}.best"] = _num(cell.best) if est is not None and column.direction else ""
                out[f"{k}.status"] = cell.status
                out[f"{k}.note"] = cell.note or ""
                if cell.draws is not None:
                    out[f"{k}.draws_std"] = _num(cell.draws.std)
                    out[f"{k}.draws_min"] = _num(cell.draws.min)
                    out[f"{k}.draws_max"] = _num(cell.draws.max)
                    out[f"{k}.draws"] = json.dumps(list(cell.draws.values))
            rows.append(out)
    return header, rows


def write_leaderboard(report: Report, path: Path) -> Path:
    header, rows = leaderboard_rows(report)
    _write(path, header, rows)
    return path


def write_columns(report: Report, path: Path) -> Path:
    header = ["column", "metric", "title", "unit", "direction", "aggregation", "ratio", "version",
              "sample_rate", "settings", "source", "note"]
    rows = [{"column": c.key, "metric": c.metric, "title": c.title, "unit": c.unit,
             "direction": c.direction or "", "aggregation": c.info.aggregation,
             "ratio": json.dumps(list(c.info.ratio)) if c.info.ratio else "",
             "version": c.info.version or "", "sample_rate": _num(c.info.sample_rate),
             "settings": json.dumps(c.info.settings, sort_keys=True, default=str),
             "source": c.info.source, "note": c.note or ""} for c in report.columns]
    _write(path, header, rows)
    return path


def write_ablations(report: Report, path: Path) -> Path:
    header = ["suite", "dataset", "system", "axis", "fixed", "level_a", "level_b", "run_a", "run_b",
              "column", "baseline", "candidate", "delta", "ci_low", "ci_high", "n", "verdict", "note"]
    rows = []
    for table in report.tables:
        for ablation in table.ablations:
            for comp in ablation.comparisons:
                for key, d in comp.deltas.items():
                    est = d.estimate
                    rows.append({"suite": table.suite, "dataset": table.dataset, "system": ablation.system,
                                 "axis": ablation.axis, "fixed": json.dumps(ablation.fixed, sort_keys=True),
                                 "level_a": json.dumps(comp.level_a), "level_b": json.dumps(comp.level_b),
                                 "run_a": comp.run_a.label, "run_b": comp.run_b.label, "column": key,
                                 "baseline": _num(d.baseline), "candidate": _num(d.candidate),
                                 "delta": _num(est.value if est else None),
                                 "ci_low": _num(est.low if est else None),
                                 "ci_high": _num(est.high if est else None),
                                 "n": _num(est.n if est else None), "verdict": d.verdict, "note": d.note or ""})
    _write(path, header, rows)
    return path


def by_category_rows(report: Report) -> tuple[list[str], list[dict]]:
    """Header and rows of by_category.csv: table x column x category x run (empty without categories)."""
    header = ["suite", "dataset", "column", "metric", "unit", "direction", "aggregation", "category",
              "n", "run", "label", "system", "value", "ci_low", "ci_high", "best", "tied", "draws_std",
              "draws_min", "draws_max", "status", "note"]
    rows = []
    for table in report.tables:
        breakdown = table.categories
        if breakdown is None:
            continue
        for entry in breakdown.columns:
            column = entry.column
            for category in breakdown.categories:
                for j, row in enumerate(table.rows):
                    cell = entry.cells[(j, category)]
                    est = cell.estimate
                    spread = cell.draws
                    rows.append({
                        "suite": table.suite if table.suite != "(all suites)" else row.run.suite,
                        "dataset": table.dataset, "column": column.key, "metric": column.metric,
                        "unit": column.unit, "direction": column.direction or "",
                        "aggregation": column.info.aggregation, "category": category,
                        "n": _num(entry.n[category]), "run": row.name, "label": row.run.label,
                        "system": row.run.system, "value": _num(est.value if est else None),
                        "ci_low": _num(est.low if est else None), "ci_high": _num(est.high if est else None),
                        "best": _num(cell.best) if est is not None and column.direction else "",
                        "tied": _num(cell.tied) if est is not None and column.direction else "",
                        "draws_std": _num(spread.std if spread else None),
                        "draws_min": _num(spread.min if spread else None),
                        "draws_max": _num(spread.max if spread else None),
                        "status": cell.status, "note": cell.note or ""})
    return header, rows


def write_by_category(report: Report, path: Path) -> Path | None:
    """Write by_category.csv when some table has categories; otherwise write nothing (None)."""
    if not any(t.categories is not None for t in report.tables):
        return None
    header, rows = by_category_rows(report)
    _write(path, header, rows)
    return path


def _write(path: Path, header: list[str], rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=header, restval="", extrasaction="raise")
        writer.writeheader()
        writer.writerows(rows)
    tmp.replace(path)

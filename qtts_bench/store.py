"""Results store: one folder per run with run.json, items.jsonl and summary.json.

Format: docs/results-format.md. items.jsonl is append-only; a kill can leave a truncated last
line, which is dropped (and cut from the file) before the next append, so resume never loses a
complete record and never writes after a partial one.
"""

from __future__ import annotations

import json
import math
import os
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from . import RESULTS_SCHEMA_VERSION


def write_json_atomic(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n", encoding="utf-8")
    tmp.replace(path)


class RunStore:
    """Files of one run (dataset x system x grid point)."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.items_path = self.folder / "items.jsonl"
        self.run_path = self.folder / "run.json"
        self.summary_path = self.folder / "summary.json"
        self.audio_dir = self.folder / "audio"

    def read_records(self, repair: bool = False) -> list[dict]:
        """All complete records. With ``repair``, cut an unparsable trailing line from the file."""
        if not self.items_path.is_file():
            return []
        raw = self.items_path.read_bytes()
        records, good_end, pos = [], 0, 0
        for line in raw.splitlines(keepends=True):
            pos += len(line)
            if not line.endswith(b"\n"):
                break  # truncated tail
            try:
                records.append(json.loads(line))
                good_end = pos
            except json.JSONDecodeError:
                if pos == len(raw):
                    break
                raise ValueError(f"{self.items_path}: corrupt record in the middle of the file "
                                 f"(byte {pos - len(line)}); refusing to guess") from None
        if repair and good_end < len(raw):
            with open(self.items_path, "r+b") as fh:
                fh.truncate(good_end)
        return records

    def completed_ids(self) -> set[str]:
        return {r["id"] for r in self.read_records(repair=True)}

    def append(self, records: list[dict]) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.items_path, "a", encoding="utf-8") as fh:
            for record in records:
                fh.write(json.dumps(record, ensure_ascii=False, allow_nan=False) + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    def read_run(self) -> dict | None:
        if not self.run_path.is_file():
            return None
        return json.loads(self.run_path.read_text(encoding="utf-8"))

    def write_run(self, run: dict) -> None:
        write_json_atomic(self.run_path, run)

    def write_summary(self, summary: dict) -> None:
        write_json_atomic(self.summary_path, summary)


def summarize(records: list[dict], metrics_meta: dict, n_items: int, header: dict) -> dict:
    """Aggregate each metric per its declared aggregation; count scored / failed and reasons.

    ``metrics_meta``: key -> Metric.describe() dict. Only records of the current item set count.
    """
    summary = {"schema_version": RESULTS_SCHEMA_VERSION, **header, "n_items": n_items,
               "n_done": len(records),
               "n_system_errors": sum(1 for r in records if r.get("status") != "ok"),
               "metrics": {}}
    for key, meta in metrics_meta.items():
        values, reasons, num, den = [], Counter(), 0.0, 0.0
        for record in records:
            entry = record.get("metrics", {}).get(key) or {"value": None, "reason": "not computed"}
            if entry.get("value") is None:
                reasons[entry.get("reason", "unknown")] += 1
                continue
            values.append(float(entry["value"]))
            if meta.get("ratio"):
                numerator, denominator, _ = meta["ratio"]
                num += float(entry.get("stats", {}).get(numerator, 0.0))
                den += float(entry.get("stats", {}).get(denominator, 0.0))
        mean = sum(values) / len(values) if values else None
        std = (math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
               if len(values) > 1 else None)
        if meta.get("aggregation") == "ratio" and meta.get("ratio"):
            value = num / den * meta["ratio"][2] if den > 0 else None
        else:
            value = mean
        entry = {"aggregation": meta.get("aggregation", "mean"), "value": value, "mean": mean, "std": std,
                 "n_scored": len(values), "n_failed": sum(reasons.values()),
                 "failure_reasons": dict(reasons.most_common()),
                 "direction": meta.get("direction"), "unit": meta.get("unit")}
        if meta.get("percentiles"):
            entry.update(percentiles(values, meta["percentiles"]))
        if meta.get("pooled"):
            from .metrics.codebook import pooled_usage

            stats = [r["metrics"][key]["stats"] for r in records
                     if (r.get("metrics", {}).get(key) or {}).get("stats")]
            entry["pooled"] = pooled_usage(stats) if stats else None
        summary["metrics"][key] = entry
    return summary


PERCENTILE_METHOD = "linear"  # numpy's default (Hyndman & Fan type 7)


def percentiles(values: Iterable[float | None], qs: Iterable[float] = (50, 95)) -> dict[str, float | None]:
    """``{"p50": ..., "p95": ...}`` of the non-missing values (linear interpolation, numpy type 7).

    Missing (None / NaN) values are ignored; with no value left every percentile is None.

    >>> percentiles([1, 2, 3, 4], qs=(50, 75))
    {'p50': 2.5, 'p75': 3.25}
    """
    import numpy as np

    kept = [float(v) for v in values if v is not None and not math.isnan(float(v))]
    qs = list(qs)
    if not kept:
        return {f"p{q:g}": None for q in qs}
    result = np.percentile(np.asarray(kept, dtype=np.float64), qs, method=PERCENTILE_METHOD)
    return {f"p{q:g}": float(v) for q, v in zip(qs, result)}

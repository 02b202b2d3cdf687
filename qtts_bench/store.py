"""Results store: one folder per run with run.json, items.jsonl and summary.json.

Format: docs/results-format.md. items.jsonl is append-only; a kill can leave a truncated last
line, which is dropped (and cut from the file) before the next append, so resume never loses a
complete record and never writes after a partial one.
"""

from __future__ import annotations

import json
import math
import os
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

    def completed_keys(self) -> set[tuple[str, int]]:
        """(id, draw) of every complete record (draw 0 when a run makes one draw per item)."""
        return {record_key(r) for r in self.read_records(repair=True)}

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


def record_key(record: dict) -> tuple[str, int]:
    """A record's identity: its item id and its draw (several draws per item with ``samples: N``)."""
    return record["id"], int(record.get("draw") or 0)


def summarize(records: list[dict], metrics: dict, n_items: int, header: dict) -> dict:
    """summary.json: counts, and each metric's corpus block from its own ``aggregate`` hook.

    ``metrics``: key -> Metric (anything with ``aggregate(entries) -> dict``). Only the records
    of the current item set should be passed.
    """
    summary = {"schema_version": RESULTS_SCHEMA_VERSION, **header, "n_items": n_items,
               "n_done": len(records),
               "n_system_errors": sum(1 for r in records if r.get("status") != "ok"),
               "metrics": {}}
    draws = sorted({record_key(r)[1] for r in records})
    for key, metric in metrics.items():
        def entries(of):
            return [r.get("metrics", {}).get(key) or {"value": None, "reason": "not computed"} for r in of]

        block = metric.aggregate(entries(records))
        if len(draws) > 1:
            per_draw = [metric.aggregate(entries([r for r in records if record_key(r)[1] == d]))["value"]
                        for d in draws]
            block["draws"] = _spread(per_draw)
        summary["metrics"][key] = block
    return summary


def _spread(values: list[float | None]) -> dict:
    """The spread of one metric's corpus value across draws (several samples per item)."""
    kept = [v for v in values if v is not None]
    mean = sum(kept) / len(kept) if kept else None
    std = (math.sqrt(sum((v - mean) ** 2 for v in kept) / (len(kept) - 1)) if len(kept) > 1 else None)
    return {"values": values, "mean": mean, "std": std,
            "min": min(kept) if kept else None, "max": max(kept) if kept else None}

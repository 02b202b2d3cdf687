"""Results store: one folder per run with run.json, items.jsonl and summary.json.

Format: docs/results-format.md. items.jsonl is appended to; a kill can leave a truncated last
line, which is dropped (and cut from the file) before the next append, so resume never loses a
complete record and never writes after a partial one. Filling in a metric added to the suite
replaces the file atomically (:meth:`RunStore.rewrite`). Records are read deduplicated by
:func:`record_key` (the first complete one wins). A run holds ``run.lock`` in its folder
(:class:`RunLock`) so a second run into the same folder stops at once, naming the first.
"""

from __future__ import annotations

import json
import math
import os
import socket
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from . import RESULTS_SCHEMA_VERSION
from .errors import RunLockedError, StoreError


def unwritable(path: Path, exc: Exception) -> StoreError:
    """The error for a results path that cannot be created or written (``exc``: the OSError,
    or libsndfile's error for an audio file)."""
    why = str(getattr(exc, "strerror", None) or exc)
    where = getattr(exc, "filename", None)
    if where and Path(where) != Path(path):
        why += f" ({where})"
    existing = next((p for p in (Path(path), *Path(path).parents) if p.exists()), None)
    if existing is not None and not existing.is_dir():
        why += f"; {existing} is a file, not a folder"
    return StoreError(f"cannot write results to {path}: {why}; "
                      "use --out with a folder you can write to, or fix its permissions / free space")


def write_json_atomic(path: Path, obj) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n", encoding="utf-8")
        tmp.replace(path)
    except OSError as exc:
        raise unwritable(path, exc) from exc


class RunStore:
    """Files of one run (dataset x system x grid point)."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.items_path = self.folder / "items.jsonl"
        self.run_path = self.folder / "run.json"
        self.summary_path = self.folder / "summary.json"
        self.audio_dir = self.folder / "audio"
        self.lock_path = self.folder / "run.lock"
        self.n_duplicates_dropped = 0  # set by every read_records()
        self._lock: RunLock | None = None

    def read_records(self, repair: bool = False) -> list[dict]:
        """All complete records, one per :func:`record_key` (the first in the file wins; the
        number dropped is left in ``n_duplicates_dropped``). With ``repair``, cut an unparsable
        trailing line from the file. A bad line before the end raises StoreError naming it."""
        self.n_duplicates_dropped = 0
        if not self.items_path.is_file():
            return []
        try:
            raw = self.items_path.read_bytes()
        except OSError as exc:
            raise StoreError(f"cannot read {self.items_path}: {exc.strerror or exc}") from exc
        records, seen, good_end, pos = [], set(), 0, 0
        for number, line in enumerate(raw.splitlines(keepends=True), start=1):
            pos += len(line)
            if not line.endswith(b"\n"):
                break  # truncated tail
            try:
                record = json.loads(line)
                key = record_key(record)
            except (ValueError, KeyError, TypeError, AttributeError):  # JSON, UTF-8, not a record
                if pos == len(raw):
                    break
                raise StoreError(
                    f"{self.items_path}: corrupt record at line {number} (byte {pos - len(line)}); the file was "
                    "changed outside qtts-bench: remove that line (its utterance is then recomputed) or delete "
                    f"the folder {self.folder} to recompute the whole run") from None
            good_end = pos
            if key in seen:
                self.n_duplicates_dropped += 1
                continue
            seen.add(key)
            records.append(record)
        if repair and good_end < len(raw):
            try:
                with open(self.items_path, "r+b") as fh:
                    fh.truncate(good_end)
            except OSError as exc:
                raise unwritable(self.items_path, exc) from exc
        return records

    def completed_keys(self) -> set[tuple[str, int]]:
        """(id, draw) of every complete record (draw 0 when a run makes one draw per item)."""
        return {record_key(r) for r in self.read_records(repair=True)}

    def append(self, records: list[dict]) -> None:
        lines = "".join(json.dumps(record, ensure_ascii=False, allow_nan=False) + "\n" for record in records)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            with open(self.items_path, "a", encoding="utf-8") as fh:
                fh.write(lines)
                fh.flush()
                os.fsync(fh.fileno())
        except OSError as exc:
            raise unwritable(self.items_path, exc) from exc

    def rewrite(self, change) -> int:
        """Replace items.jsonl by its records passed through ``change(record) -> record``.

        Atomic: the new content goes to ``items.jsonl.tmp`` (fsynced), which then replaces the
        file, so a kill or a full disk leaves either the old file or the new one, never a mix.
        Duplicate lines are dropped (the first record of a key is kept, as on reading). Call it
        holding the run's lock. -> the number of records written.
        """
        records = [change(record) for record in self.read_records(repair=True)]
        tmp = self.items_path.with_name(self.items_path.name + ".tmp")
        try:
            with open(tmp, "w", encoding="utf-8") as fh:
                for record in records:
                    fh.write(json.dumps(record, ensure_ascii=False, allow_nan=False) + "\n")
                fh.flush()
                os.fsync(fh.fileno())
            tmp.replace(self.items_path)
        except OSError as exc:
            try:
                tmp.unlink()
            except OSError:
                pass
            raise unwritable(self.items_path, exc) from exc
        return len(records)

    def read_run(self) -> dict | None:
        if not self.run_path.is_file():
            return None
        try:
            return json.loads(self.run_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise StoreError(f"{self.run_path}: unreadable ({exc}); the file was changed outside qtts-bench: "
                             f"delete the folder {self.folder} to recompute the run") from None

    def write_run(self, run: dict) -> None:
        write_json_atomic(self.run_path, run)

    def write_summary(self, summary: dict) -> None:
        write_json_atomic(self.summary_path, summary)

    @contextmanager
    def locked(self, command: list[str] | str):
        """Hold this folder's lock while the block runs (see :class:`RunLock`)."""
        lock = RunLock(self.folder, command)
        lock.acquire()
        self._lock = lock
        try:
            yield lock
        finally:
            self._lock = None
            lock.release()

    def forget_lock(self) -> None:
        """In a forked worker: close the inherited lock descriptor without unlocking (the parent
        keeps holding it; a worker that outlived its parent must not keep the folder locked)."""
        if self._lock is not None:
            self._lock.forget()


class RunLock:
    """Exclusive ``fcntl.flock`` on ``<run folder>/run.lock``, held for a run's whole duration.

    A second run into the same folder fails at once (RunLockedError) naming the holder: the
    lock file holds its pid, host, command and start time as JSON. The kernel drops the lock
    when the holder exits, however it dies, so a stale file never blocks. The file stays (it is
    unlinked never: removing a flock file races with a waiting opener); its content describes
    the last holder. Where ``fcntl`` does not exist (Windows) runs are not locked.
    """

    def __init__(self, folder: Path, command: list[str] | str):
        self.folder = Path(folder)
        self.path = self.folder / "run.lock"
        self.command = command if isinstance(command, str) else " ".join(map(str, command))
        self.fd: int | None = None

    def acquire(self) -> None:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX
            return
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
        except OSError as exc:
            raise unwritable(self.folder, exc) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = _read_holder(fd)
            os.close(fd)
            raise RunLockedError(
                f"{self.folder} is in use by another qtts-bench run ({holder}); two runs into one folder "
                "would compute every utterance twice. Wait for it to finish (a re-run then resumes), "
                "or use --out for another folder") from None
        holder = {"pid": os.getpid(), "host": socket.gethostname(), "command": self.command,
                  "started": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, (json.dumps(holder) + "\n").encode(), 0)
            os.fsync(fd)
        except OSError as exc:
            os.close(fd)
            raise unwritable(self.path, exc) from exc
        self.fd = fd

    def release(self) -> None:
        if self.fd is not None:
            import fcntl

            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None

    def forget(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing a duplicate does not unlock; LOCK_UN here would
            self.fd = None


def _read_holder(fd: int) -> str:
    """'pid P on HOST, started T: COMMAND' from a held lock file (briefly retried: the holder
    writes it just after locking)."""
    import time

    for _ in range(20):
        try:
            info = json.loads(os.pread(fd, 65536, 0).decode("utf-8"))
            return (f"pid {info['pid']} on {info['host']}, started {info['started']}: "
                    f"{info['command']}")
        except (OSError, ValueError, KeyError, TypeError):
            time.sleep(0.05)
    return "holder unknown: its lock file gives no details"


def record_key(record: dict) -> tuple[str, int]:
    """A record's identity: its item id and its draw (several draws per item with ``samples: N``)."""
    return record["id"], int(record.get("draw") or 0)


def summarize(records: list[dict], metrics: dict, n_items: int, header: dict,
              n_duplicates_dropped: int = 0) -> dict:
    """summary.json: counts, and each metric's corpus block from its own ``aggregate`` hook.

    ``metrics``: key -> Metric (anything with ``aggregate(entries) -> dict``). Only the records
    of the current item set should be passed, one per :func:`record_key`;
    ``n_duplicates_dropped``: the repeated lines :meth:`RunStore.read_records` left out.
    """
    summary = {"schema_version": RESULTS_SCHEMA_VERSION, **header, "n_items": n_items,
               "n_done": len(records), "n_duplicates_dropped": n_duplicates_dropped,
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

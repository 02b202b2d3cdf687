"""On-disk cache for expensive per-audio results (ASR transcripts, speaker embeddings, MOS).

Keyed by the audio content hash plus the model identity and every setting that changes the
result, so a re-run or a newly added metric reuses work, and a changed model never does.
Location: ``$QTTS_BENCH_CACHE`` or ``~/.cache/qtts-bench`` (never inside the package).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
from pathlib import Path

import numpy as np


def cache_root() -> Path:
    return Path(os.environ.get("QTTS_BENCH_CACHE", Path.home() / ".cache" / "qtts-bench"))


def audio_key(samples: np.ndarray, sample_rate: int) -> str:
    """sha256 of the float32 samples and the rate."""
    h = hashlib.sha256(np.ascontiguousarray(samples, dtype=np.float32).tobytes())
    h.update(str(int(sample_rate)).encode())
    return h.hexdigest()


class ResultCache:
    """JSON values (or numpy arrays) under ``<root>/<namespace>/<ab>/<key>.{json,npy}``.

    ``namespace`` identifies the model and settings, e.g. ``asr-faster-whisper-<sha12>``.
    Writes are atomic; a corrupt entry is treated as missing.
    """

    def __init__(self, namespace: str, settings: dict, root: Path | None = None, enabled: bool = True):
        digest = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]
        self.dir = (root or cache_root()) / f"{namespace}-{digest}"
        self.enabled = enabled

    def _path(self, key: str, suffix: str) -> Path:
        return self.dir / key[:2] / f"{key}{suffix}"

    def json_path(self, key: str) -> Path:
        """Where :meth:`put_json` writes ``key`` (for provenance and messages)."""
        return self._path(key, ".json")

    def get_json(self, key: str):
        if not self.enabled:
            return None
        path = self._path(key, ".json")
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def put_json(self, key: str, value) -> None:
        if self.enabled:
            self._atomic_write(self._path(key, ".json"), json.dumps(value).encode("utf-8"))

    def get_array(self, key: str) -> np.ndarray | None:
        if not self.enabled:
            return None
        try:
            return np.load(self._path(key, ".npy"), allow_pickle=False)
        except (OSError, ValueError):
            return None

    def put_array(self, key: str, value: np.ndarray) -> None:
        if self.enabled:
            import io

            buf = io.BytesIO()
            np.save(buf, np.asarray(value), allow_pickle=False)
            self._atomic_write(self._path(key, ".npy"), buf.getvalue())

    @staticmethod
    def _atomic_write(path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")  # one per writer
        try:
            tmp.write_bytes(data)
            tmp.replace(path)  # atomic: a reader sees the old file or the new one, never a part
        except OSError:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
            raise

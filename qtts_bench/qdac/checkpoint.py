"""QDAC checkpoints: ``model.safetensors`` (codec weights) + ``config.json`` (architecture, recipe).

A checkpoint is a folder. ``resolve_checkpoint`` accepts a folder path or the name of a shipped
checkpoint under ``qtts_bench/qdac/checkpoints/<name>/``. Loading checks that the weights match
the config exactly and names the file and the parameters that disagree.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import ConfigError
from .. import modelkit
from ..modelkit import CONFIG
from .config import QdacConfig

SHIPPED_DIR = Path(__file__).resolve().parent / "checkpoints"
FORMAT = "qdac"
FORMAT_VERSION = 1


def shipped_names() -> list[str]:
    """Names of the checkpoints shipped in the package."""
    return modelkit.shipped_names(SHIPPED_DIR)


def resolve_checkpoint(checkpoint: str | Path) -> Path:
    """A checkpoint folder path, or a shipped name -> the folder. Raises ConfigError when missing."""
    return modelkit.resolve_folder(checkpoint, SHIPPED_DIR, "QDAC checkpoint", "none")


def read_config(folder: Path) -> tuple[QdacConfig, dict]:
    """-> (model config, the whole config.json)."""
    file = folder / CONFIG
    try:
        meta = json.loads(file.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ConfigError(f"{file}: not valid JSON ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT or "model" not in meta:
        raise ConfigError(f"{file}: not a QDAC config (expected {{\"format\": \"qdac\", \"model\": {{...}}}})")
    if meta.get("format_version", 1) > FORMAT_VERSION:
        raise ConfigError(f"{file}: format_version {meta['format_version']} is newer than this "
                          f"qtts-bench understands ({FORMAT_VERSION})")
    return QdacConfig.from_dict(meta["model"], f"{file}: model"), meta


def save_checkpoint(model, folder: str | Path, extra: dict | None = None) -> Path:
    """Write the codec weights and config into ``folder`` (atomically per file). Returns the folder."""
    folder = Path(folder)
    n_parameters = modelkit.save_weights(model, folder, FORMAT)
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "model": model.cfg.to_dict(),
            "n_parameters": n_parameters, **(extra or {})}
    modelkit.write_text_atomic(folder / CONFIG, json.dumps(meta, indent=1, ensure_ascii=False) + "\n")
    return folder


def load_checkpoint(checkpoint: str | Path, device: str = "cpu"):
    """-> (Qdac model in eval mode on ``device``, info dict with path, sha256 and config.json)."""
    from .model import Qdac

    folder = resolve_checkpoint(checkpoint)
    cfg, meta = read_config(folder)
    model = Qdac(cfg)
    return model, modelkit.load_model(model, folder, "QDAC checkpoint", device, meta)

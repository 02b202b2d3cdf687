"""Plumbing shared by the model packages (qdac/, qtts/): checkpoint folders, weights, LR schedule.

A checkpoint is a folder with ``model.safetensors`` and ``config.json``; shipped ones live in the
package's ``checkpoints/`` and are named by their folder name.
"""

from __future__ import annotations

import math
from pathlib import Path

from .errors import ConfigError

WEIGHTS = "model.safetensors"
CONFIG = "config.json"


def shipped_names(shipped_dir: Path) -> list[str]:
    """Names of the checkpoints shipped in ``shipped_dir``."""
    if not shipped_dir.is_dir():
        return []
    return sorted(p.name for p in shipped_dir.iterdir() if (p / CONFIG).is_file())


def resolve_folder(checkpoint: str | Path, shipped_dir: Path, what: str, none_shipped: str = "none") -> Path:
    """A checkpoint folder path, or a shipped name -> the folder; ConfigError naming ``what``
    ("QDAC checkpoint") when it is missing or lacks its weights or config."""
    path = Path(str(checkpoint)).expanduser()
    if path.is_dir():
        folder = path
    elif (shipped_dir / str(checkpoint)).is_dir():
        folder = shipped_dir / str(checkpoint)
    else:
        names = ", ".join(shipped_names(shipped_dir)) or none_shipped
        raise ConfigError(f"{what} '{checkpoint}' not found: not a folder and not a shipped checkpoint "
                          f"(shipped: {names})")
    for name in (CONFIG, WEIGHTS):
        if not (folder / name).is_file():
            raise ConfigError(f"{what} {folder}: missing {name}")
    return folder


def lr_factor(step: int, steps: int, warmup: int, min_ratio: float) -> float:
    """Learning-rate multiplier: linear warm-up then cosine decay to ``min_ratio``."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, steps - warmup))
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def save_weights(model, folder: Path, fmt: str) -> int:
    """Write ``model``'s state as ``folder/model.safetensors`` (atomically); returns the number of
    parameters saved."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    tmp = folder / (WEIGHTS + ".tmp")
    save_file(tensors, str(tmp), metadata={"format": fmt})
    tmp.replace(folder / WEIGHTS)
    return int(sum(v.numel() for v in tensors.values()))


def write_text_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def load_model(model, folder: Path, what: str, device: str, meta: dict) -> dict:
    """Load ``folder``'s weights into ``model`` (built from its config), put it in eval mode on
    ``device``; returns the provenance {path, weights_sha256, config_sha256, config}."""
    from .hashing import sha256_file

    weights = folder / WEIGHTS
    load_state_into(model, weights, f"{what} {folder}")
    model.eval().to(device)
    return {"path": str(folder), "weights_sha256": sha256_file(weights),
            "config_sha256": sha256_file(folder / CONFIG), "config": meta}


def load_state_into(model, weights: Path, what: str, config_name: str = CONFIG) -> None:
    """Load ``weights`` (safetensors) into ``model``; ConfigError naming ``what`` when the file
    is unreadable or its tensors do not match the model (missing, unexpected, wrong shapes)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        state = load_file(str(weights), device="cpu")
    except (SafetensorError, OSError, ValueError) as exc:
        raise ConfigError(f"{weights}: cannot read safetensors file ({exc})") from None
    expected = model.state_dict()
    missing, unexpected = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    shapes = [f"{k}: file {tuple(state[k].shape)} vs config {tuple(expected[k].shape)}"
              for k in sorted(set(state) & set(expected)) if state[k].shape != expected[k].shape]
    if missing or unexpected or shapes:
        parts = [f"missing {len(missing)} tensor(s) e.g. {missing[:3]}"] if missing else []
        parts += [f"unexpected {len(unexpected)} tensor(s) e.g. {unexpected[:3]}"] if unexpected else []
        parts += [f"{len(shapes)} shape mismatch(es) e.g. {shapes[:3]}"] if shapes else []
        raise ConfigError(f"{what}: {weights.name} does not match {config_name}: " + "; ".join(parts))
    model.load_state_dict(state)

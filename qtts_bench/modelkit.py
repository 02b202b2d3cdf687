"""Loading safetensors weights into a model built from its config (QDAC and QTTS checkpoints)."""

from __future__ import annotations

from pathlib import Path

from .errors import ConfigError


def load_state_into(model, weights: Path, what: str, config_name: str = "config.json") -> None:
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

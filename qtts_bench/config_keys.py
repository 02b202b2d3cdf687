"""Strict keys for training config files (QDAC, QTTS): unknown keys fail with did-you-mean."""

from __future__ import annotations

from dataclasses import fields

from .errors import ConfigError, did_you_mean


def no_unknown_keys(data: dict, allowed, where: str) -> None:
    """ConfigError naming ``where`` for the first key of ``data`` not in ``allowed``."""
    for key in data:
        if key not in allowed:
            raise ConfigError(f"{where}: unknown key '{key}'{did_you_mean(key, allowed)}")


def dataclass_fields_of(cls, data: dict, source: str) -> dict:
    """``data`` checked to be a mapping whose keys are fields of dataclass ``cls`` (a copy)."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping")
    no_unknown_keys(data, [f.name for f in fields(cls)], source)
    return dict(data)

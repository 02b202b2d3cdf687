"""Tiny QDAC + QTTS checkpoints and configs for tests and smoke runs (seconds on a CPU; not models).

``tiny_qdac(folder)`` writes a random-initialised 4-codebook QDAC (codebook size 16);
``tiny_qtts(folder, codec, decoder)`` a random-initialised QTTS over it; ``tiny_run(...)`` a
training config dict on the ``synthetic`` dataset.
"""

from __future__ import annotations

from pathlib import Path

from .config import TINY_MODEL


def tiny_qdac(folder: str | Path, seed: int = 0, **changes) -> Path:
    import torch

    from ..qdac.checkpoint import save_checkpoint as save_qdac
    from ..qdac.config import TINY_MODEL as QDAC_TINY
    from ..qdac.config import QdacConfig
    from ..qdac.model import Qdac

    torch.manual_seed(seed)
    cfg = QdacConfig(**{**QDAC_TINY, **changes})
    return save_qdac(Qdac(cfg), folder, {"name": "tiny-qdac"})


def tiny_model_config(decoder: str = "multihead", **changes):
    from .config import QttsConfig

    raw = {**TINY_MODEL, "decoder": decoder, **changes}
    if decoder == "single":
        raw["n_codebooks"] = 1
    return QttsConfig(**raw)


def tiny_qtts(folder: str | Path, codec: str | Path, decoder: str = "multihead", seed: int = 0,
              card: dict | None = None, eos_bias: float | None = None, **changes) -> Path:
    """``eos_bias``: set codebook 1's end-of-speech bias (-1e4: never ends; 1e4: ends when allowed)."""
    import torch

    from .checkpoint import codec_record, save_checkpoint
    from .model import QttsModel
    from .tokenizer import CharTokenizer

    torch.manual_seed(seed)
    model = QttsModel(tiny_model_config(decoder, **changes))
    if eos_bias is not None:
        with torch.no_grad():
            model.decoder.heads.bias[0, model.cfg.codebook_size] = eos_bias
    return save_checkpoint(model, folder, tokenizer=CharTokenizer(), codec=codec_record(str(codec)),
                           extra={"name": f"tiny-{decoder}", "card": card or {"description": "random weights (test)",
                                                                              "synthetic": True}})


def tiny_run(codec: str | Path, data_folder: str | Path, decoder: str = "multihead", **train_changes) -> dict:
    model = {**TINY_MODEL, "decoder": decoder}
    if decoder == "single":
        model["n_codebooks"] = 1
    return {
        "name": f"tiny-{decoder}",
        "codec": str(codec),
        "model": model,
        "train": {"steps": 4, "max_tokens": 400, "max_batch": 4, "warmup_steps": 1, "checkpoint_every": 2,
                  "log_every": 1, "eval_every": 2, "heldout": 2, "min_seconds": 0.1, **train_changes},
        "data": [{"dataset": "synthetic", "params": {"n": 6, "seconds": 0.6, "folder": str(data_folder)}}],
        "card": {"description": "synthetic speech-like test signals", "synthetic": True},
    }

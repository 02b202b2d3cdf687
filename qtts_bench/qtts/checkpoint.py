"""QTTS checkpoints: ``model.safetensors`` + ``config.json`` + ``card.md`` in one folder.

``config.json``: ``{"format": "qtts", "format_version": 1, "model": QttsConfig, "tokenizer": {...},
"codec": {"checkpoint", "weights_sha256", "frame_rate", "codebook_size", "n_codebooks"},
"n_parameters", "name", "card": {...data description...}, "training": {...}}``.

The codes a QTTS model emits mean something only for the QDAC checkpoint it was trained on, so
loading with a QDAC checkpoint is refused (ConfigError naming both) when the frame rate or the
codebook size differ, when the codec has fewer codebooks than the model, or when the codec's
weights are not the ones recorded at training time. Importing this module does not import torch.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import ConfigError
from ..hashing import sha256_file
from .. import modelkit
from ..modelkit import CONFIG
from .config import QttsConfig
from .tokenizer import CharTokenizer

SHIPPED_DIR = Path(__file__).resolve().parent / "checkpoints"
CARD = "card.md"
FORMAT = "qtts"
FORMAT_VERSION = 1


def shipped_names() -> list[str]:
    """Names of the checkpoints shipped in the package."""
    return modelkit.shipped_names(SHIPPED_DIR)


def resolve_checkpoint(checkpoint: str | Path) -> Path:
    """A checkpoint folder path, or a shipped name -> the folder. Raises ConfigError when missing."""
    return modelkit.resolve_folder(checkpoint, SHIPPED_DIR, "QTTS checkpoint",
                                   "none yet; train one with `qtts-bench train qtts CONFIG`")


def read_config(folder: Path) -> tuple[QttsConfig, dict]:
    """-> (model config, the whole config.json). No torch."""
    file = Path(folder) / CONFIG
    try:
        meta = json.loads(file.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ConfigError(f"{file}: not valid JSON ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT or "model" not in meta:
        raise ConfigError(f"{file}: not a QTTS config (expected {{\"format\": \"qtts\", \"model\": {{...}}}})")
    if meta.get("format_version", 1) > FORMAT_VERSION:
        raise ConfigError(f"{file}: format_version {meta['format_version']} is newer than this qtts-bench "
                          f"understands ({FORMAT_VERSION})")
    for key in ("tokenizer", "codec"):
        if not isinstance(meta.get(key), dict):
            raise ConfigError(f"{file}: missing '{key}' section")
    cfg = QttsConfig.from_dict(meta["model"], f"{file}: model")
    tokenizer = CharTokenizer.from_dict(meta["tokenizer"], f"{file}: tokenizer")
    if tokenizer.vocab_size != cfg.text_vocab_size:
        raise ConfigError(f"{file}: tokenizer has {tokenizer.vocab_size} tokens, model.text_vocab_size is "
                          f"{cfg.text_vocab_size}")
    return cfg, meta


def check_codec(meta: dict, codec_cfg, codec_sha: str, codec_folder, where: str) -> None:
    """Refuse a QDAC checkpoint that does not produce the codes this QTTS model was trained on."""
    cfg = QttsConfig.from_dict(meta["model"], where)
    rec = meta["codec"]
    problems = []
    if cfg.frame_rate != codec_cfg.frame_rate:
        problems.append(f"frame rate: QTTS {cfg.frame_rate} Hz, QDAC {codec_cfg.frame_rate} Hz")
    if cfg.codebook_size != codec_cfg.codebook_size:
        problems.append(f"codebook size: QTTS {cfg.codebook_size}, QDAC {codec_cfg.codebook_size}")
    if cfg.n_codebooks > codec_cfg.n_codebooks:
        problems.append(f"codebooks: QTTS models {cfg.n_codebooks}, QDAC has {codec_cfg.n_codebooks}")
    if rec.get("n_codebooks") is not None and rec["n_codebooks"] != codec_cfg.n_codebooks:
        problems.append(f"codebooks: QTTS was trained on a {rec['n_codebooks']}-codebook QDAC, this one has "
                        f"{codec_cfg.n_codebooks}")
    if not problems and rec.get("weights_sha256") and rec["weights_sha256"] != codec_sha:
        problems.append(f"QDAC weights differ from the ones QTTS was trained on (sha256 {codec_sha[:12]}..., "
                        f"recorded {rec['weights_sha256'][:12]}..., trained with '{rec.get('checkpoint')}')")
    if problems:
        raise ConfigError(f"{where}: QTTS checkpoint does not match QDAC checkpoint {codec_folder}: "
                          + "; ".join(problems))


def codec_record(codec: str) -> dict:
    """What config.json records about the QDAC checkpoint (no torch)."""
    from ..modelkit import WEIGHTS as QDAC_WEIGHTS
    from ..qdac.checkpoint import read_config as read_qdac
    from ..qdac.checkpoint import resolve_checkpoint as resolve_qdac

    folder = resolve_qdac(codec)
    qcfg, _ = read_qdac(folder)
    return {"checkpoint": str(codec), "path": str(folder), "weights_sha256": sha256_file(folder / QDAC_WEIGHTS),
            "frame_rate": qcfg.frame_rate, "codebook_size": qcfg.codebook_size, "n_codebooks": qcfg.n_codebooks}


def card_markdown(meta: dict) -> str:
    card, model, codec = meta.get("card") or {}, meta["model"], meta["codec"]
    training = meta.get("training") or {}
    n_params = meta.get("n_parameters")
    n_params = f"{n_params:,}" if isinstance(n_params, int) else "?"
    lines = [f"# QTTS checkpoint `{meta.get('name', 'qtts')}`", "",
             f"- decoder: **{model['decoder']}**, {model['n_codebooks']} codebook(s) of {model['codebook_size']}, "
             f"{model['frame_rate']} Hz; {n_params} parameters",
             f"- codec: QDAC `{codec.get('checkpoint')}` (weights sha256 {str(codec.get('weights_sha256'))[:16]}...)",
             f"- training: step {training.get('step', '?')}, {training.get('train_seconds', '?')} s, "
             f"torch {training.get('torch', '?')}, {training.get('threads', '?')} thread(s)", ""]
    lines.append("## Data")
    if card.get("synthetic") is not None:
        lines.append(f"- synthetic speech: **{'yes' if card['synthetic'] else 'no'}**")
    for key, value in card.items():
        if key != "synthetic":
            lines.append(f"- {key}: {value}")
    data = training.get("data") or {}
    if data:
        lines.append(f"- items: {data.get('n_train', '?')} training, {data.get('n_heldout', '?')} held out; "
                     f"{data.get('train_seconds', '?')} s of training audio; skipped: {data.get('skipped', {})}")
        for source in data.get("datasets", []):
            lines.append(f"- dataset `{source.get('dataset')}` {source.get('params')}: {source.get('n_items')} items, "
                         f"items sha256 {str(source.get('items_sha256'))[:16]}...")
    return "\n".join(lines) + "\n"


def save_checkpoint(model, folder: str | Path, *, tokenizer: CharTokenizer, codec: dict,
                    extra: dict | None = None) -> Path:
    """Write weights, config.json and card.md into ``folder`` (each atomically). Returns the folder."""
    folder = Path(folder)
    n_parameters = modelkit.save_weights(model, folder, FORMAT)
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "model": model.cfg.to_dict(),
            "tokenizer": tokenizer.to_dict(), "codec": codec, "n_parameters": n_parameters, **(extra or {})}
    modelkit.write_text_atomic(folder / CONFIG, json.dumps(meta, indent=1, ensure_ascii=False) + "\n")
    modelkit.write_text_atomic(folder / CARD, card_markdown(meta))
    return folder


def load_checkpoint(checkpoint: str | Path, device: str = "cpu"):
    """-> (QttsModel in eval mode, CharTokenizer, info {path, weights_sha256, config_sha256, config})."""
    from .model import QttsModel

    folder = resolve_checkpoint(checkpoint)
    cfg, meta = read_config(folder)
    model = QttsModel(cfg)
    info = modelkit.load_model(model, folder, "QTTS checkpoint", device, meta)
    return model, CharTokenizer.from_dict(meta["tokenizer"]), info

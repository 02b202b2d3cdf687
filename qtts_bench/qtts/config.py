"""QTTS configuration: the model architecture (shipped in ``config.json``) and the training recipe.

Pure Python (no torch), so the registry, ``validate`` and config checks stay light.

Token layout (per codebook of ``codebook_size`` C entries): ids 0..C-1 are codes, ``C`` is the
delay-pattern padding token (input only; no head can emit it) and ``C + 1`` is end-of-speech
(emitted only on codebook 1; the other codebooks stop by the delay cascade). Input embeddings
have C + 2 rows; each output head has C + 1 logits, the end-of-speech logit masked for
codebooks 2..N.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from ..config_keys import dataclass_fields_of, no_unknown_keys
from ..errors import ConfigError, did_you_mean
from .tokenizer import DEFAULT_VOCAB_SIZE

DECODERS = ("hierarchical", "multihead", "single")


@dataclass(frozen=True)
class QttsConfig:
    """Architecture of one QTTS model; everything needed to rebuild it from ``config.json``."""

    decoder: str = "multihead"  # hierarchical | multihead | single
    n_codebooks: int = 4  # QDAC codebooks modelled (1 for single)
    codebook_size: int = 2048  # must equal the QDAC checkpoint's
    frame_rate: int = 50  # must equal the QDAC checkpoint's
    text_vocab_size: int = DEFAULT_VOCAB_SIZE
    # backbone: decoder-only transformer over [text ; BOS ; audio frames]
    d_model: int = 256
    n_layers: int = 6
    n_heads: int = 4
    ffn_dim: int = 1024
    dropout: float = 0.1
    # depth transformer (hierarchical only)
    depth_dim: int = 256
    depth_layers: int = 2
    depth_heads: int = 4
    depth_ffn_dim: int = 512
    # context: learned positions, separate tables for text and audio
    max_text_tokens: int = 320
    max_audio_frames: int = 1500  # including prompt frames (30 s at 50 Hz)
    # generation length limit from the text: frame_rate * (1 s + seconds_per_token * tokens)
    seconds_per_token: float = 0.2

    @property
    def pad_id(self) -> int:
        return self.codebook_size

    @property
    def eos_id(self) -> int:
        return self.codebook_size + 1

    @property
    def delay_steps(self) -> int:
        """Steps after the last frame's codebook-1 step that one utterance occupies (>= 1: the EOS)."""
        return max(self.n_codebooks - 1, 1) if self.decoder != "hierarchical" else 1

    @property
    def max_audio_positions(self) -> int:
        """Audio positions: BOS + frames + the delay tail."""
        return self.max_audio_frames + self.n_codebooks + 1

    def __post_init__(self):
        problems = []
        if self.decoder not in DECODERS:
            hint = did_you_mean(self.decoder, DECODERS)
            problems.append(f"decoder must be one of {', '.join(DECODERS)} (got {self.decoder!r}{hint})")
        if self.decoder == "single" and self.n_codebooks != 1:
            problems.append(f"decoder 'single' models codebook 1 only: n_codebooks must be 1 (got {self.n_codebooks})")
        if self.n_codebooks < 1:
            problems.append(f"n_codebooks must be >= 1 (got {self.n_codebooks})")
        if self.codebook_size < 2:
            problems.append(f"codebook_size must be >= 2 (got {self.codebook_size})")
        if self.frame_rate <= 0:
            problems.append(f"frame_rate must be > 0 (got {self.frame_rate})")
        for name, dim, heads in (("d_model", self.d_model, self.n_heads), ("depth_dim", self.depth_dim, self.depth_heads)):
            if dim < 1 or heads < 1 or dim % heads:
                problems.append(f"{name} ({dim}) must be a positive multiple of its heads ({heads})")
        for name in ("n_layers", "ffn_dim", "depth_layers", "depth_ffn_dim", "max_text_tokens", "max_audio_frames",
                     "text_vocab_size"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be >= 1 (got {getattr(self, name)})")
        if not 0.0 <= self.dropout < 1.0:
            problems.append(f"dropout must be in [0, 1) (got {self.dropout})")
        if self.seconds_per_token <= 0:
            problems.append(f"seconds_per_token must be > 0 (got {self.seconds_per_token})")
        if problems:
            raise ConfigError("invalid QTTS config: " + "; ".join(problems))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict, source: str = "config") -> "QttsConfig":
        return cls(**dataclass_fields_of(cls, data, source))

    def replace(self, **changes) -> "QttsConfig":
        return dataclasses.replace(self, **changes)


def count_parameters(cfg: QttsConfig) -> dict:
    """Analytic parameter count (tested against the torch model): {"backbone", "decoder", "total"}."""
    d, C, K = cfg.d_model, cfg.codebook_size, cfg.n_codebooks

    def block(dim, ffn):  # 2 LayerNorms, qkv + out projections, 2-layer MLP (all with biases)
        return 4 * dim + (3 * dim * dim + 3 * dim) + (dim * dim + dim) + (dim * ffn + ffn) + (ffn * dim + dim)

    backbone = (cfg.text_vocab_size * d + cfg.max_text_tokens * d + cfg.max_audio_positions * d + d
                + K * (C + 2) * d + cfg.n_layers * block(d, cfg.ffn_dim) + 2 * d)
    if cfg.decoder == "hierarchical":
        e = cfg.depth_dim
        decoder = (d * e + e + K * e + (K - 1) * C * e + cfg.depth_layers * block(e, cfg.depth_ffn_dim) + 2 * e
                   + K * (C + 1) * e + K * (C + 1))
    else:
        decoder = K * (C + 1) * d + K * (C + 1)
    return {"backbone": backbone, "decoder": decoder, "total": backbone + decoder}


@dataclass(frozen=True)
class TrainConfig:
    """The training recipe (``train:`` section of a ``configs/qtts/*.yaml``)."""

    steps: int = 2000
    max_tokens: int = 3000  # padded sequence positions per batch (batch x longest [text ; audio])
    max_batch: int = 32
    lr: float = 1e-3
    lr_min_ratio: float = 0.1  # cosine decay to lr * lr_min_ratio over ``steps``
    warmup_steps: int = 150
    betas: tuple = (0.9, 0.98)
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    min_seconds: float = 0.3
    max_seconds: float = 15.0  # longer utterances are skipped (counted in the card)
    heldout: int = 32  # utterances held out (chosen by hash of id) for the teacher-forced held-out loss
    eval_every: int = 100  # 0: only at the end
    eval_wrong_text: bool = True  # also score held-out audio against another item's text (alignment signal)
    log_every: int = 10
    checkpoint_every: int = 100
    threads: int = 1
    seed: int = 0

    def __post_init__(self):
        if isinstance(self.betas, list):
            object.__setattr__(self, "betas", tuple(self.betas))
        problems = []
        for name in ("steps", "max_tokens", "max_batch", "log_every", "checkpoint_every", "threads"):
            if getattr(self, name) < 1:
                problems.append(f"train.{name} must be >= 1 (got {getattr(self, name)})")
        if self.heldout < 0 or self.eval_every < 0 or self.warmup_steps < 0:
            problems.append("train.heldout, train.eval_every and train.warmup_steps must be >= 0")
        if self.lr <= 0 or not 0 <= self.lr_min_ratio <= 1:
            problems.append("train.lr must be > 0 and train.lr_min_ratio in [0, 1]")
        if len(self.betas) != 2:
            problems.append(f"train.betas must be two numbers (got {list(self.betas)})")
        if self.max_seconds <= self.min_seconds:
            problems.append("train.max_seconds must be > train.min_seconds")
        if problems:
            raise ConfigError("; ".join(problems))

    def to_dict(self) -> dict:
        data = dataclasses.asdict(self)
        data["betas"] = list(self.betas)
        return data

    @classmethod
    def from_dict(cls, data: dict, source: str = "train") -> "TrainConfig":
        return cls(**dataclass_fields_of(cls, data, source))


@dataclass(frozen=True)
class RunConfig:
    """A whole training config file."""

    model: QttsConfig
    train: TrainConfig
    codec: str = "qdac16-50hz-asr"  # QDAC checkpoint (shipped name or folder) whose codes are modelled
    data: list = field(default_factory=list)  # [{dataset: NAME, params: {...}}]
    exclude: list = field(default_factory=list)  # held out by id and audio hash (e.g. evaluation sets)
    card: dict = field(default_factory=dict)  # description of the data for the checkpoint's card
    name: str = "qtts"

    def to_dict(self) -> dict:
        return {"name": self.name, "model": self.model.to_dict(), "train": self.train.to_dict(), "codec": self.codec,
                "data": self.data, "exclude": self.exclude, "card": self.card}


def load_run_config(path: str) -> RunConfig:
    """Read a training YAML; every error names the file and the field."""
    from pathlib import Path

    import yaml

    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"training config not found: {file}")
    try:
        raw = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{file}: not valid YAML ({exc})") from None
    return run_config_from_dict(raw, str(file))


def codec_info(codec: str, source: str = "codec") -> dict:
    """Frame rate, codebook size and codebook count of a QDAC checkpoint (reads config.json only)."""
    from ..qdac.checkpoint import read_config, resolve_checkpoint

    try:
        folder = resolve_checkpoint(codec)
        cfg, _ = read_config(folder)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    return {"folder": str(folder), "frame_rate": cfg.frame_rate, "codebook_size": cfg.codebook_size,
            "n_codebooks": cfg.n_codebooks}


def check_against_codec(model: QttsConfig, info: dict, where: str) -> None:
    """ConfigError unless the model's frame rate, codebook size and count fit the QDAC checkpoint."""
    problems = []
    if model.frame_rate != info["frame_rate"]:
        problems.append(f"frame rate {model.frame_rate} Hz vs the codec's {info['frame_rate']} Hz")
    if model.codebook_size != info["codebook_size"]:
        problems.append(f"codebook size {model.codebook_size} vs the codec's {info['codebook_size']}")
    if model.n_codebooks > info["n_codebooks"]:
        problems.append(f"{model.n_codebooks} codebooks but the codec has only {info['n_codebooks']}")
    if problems:
        raise ConfigError(f"{where}: the QTTS model does not match the QDAC checkpoint {info['folder']}: "
                          + "; ".join(problems))


def run_config_from_dict(raw: dict, source: str) -> RunConfig:
    """Validate a training config. ``model.frame_rate`` / ``codebook_size`` default to the codec's."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level")
    no_unknown_keys(raw, ("name", "model", "train", "codec", "data", "exclude", "card"), source)
    data, exclude = raw.get("data") or [], raw.get("exclude") or []
    for key, specs in (("data", data), ("exclude", exclude)):
        if not isinstance(specs, list):
            raise ConfigError(f"{source}: '{key}' must be a list of {{dataset: NAME, params: {{...}}}}")
        for i, spec in enumerate(specs):
            where = f"{source}: {key}[{i}]"
            if not isinstance(spec, dict) or "dataset" not in spec:
                raise ConfigError(f"{where}: expected {{dataset: NAME, params: {{...}}}}")
            no_unknown_keys(spec, ("dataset", "params"), where)
    card = raw.get("card") or {}
    if not isinstance(card, dict):
        raise ConfigError(f"{source}: card: expected a mapping (description, synthetic, voice, licence, ...)")
    codec = raw.get("codec", "qdac16-50hz-asr")
    if not isinstance(codec, str) or not codec:
        raise ConfigError(f"{source}: codec: expected a QDAC checkpoint name or folder")
    info = codec_info(codec, f"{source}: codec")
    model_raw = dict(dataclass_fields_of(QttsConfig, raw.get("model") or {}, f"{source}: model"))
    model_raw.setdefault("frame_rate", info["frame_rate"])
    model_raw.setdefault("codebook_size", info["codebook_size"])
    model = QttsConfig.from_dict(model_raw, f"{source}: model")
    check_against_codec(model, info, f"{source}: model")
    return RunConfig(model=model, train=TrainConfig.from_dict(raw.get("train") or {}, f"{source}: train"),
                     codec=codec, data=data, exclude=exclude, card=card, name=str(raw.get("name") or "qtts"))


# A tiny model for tests and smoke runs (seconds on a CPU); pair it with a tiny QDAC (codebook_size 16).
TINY_MODEL = dict(n_codebooks=4, codebook_size=16, d_model=32, n_layers=2, n_heads=2, ffn_dim=64, dropout=0.0,
                  depth_dim=16, depth_layers=1, depth_heads=2, depth_ffn_dim=32, max_text_tokens=96,
                  max_audio_frames=200)

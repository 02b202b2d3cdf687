"""QDAC configuration: the model architecture (shipped in ``config.json``) and the training recipe.

Pure Python (no torch), so the registry, ``validate`` and config checks stay light.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from ..config_keys import dataclass_fields_of, no_unknown_keys
from ..errors import ConfigError

SAMPLE_RATE = 16000
FRAME_RATES = {50: 320, 25: 640}  # frame rate (Hz) -> hop in samples at 16 kHz


@dataclass(frozen=True)
class QdacConfig:
    """Architecture of one QDAC model. Everything needed to rebuild it from ``config.json``.

    Audio is mono 16 kHz. The latent runs at ``frame_rate`` Hz (hop 320 or 640 samples); the
    encoder/decoder work on an STFT grid of ``stft_hop`` samples (``n_fft`` window) and move
    between the two with a strided conv / transposed conv of factor ``hop // stft_hop``.
    """

    sample_rate: int = SAMPLE_RATE
    frame_rate: int = 50
    n_codebooks: int = 16
    codebook_size: int = 2048
    codebook_dim: int = 8  # factorised (low-dimensional, l2-normalised) code lookup, as in DAC
    latent_dim: int = 192
    # encoder: "stft" (compressed complex STFT -> ConvNeXt) or "waveform" (DAC-style Snake convs)
    encoder: str = "stft"
    encoder_dim: int = 192
    encoder_layers: int = 3
    encoder_strides: tuple = (2, 4, 5, 8)  # waveform encoder only; product must equal the hop
    encoder_channels: int = 16  # waveform encoder only: channels of the first block (doubles)
    # decoder: "istft" (ConvNeXt -> magnitude/phase -> inverse STFT, Vocos-style) or "waveform"
    decoder: str = "istft"
    decoder_dim: int = 256
    decoder_layers: int = 4
    decoder_channels: int = 256  # waveform decoder only: channels after the first conv (halves)
    # istft decoder's output: "polar" (log-magnitude + phase angle, Vocos) or "complex" (real and
    # imaginary parts of the power-compressed spectrum, |X|^0.3, decompressed before the iSTFT)
    decoder_output: str = "polar"
    n_fft: int = 640
    stft_hop: int = 160
    causal: bool = False  # convs see only the past; the iSTFT overlap adds n_fft - stft_hop lookahead
    # AR-ASR head on codebook 1 (trained with the model; not needed to encode/decode)
    asr_dim: int = 192
    asr_layers: int = 2
    asr_heads: int = 4
    asr_max_tokens: int = 256

    @property
    def hop(self) -> int:
        """Samples per latent frame."""
        return FRAME_RATES[self.frame_rate] * self.sample_rate // SAMPLE_RATE

    @property
    def bitrate(self) -> float:
        """Bits/s with all codebooks."""
        import math

        return self.frame_rate * self.n_codebooks * math.log2(self.codebook_size)

    def __post_init__(self):
        if isinstance(self.encoder_strides, list):
            object.__setattr__(self, "encoder_strides", tuple(self.encoder_strides))
        problems = []
        if self.sample_rate != SAMPLE_RATE:
            problems.append(f"sample_rate must be {SAMPLE_RATE} (got {self.sample_rate})")
        if self.frame_rate not in FRAME_RATES:
            problems.append(f"frame_rate must be one of {sorted(FRAME_RATES)} Hz (got {self.frame_rate})")
        if self.n_codebooks < 1:
            problems.append(f"n_codebooks must be >= 1 (got {self.n_codebooks})")
        if self.codebook_size < 2:
            problems.append(f"codebook_size must be >= 2 (got {self.codebook_size})")
        if self.encoder not in ("stft", "waveform"):
            problems.append(f"encoder must be 'stft' or 'waveform' (got {self.encoder!r})")
        if self.decoder_output not in ("polar", "complex"):
            problems.append(f"decoder_output must be 'polar' or 'complex' (got {self.decoder_output!r})")
        if self.decoder not in ("istft", "waveform"):
            problems.append(f"decoder must be 'istft' or 'waveform' (got {self.decoder!r})")
        if self.frame_rate in FRAME_RATES:
            if self.hop % self.stft_hop:
                problems.append(f"stft_hop {self.stft_hop} must divide the frame hop {self.hop}")
            if self.n_fft < self.stft_hop or self.n_fft % 2:
                problems.append(f"n_fft {self.n_fft} must be even and >= stft_hop {self.stft_hop}")
            if self.encoder == "waveform" and _prod(self.encoder_strides) != self.hop:
                problems.append(f"encoder_strides {list(self.encoder_strides)} multiply to "
                                f"{_prod(self.encoder_strides)}, not the hop {self.hop}")
            if self.decoder == "waveform" and _prod(self.encoder_strides) != self.hop:
                problems.append(f"encoder_strides (also the waveform decoder's upsampling) must "
                                f"multiply to the hop {self.hop}")
        if problems:
            raise ConfigError("invalid QDAC config: " + "; ".join(problems))

    def to_dict(self) -> dict:
        data = dataclasses.asdict(self)
        data["encoder_strides"] = list(self.encoder_strides)
        return data

    @classmethod
    def from_dict(cls, data: dict, source: str = "config") -> "QdacConfig":
        return cls(**dataclass_fields_of(cls, data, source))

    def replace(self, **changes) -> "QdacConfig":
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class TrainConfig:
    """The training recipe (``train:`` section of a ``configs/qdac/*.yaml``)."""

    steps: int = 20000
    batch_size: int = 8
    max_seconds: float = 2.0  # longer utterances are randomly cropped (and lose their ASR target)
    min_seconds: float = 0.3
    pack_crops: bool = True  # fill each crop with further utterances instead of zero padding
    lr: float = 1e-3
    lr_min_ratio: float = 0.1  # cosine decay to lr * lr_min_ratio over ``steps``
    warmup_steps: int = 200
    betas: tuple = (0.8, 0.99)
    grad_clip: float = 10.0
    quantizer_dropout: float = 0.5  # fraction of items decoded from a random prefix of codebooks
    mel_weight: float = 1.0
    stft_weight: float = 1.0  # multi-resolution STFT (spectral convergence + log-magnitude)
    complex_weight: float = 1.0  # complex-STFT (phase-aware) L1 at the decoder's own resolution
    sisdr_weight: float = 0.02  # per dB of negative SI-SDR
    sisdr_start_step: int = 0  # the SI-SDR term from this step on (from step 0 it stalls early training)
    commitment_weight: float = 0.25
    codebook_weight: float = 1.0
    asr: bool = True  # AR-ASR supervision of codebook 1 (the ablation switch)
    asr_weight: float = 0.3
    asr_batch_size: int = 4  # whole transcribed utterances per step (encoder + codebook 1 + ASR head)
    asr_max_seconds: float = 4.5
    gan_start_step: int = -1  # -1: no GAN; else adversarial + feature-matching losses from this step
    adv_weight: float = 1.0
    feature_weight: float = 2.0
    disc_lr: float = 1e-3
    disc_channels: int = 16  # width of the first discriminator layers (doubling after)
    dead_code_every: int = 100  # steps between re-initialising unused codes (0: never)
    dead_code_threshold: float = 1.0  # usage count below which a code is re-initialised
    dead_code_max: int = 256  # at most this many codes re-initialised per codebook and restart
    log_every: int = 10
    checkpoint_every: int = 200
    eval_every: int = 0  # 0: no held-out evaluation during training
    threads: int = 1
    seed: int = 0
    init_from: str = ""  # a run folder (state.pt: codec + ASR head) or a checkpoint name/folder (codec only)

    def __post_init__(self):
        if isinstance(self.betas, list):
            object.__setattr__(self, "betas", tuple(self.betas))
        if self.steps < 1 or self.batch_size < 1:
            raise ConfigError("train.steps and train.batch_size must be >= 1")
        if not 0.0 <= self.quantizer_dropout <= 1.0:
            raise ConfigError(f"train.quantizer_dropout must be in [0, 1] (got {self.quantizer_dropout})")

    def to_dict(self) -> dict:
        data = dataclasses.asdict(self)
        data["betas"] = list(self.betas)
        return data

    @classmethod
    def from_dict(cls, data: dict, source: str = "train") -> "TrainConfig":
        return cls(**dataclass_fields_of(cls, data, source))


@dataclass(frozen=True)
class RunConfig:
    """A whole training config file: ``model``, ``train``, ``data`` and where it came from."""

    model: QdacConfig
    train: TrainConfig
    data: list = field(default_factory=list)  # [{dataset: NAME, params: {...}}]
    exclude: list = field(default_factory=list)  # [{dataset: NAME, params: {...}}] held out by id/audio
    name: str = "qdac"

    def to_dict(self) -> dict:
        return {"name": self.name, "model": self.model.to_dict(), "train": self.train.to_dict(),
                "data": self.data, "exclude": self.exclude}


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


def run_config_from_dict(raw: dict, source: str) -> RunConfig:
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level")
    allowed = ("name", "model", "train", "data", "exclude")
    no_unknown_keys(raw, allowed, source)
    data = raw.get("data") or []
    exclude = raw.get("exclude") or []
    for key, specs in (("data", data), ("exclude", exclude)):
        if not isinstance(specs, list):
            raise ConfigError(f"{source}: '{key}' must be a list of {{dataset: NAME, params: {{...}}}}")
        for i, spec in enumerate(specs):
            where = f"{source}: {key}[{i}]"
            if not isinstance(spec, dict) or "dataset" not in spec:
                raise ConfigError(f"{where}: expected {{dataset: NAME, params: {{...}}}}")
            no_unknown_keys(spec, ("dataset", "params"), where)
    return RunConfig(
        model=QdacConfig.from_dict(raw.get("model") or {}, f"{source}: model"),
        train=TrainConfig.from_dict(raw.get("train") or {}, f"{source}: train"),
        data=data, exclude=exclude, name=str(raw.get("name") or "qdac"),
    )


def _prod(values) -> int:
    out = 1
    for v in values:
        out *= int(v)
    return out


# A few-thousand-parameter model for tests and smoke runs (seconds on a CPU).
TINY_MODEL = dict(n_codebooks=4, codebook_size=16, codebook_dim=4, latent_dim=16, encoder_dim=16,
                  encoder_layers=1, decoder_dim=16, decoder_layers=1, encoder_channels=4,
                  decoder_channels=16, asr_dim=16, asr_layers=1, asr_heads=2)

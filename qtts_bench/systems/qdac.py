"""QDAC as a harness system: one class, variants by checkpoint and number of decoded codebooks.

``QdacCodec(checkpoint="qdac16-50hz-asr", n_codebooks=8)`` encodes with the first 8 codebooks of
a 16-codebook model trained with quantiser dropout, so qdac-4 / qdac-8 / qdac-16 are parameters
of one class. ``checkpoint`` is a folder (``model.safetensors`` + ``config.json``) or the name
of a checkpoint shipped in ``qtts_bench/qdac/checkpoints``. torch is imported in ``load()``.
"""

from __future__ import annotations

import numpy as np

from ..audio import AudioError
from ..errors import ConfigError, SystemFailure, require
from ..provenance import package_versions
from .base import TokenCodec

DEFAULT_CHECKPOINT = "qdac16-50hz-asr"


class QdacCodec(TokenCodec):
    """QDAC residual-VQ codec, 16 kHz mono. Codes: int64 (n_codebooks, frames)."""

    sample_rate = 16000
    deterministic = True  # inference only, no sampling

    def __init__(self, checkpoint: str = DEFAULT_CHECKPOINT, n_codebooks: int | None = None,
                 threads: int | None = None):
        if not isinstance(checkpoint, str) or not checkpoint:
            raise ConfigError(f"qdac: checkpoint must be a path or a shipped name, got {checkpoint!r}")
        if n_codebooks is not None and (isinstance(n_codebooks, bool) or not isinstance(n_codebooks, int)
                                        or n_codebooks < 1):
            raise ConfigError(f"qdac: n_codebooks must be a positive integer, got {n_codebooks!r}")
        self.checkpoint = checkpoint
        self.requested_codebooks = n_codebooks
        self.threads = threads
        self._model = None
        self._info: dict = {}
        self._device = "cpu"
        self._config_light()

    def _config_light(self) -> None:
        """Read config.json (no torch) so bitrate and frame rate are known before load()."""
        from ..qdac.checkpoint import read_config, resolve_checkpoint

        folder = resolve_checkpoint(self.checkpoint)
        cfg, _ = read_config(folder)
        n = cfg.n_codebooks if self.requested_codebooks is None else self.requested_codebooks
        if n > cfg.n_codebooks:
            raise ConfigError(f"qdac: n_codebooks={n} exceeds the {cfg.n_codebooks} codebooks of "
                              f"checkpoint {folder}")
        self.cfg = cfg
        self.n_codebooks = n
        self.frame_rate = float(cfg.frame_rate)
        self.codebook_size = cfg.codebook_size

    def load(self, device: str = "cpu") -> None:
        if self._model is not None and device == self._device:
            return
        torch = require("torch", "torch", "QDAC")
        require("safetensors", "torch", "QDAC checkpoints")
        from ..qdac.checkpoint import load_checkpoint

        if self.threads:
            torch.set_num_threads(int(self.threads))
        self._model, self._info = load_checkpoint(self.checkpoint, device)
        self._device = self.device = device

    def _require_loaded(self):
        if self._model is None:
            raise SystemFailure("qdac: call load() before encode/decode")
        return self._model

    def encode(self, audio: np.ndarray) -> np.ndarray:
        """float32 (n,) at 16 kHz -> int64 codes (n_codebooks, ceil(n / hop))."""
        import torch

        model = self._require_loaded()
        x = np.asarray(audio, dtype=np.float32)
        if x.ndim != 1:
            raise AudioError(f"qdac expects mono 16 kHz audio of shape (n,), got shape {x.shape}")
        if x.size == 0 or not np.all(np.isfinite(x)):
            raise AudioError("qdac input is empty or contains NaN/infinite samples")
        tensor = torch.from_numpy(np.clip(x, -1.0, 1.0))[None].to(self._device)
        codes = model.encode(tensor, self.n_codebooks)[0].cpu().numpy().astype(np.int64)
        return codes

    def encode_audio(self, audio) -> np.ndarray:
        """Encode an :class:`~qtts_bench.audio.Audio`; AudioError unless it is at 16 kHz."""
        if audio.sample_rate != self.sample_rate:
            raise AudioError(f"qdac works at {self.sample_rate} Hz, got {audio.sample_rate} Hz audio; "
                             f"resample it first (Audio.at({self.sample_rate}))")
        return self.encode(audio.samples)

    def decode(self, codes: np.ndarray) -> np.ndarray:
        """int codes (k, frames), 1 <= k <= n_codebooks, values in [0, codebook_size) -> float32 audio.

        The output has frames * hop samples (the runner aligns lengths).
        """
        import torch

        model = self._require_loaded()
        c = np.asarray(codes)
        if c.ndim != 2:
            raise ConfigError(f"qdac: codes must have shape (codebooks, frames), got {c.shape}")
        if not np.issubdtype(c.dtype, np.integer):
            raise ConfigError(f"qdac: codes must be integers, got dtype {c.dtype}")
        if not 1 <= c.shape[0] <= self.cfg.n_codebooks:
            raise ConfigError(f"qdac: got {c.shape[0]} codebooks; this checkpoint decodes 1..{self.cfg.n_codebooks}")
        if c.size and (c.min() < 0 or c.max() >= self.codebook_size):
            raise ConfigError(f"qdac: codes out of range [{int(c.min())}, {int(c.max())}]; "
                              f"valid 0..{self.codebook_size - 1}")
        tensor = torch.from_numpy(c.astype(np.int64))[None].to(self._device)
        audio = model.decode(tensor)[0]
        if self._device.startswith("cuda"):
            torch.cuda.synchronize()
        return audio.float().cpu().numpy()

    def provenance(self) -> dict:
        info = {"checkpoint": self.checkpoint, "n_codebooks": self.n_codebooks,
                "trained_codebooks": self.cfg.n_codebooks, "frame_rate": self.frame_rate,
                "codebook_size": self.codebook_size, "model": self.cfg.to_dict()}
        if self._info:
            info.update(path=self._info["path"], weights_sha256=self._info["weights_sha256"],
                        config_sha256=self._info["config_sha256"],
                        training_step=self._info["config"].get("training", {}).get("step"))
        info.update({f"{name}_version": v for name, v in package_versions(("torch", "safetensors")).items()})
        return info

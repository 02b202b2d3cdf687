"""Neural codec baselines from local checkpoints: EnCodec, DAC and Mimi (Hugging Face format).

No codec weights install offline, so these load only from a local folder saved with
``save_pretrained`` (``config.json`` + ``model.safetensors``), e.g. a copy of
``facebook/encodec_24khz``, ``descript/dac_16khz`` or ``kyutai/mimi`` that the user has.
Nothing is downloaded (``local_files_only=True``). ``n_codebooks`` selects how many RVQ
codebooks are used (EnCodec: one of the model's target bandwidths). transformers and torch are
imported in ``load()`` (extra ``neural-codecs``).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from ..audio import AudioError
from ..errors import ConfigError, SystemFailure, require
from ..provenance import package_versions
from .base import TokenCodec


class _HfCodec(TokenCodec):
    """Shared plumbing: local folder checks, config reading, loading, input/code validation."""

    model_type: str  # config.json "model_type"
    model_class: str  # transformers class name
    label: str
    deterministic = True  # inference only (eval mode), no sampling

    def __init__(self, path: str, n_codebooks: int | None = None):
        if not isinstance(path, str) or not path:
            raise ConfigError(f"{self.label}: path must name a local checkpoint folder, got {path!r}")
        folder = Path(path).expanduser()
        config_file = folder / "config.json"
        if not config_file.is_file():
            raise ConfigError(f"{self.label}: no config.json in {folder} (expected a folder written by "
                              "save_pretrained; weights are never downloaded)")
        try:
            config = json.loads(config_file.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise ConfigError(f"{config_file}: not valid JSON ({exc})") from None
        if config.get("model_type") != self.model_type:
            raise ConfigError(f"{config_file}: model_type is {config.get('model_type')!r}, "
                              f"expected {self.model_type!r} for {self.label}")
        self.path = str(folder)
        self.config = config
        self.sample_rate = int(config["sampling_rate"])
        self.codebook_size = int(config["codebook_size"])
        self.frame_rate = self._frame_rate(config)
        total = self._total_codebooks(config)
        n = total if n_codebooks is None else n_codebooks
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= total:
            raise ConfigError(f"{self.label}: n_codebooks must be an integer in 1..{total}, got {n_codebooks!r}")
        self.total_codebooks = total
        self.n_codebooks = n
        self._check_codebooks(n)
        self._model = None
        self._device = "cpu"
        self._weights_sha256 = None

    # subclasses --------------------------------------------------------------------------
    def _frame_rate(self, config: dict) -> float:
        raise NotImplementedError

    def _total_codebooks(self, config: dict) -> int:
        raise NotImplementedError

    def _check_codebooks(self, n: int) -> None:
        """Extra constraints on n_codebooks (EnCodec: must match a target bandwidth)."""

    def _encode(self, x):
        raise NotImplementedError

    def _decode(self, codes):
        raise NotImplementedError

    # Codec API ---------------------------------------------------------------------------
    def load(self, device: str = "cpu") -> None:
        if self._model is not None and device == self._device:
            return
        require("torch", "neural-codecs", self.label)
        transformers = require("transformers", "neural-codecs", self.label)
        cls = getattr(transformers, self.model_class)
        try:
            self._model = cls.from_pretrained(self.path, local_files_only=True).eval().to(device)
        except (OSError, ValueError, RuntimeError) as exc:
            raise ConfigError(f"{self.label}: cannot load checkpoint {self.path}: {exc}") from None
        self._device = self.device = device
        weights = sorted(Path(self.path).glob("*.safetensors")) or sorted(Path(self.path).glob("*.bin"))
        if weights:
            from ..hashing import sha256_file

            self._weights_sha256 = {w.name: sha256_file(w) for w in weights}

    def _model_or_fail(self):
        if self._model is None:
            raise SystemFailure(f"{self.label}: call load() before encode/decode")
        return self._model

    def encode(self, audio: np.ndarray) -> np.ndarray:
        import torch

        self._model_or_fail()
        x = np.asarray(audio, dtype=np.float32)
        if x.ndim != 1 or x.size == 0 or not np.all(np.isfinite(x)):
            raise AudioError(f"{self.label} expects finite mono audio of shape (n,) at {self.sample_rate} Hz, "
                             f"got shape {x.shape}")
        with torch.no_grad():
            codes = self._encode(torch.from_numpy(x)[None, None].to(self._device))
        return codes.cpu().numpy().astype(np.int64)

    def decode(self, codes: np.ndarray) -> np.ndarray:
        import torch

        self._model_or_fail()
        c = np.asarray(codes)
        if c.ndim != 2 or not np.issubdtype(c.dtype, np.integer):
            raise ConfigError(f"{self.label}: codes must be integers of shape (codebooks, frames), got {c.dtype} {c.shape}")
        if not 1 <= c.shape[0] <= self.total_codebooks:
            raise ConfigError(f"{self.label}: got {c.shape[0]} codebooks; the model has {self.total_codebooks}")
        if c.size and (c.min() < 0 or c.max() >= self.codebook_size):
            raise ConfigError(f"{self.label}: codes out of range [{int(c.min())}, {int(c.max())}]; "
                              f"valid 0..{self.codebook_size - 1}")
        with torch.no_grad():
            audio = self._decode(torch.from_numpy(c.astype(np.int64))[None].to(self._device))
        if self._device.startswith("cuda"):
            torch.cuda.synchronize()
        return audio.reshape(-1).float().cpu().numpy()

    def provenance(self) -> dict:
        info = {"path": self.path, "model_type": self.model_type, "n_codebooks": self.n_codebooks,
                "total_codebooks": self.total_codebooks, "frame_rate": self.frame_rate,
                "codebook_size": self.codebook_size, "weights_sha256": self._weights_sha256}
        info.update({f"{name}_version": v for name, v in package_versions(("transformers", "torch")).items()})
        return info


class EncodecCodec(_HfCodec):
    """EnCodec (Défossez et al. 2022); ``n_codebooks`` must match one of its target bandwidths."""

    model_type, model_class, label = "encodec", "EncodecModel", "encodec"

    def _frame_rate(self, config):
        return config["sampling_rate"] / math.prod(config["upsampling_ratios"])

    def _bits(self) -> int:
        return int(math.ceil(math.log2(self.codebook_size)))

    def _total_codebooks(self, config):
        self.codebook_size = int(config["codebook_size"])
        frame_rate = self._frame_rate(config)
        return max(int(1000 * b // (frame_rate * self._bits())) for b in config["target_bandwidths"])

    def _bandwidth_for(self, n: int) -> float | None:
        for bandwidth in self.config["target_bandwidths"]:
            if int(1000 * bandwidth // (self.frame_rate * self._bits())) == n:
                return float(bandwidth)
        return None

    def _check_codebooks(self, n):
        if self.config.get("chunk_length_s"):
            raise ConfigError(f"encodec: {self.path} is a chunked (48 kHz-style) model; only unchunked "
                              "EnCodec checkpoints are supported")
        if self._bandwidth_for(n) is None:
            allowed = sorted(int(1000 * b // (self.frame_rate * self._bits())) for b in self.config["target_bandwidths"])
            raise ConfigError(f"encodec: n_codebooks={n} matches none of the model's target bandwidths "
                              f"{list(self.config['target_bandwidths'])} kbit/s; allowed n_codebooks: {allowed}")

    def _encode(self, x):
        out = self._model.encode(x, bandwidth=self._bandwidth_for(self.n_codebooks), return_dict=True)
        return out.audio_codes[0, 0]  # (chunks=1, batch=1, n_q, frames) -> (n_q, frames)

    def _decode(self, codes):
        return self._model.decode(codes[None], [None], return_dict=True).audio_values


class DacCodec(_HfCodec):
    """DAC, the Descript Audio Codec (Kumar et al. 2023)."""

    model_type, model_class, label = "dac", "DacModel", "dac"

    def _frame_rate(self, config):
        return config["sampling_rate"] / math.prod(config["downsampling_ratios"])

    def _total_codebooks(self, config):
        return int(config["n_codebooks"])

    def _encode(self, x):
        return self._model.encode(x, n_quantizers=self.n_codebooks, return_dict=True).audio_codes[0, : self.n_codebooks]

    def _decode(self, codes):
        return self._model.decode(audio_codes=codes, return_dict=True).audio_values


class MimiCodec(_HfCodec):
    """Mimi (Kyutai 2024), 12.5 Hz, split semantic + acoustic RVQ."""

    model_type, model_class, label = "mimi", "MimiModel", "mimi"

    def _frame_rate(self, config):
        return float(config.get("frame_rate") or config["sampling_rate"] / math.prod(config["upsampling_ratios"]) / 2)

    def _total_codebooks(self, config):
        return int(config["num_quantizers"])

    def _encode(self, x):
        return self._model.encode(x, num_quantizers=self.n_codebooks, return_dict=True).audio_codes[0]

    def _decode(self, codes):
        return self._model.decode(codes, return_dict=True).audio_values

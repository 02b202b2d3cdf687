"""Interfaces every system implements.

Constructors are light (store parameters only); weights and libraries load in ``load(device)``.
Audio in and out is mono float32 at the system's own ``sample_rate``; the runner resamples.
"""

from __future__ import annotations

import math
from typing import Iterator

import numpy as np


class System:
    """Base for everything the registry calls a system."""

    kind: str = "system"
    sample_rate: int = 16000
    device: str = "cpu"  # set by load(); the runner times CUDA work with synchronisation

    def load(self, device: str = "cpu") -> None:
        """Load weights / libraries onto ``device`` ("cpu", "cuda", "cuda:1"). Idempotent."""
        self.device = device

    def provenance(self) -> dict:
        """What exactly this system is: parameters, checkpoint path and sha256, library versions."""
        return {}


class Codec(System):
    """Audio codec. ``encode`` returns an opaque encoded form, ``decode`` returns audio.

    Bitrate: ``nominal_bitrate`` (bits/s, from the configuration) and ``encoded_bits`` (bits in
    one encoded utterance, when measurable) so the harness reports what was really spent.
    """

    kind = "codec"

    def encode(self, audio: np.ndarray) -> object:
        """``audio``: float32 (n,) at ``sample_rate`` -> encoded form."""
        raise NotImplementedError

    def decode(self, encoded: object) -> np.ndarray:
        """Encoded form -> float32 (m,) at ``sample_rate``; m may differ from n."""
        raise NotImplementedError

    @property
    def nominal_bitrate(self) -> float | None:
        """Configured bitrate in bits/s, or None when not defined."""
        return None

    def encoded_bits(self, encoded: object) -> int | None:
        """Bits used by one encoded utterance, or None when not measurable."""
        return None


class TokenCodec(Codec):
    """Neural codec over integer codes of shape [codebooks, frames].

    Bitrate is derived: frame_rate * n_codebooks * log2(codebook_size).
    """

    frame_rate: float
    n_codebooks: int
    codebook_size: int

    def encode(self, audio: np.ndarray) -> np.ndarray:
        """float32 (n,) -> int64 codes (n_codebooks, frames)."""
        raise NotImplementedError

    def decode(self, codes: np.ndarray) -> np.ndarray:
        """int codes (k, frames), k <= n_codebooks -> float32 audio."""
        raise NotImplementedError

    @property
    def nominal_bitrate(self) -> float:
        return self.frame_rate * self.n_codebooks * math.log2(self.codebook_size)

    def encoded_bits(self, encoded: np.ndarray) -> int:
        codes = np.asarray(encoded)
        return int(codes.size * math.ceil(math.log2(self.codebook_size)))


def is_token_codec(system) -> bool:
    """True for codecs whose encoded form is integer codes (n_codebooks, frames) that metrics may read."""
    return getattr(system, "kind", "") == "codec" and hasattr(system, "codebook_size")


class TTS(System):
    """Text-to-speech. Optional speaker prompt (audio at ``sample_rate`` and its transcript)."""

    kind = "tts"
    streaming: bool = False  # True when ``stream`` yields audio before synthesis ends (TTFT)

    def synthesize(
        self,
        text: str,
        *,
        prompt_audio: np.ndarray | None = None,
        prompt_text: str | None = None,
        language: str | None = None,
        seed: int | None = None,
    ) -> np.ndarray:
        """Return float32 (n,) audio at ``sample_rate``."""
        raise NotImplementedError

    def stream(self, text: str, **kwargs) -> Iterator[np.ndarray]:
        """Yield audio chunks; default: one chunk from ``synthesize``."""
        yield self.synthesize(text, **kwargs)

"""Interfaces every system implements, and the one call the runner makes: ``generate``.

Constructors are light (store parameters only); weights and libraries load in ``load(device)``.
Audio in and out is mono float32 at the system's own ``sample_rate``; the runner resamples.

Every kind of system answers one :class:`Request` (what it needs from one dataset item) with one
:class:`Generation` (audio, optional codes and bits, timing). ``needs`` declares which item
fields a system reads, so suite validation checks datasets without knowing system kinds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar, Iterator

import numpy as np

# Item fields a system may need: the ground-truth audio, the text to speak, a speaker prompt.
SYSTEM_NEEDS = ("reference", "text", "prompt")


@dataclass(frozen=True)
class Request:
    """One item as a system sees it. Audio is float32 (n,) already at the system's rate."""

    item_id: str
    text: str | None = None
    language: str | None = None
    reference: np.ndarray | None = None
    prompt_audio: np.ndarray | None = None
    prompt_text: str | None = None
    seed: int | None = None


@dataclass
class Generation:
    """What a system produced for one request.

    ``audio``: float32 (n,) at the system's ``sample_rate``. ``codes``: int (n_codebooks, frames)
    when the system works over codec tokens (codebook metrics read them), with
    ``code_info`` = {"codebook_size", "frame_rate", "n_codebooks"}. ``encoded_bits``: bits spent
    on this utterance (codecs). ``seconds``: wall time of the work (None when the audio was made
    elsewhere), ``ttft``: seconds to the first audio chunk (streaming only), ``peak_memory``: bytes.
    """

    audio: np.ndarray
    seconds: float | None = None
    ttft: float | None = None
    peak_memory: int | None = None
    codes: np.ndarray | None = None
    code_info: dict = field(default_factory=dict)
    encoded_bits: int | None = None
    nominal_bitrate: float | None = None
    extra: dict = field(default_factory=dict)


class System:
    """Base for everything the registry calls a system."""

    kind: ClassVar[str] = "system"
    needs: ClassVar[tuple[str, ...]] = ()  # subset of SYSTEM_NEEDS, checked against datasets
    sample_rate: int = 16000
    device: str = "cpu"  # set by load(); timing synchronises CUDA work only on CUDA
    # True when one request (same inputs, same seed) always gives the same output on one device:
    # only then may the output cache (qtts_bench/output_cache.py) reuse its outputs. Conservative
    # default: a system has to say so.
    deterministic: ClassVar[bool] = False

    def load(self, device: str = "cpu") -> None:
        """Load weights / libraries onto ``device`` ("cpu", "cuda", "cuda:1"). Idempotent."""
        self.device = device

    def provenance(self) -> dict:
        """What exactly this system is: parameters, checkpoint path and sha256, library versions."""
        return {}

    def not_cacheable(self) -> str | None:
        """Why this system's outputs must not be reused from the output cache, or None.

        Default: unless it declares :attr:`deterministic`, a system's output for a seed may vary
        from call to call, so an earlier output is not this run's.
        """
        if not self.deterministic:
            return (f"{type(self).__name__} does not declare itself deterministic under a seed "
                    "(System.deterministic), so an earlier output may differ from a new one")
        return None

    def unavailable(self) -> str | None:
        """Why this system cannot run here (a package or program not installed, with the command
        that installs it), or None. Cheap: it imports and loads nothing; validation calls it."""
        return None

    def generate(self, request: Request) -> Generation:
        """Produce audio for one item, timed (see :mod:`qtts_bench.timing`)."""
        raise NotImplementedError

    def check_output_length(self, request: Request, n_samples: int) -> None:
        """Raise SystemFailure when the output length is wrong for this request (default: any)."""


class Codec(System):
    """Audio codec. ``encode`` returns an opaque encoded form, ``decode`` returns audio.

    Bitrate: ``nominal_bitrate`` (bits/s, from the configuration) and ``encoded_bits`` (bits in
    one encoded utterance, when measurable) so the harness reports what was really spent.
    """

    kind = "codec"
    needs = ("reference",)
    # The output may differ from the input length by frame padding; beyond this it is wrong.
    LENGTH_TOLERANCE: ClassVar[tuple[float, float]] = (0.02, 0.040)  # (fraction, seconds): the larger

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

    def generate(self, request: Request) -> Generation:
        """Encode + decode ``request.reference`` (timed together); the output is cut to the input length."""
        from ..errors import SystemFailure
        from ..timing import measure

        x = request.reference
        if x is None:
            raise SystemFailure("a codec needs the item's reference audio")
        (encoded, decoded), seconds, peak = measure(lambda: self._roundtrip(x), self.device)
        out = np.asarray(decoded, dtype=np.float32)
        self.check_output_length(request, out.shape[-1] if out.ndim else 0)
        return Generation(out[..., :len(x)], seconds=seconds, peak_memory=peak,
                          encoded_bits=self.encoded_bits(encoded), nominal_bitrate=self.nominal_bitrate,
                          **self._codes(encoded))

    def _roundtrip(self, audio: np.ndarray) -> tuple[object, np.ndarray]:
        encoded = self.encode(audio)
        return encoded, self.decode(encoded)

    def _codes(self, encoded) -> dict:
        return {}

    def check_output_length(self, request: Request, n_samples: int) -> None:
        from ..errors import SystemFailure

        n_in = len(request.reference)
        fraction, seconds = self.LENGTH_TOLERANCE
        if abs(n_samples - n_in) > max(fraction * n_in, seconds * self.sample_rate):
            raise SystemFailure(
                f"codec returned {n_samples} samples ({n_samples / self.sample_rate:.3f} s) for an input of "
                f"{n_in} ({n_in / self.sample_rate:.3f} s)")


class TokenCodec(Codec):
    """Neural codec over integer codes of shape [codebooks, frames].

    Bitrate is derived: frame_rate * n_codebooks * log2(codebook_size). Its codes reach the
    codebook metrics through :attr:`Generation.codes`.
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

    def code_info(self) -> dict:
        return {"codebook_size": self.codebook_size, "frame_rate": self.frame_rate,
                "n_codebooks": self.n_codebooks}

    def _codes(self, encoded) -> dict:
        return {"codes": np.asarray(encoded), "code_info": self.code_info()}


def emits_codes(system) -> bool:
    """True for systems whose generations carry codec tokens (token codecs, codec-LM TTS)."""
    return callable(getattr(system, "code_info", None))


class TTS(System):
    """Text-to-speech. Optional speaker prompt (audio at ``sample_rate`` and its transcript).

    Subclasses implement ``synthesize`` and, when they really stream, set ``streaming`` and
    implement ``stream`` (then TTFT is the time to its first non-empty chunk).
    """

    kind = "tts"
    needs = ("text",)
    streaming: bool = False

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

    def generate(self, request: Request) -> Generation:
        """Synthesize ``request.text`` (streamed and timed to the first chunk when ``streaming``)."""
        from ..errors import SystemFailure
        from ..timing import measure, stream_timing

        if request.text is None or not request.text.strip():
            raise SystemFailure("the item has no text to synthesize")
        kwargs = dict(prompt_audio=request.prompt_audio, prompt_text=request.prompt_text,
                      language=request.language, seed=request.seed)
        if self.streaming:
            (chunks, ttft, seconds), _, peak = measure(
                lambda: stream_timing(lambda: self.stream(request.text, **kwargs), self.device), self.device)
            parts = [np.asarray(c, dtype=np.float32).reshape(-1) for c in chunks]
            audio = np.concatenate(parts) if parts else np.zeros(0, np.float32)
            return Generation(audio, seconds=seconds, ttft=ttft, peak_memory=peak)
        audio, seconds, peak = measure(lambda: self.synthesize(request.text, **kwargs), self.device)
        return Generation(audio, seconds=seconds, peak_memory=peak)

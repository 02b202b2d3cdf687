"""Codec bitrate, measured from the bits each utterance really used, with the nominal rate beside it.

``bitrate`` = encoded_bits / input_seconds (bit/s) per utterance; the aggregate is the exact ratio
Σ encoded_bits / Σ input_seconds. The nominal rate (configured, or for token codecs
frame_rate × n_codebooks × log2(codebook_size)) is kept in ``extra`` so a report can show both.
"""

from __future__ import annotations

import math

from ..errors import MetricFailure
from .base import Inputs, Metric, Score


def token_bitrate(frame_rate: float, n_codebooks: int, codebook_size: int) -> float:
    """Nominal bits/s of a codec emitting ``n_codebooks`` indices into ``codebook_size`` entries
    ``frame_rate`` times a second: frame_rate × n_codebooks × log2(codebook_size).

    >>> token_bitrate(75, 8, 1024)   # EnCodec 24 kHz, 8 codebooks
    6000.0
    """
    if frame_rate <= 0 or n_codebooks <= 0 or codebook_size < 2:
        raise ValueError(f"invalid token codec: frame_rate={frame_rate}, n_codebooks={n_codebooks}, "
                         f"codebook_size={codebook_size}")
    return float(frame_rate) * int(n_codebooks) * math.log2(int(codebook_size))


def nominal_bitrate(info: dict) -> float | None:
    """The configured bitrate, else the one implied by the codebooks, else None."""
    if info.get("nominal_bitrate") is not None:
        return float(info["nominal_bitrate"])
    if all(info.get(k) is not None for k in ("frame_rate", "n_codebooks", "codebook_size")):
        return token_bitrate(info["frame_rate"], info["n_codebooks"], info["codebook_size"])
    return None


class Bitrate(Metric):
    """Measured bitrate of a codec (bit/s): encoded bits of the utterance / its input duration."""

    name = "bitrate"
    direction = "lower"
    unit = "bit/s"
    aggregation = "ratio"
    ratio = ("encoded_bits", "input_seconds", 1.0)
    requires = ()

    def score(self, inputs: Inputs) -> Score:
        info = inputs.system_info
        nominal = nominal_bitrate(info)
        extra = {"nominal_bitrate": nominal}
        if all(info.get(k) is not None for k in ("frame_rate", "n_codebooks", "codebook_size")):
            extra.update({k: info[k] for k in ("frame_rate", "n_codebooks", "codebook_size")})
            extra["codebook_bitrate"] = token_bitrate(info["frame_rate"], info["n_codebooks"], info["codebook_size"])
        bits = info.get("encoded_bits")
        if bits is None:
            where = f" (nominal {nominal:g} bit/s)" if nominal is not None else ""
            raise MetricFailure(f"the system does not report encoded bits{where}")
        seconds = info.get("input_seconds")
        if seconds is None:
            raise MetricFailure("no input audio duration (bitrate applies to codecs only)")
        bits, seconds = float(bits), float(seconds)
        if bits < 0 or not math.isfinite(bits):
            raise MetricFailure(f"invalid encoded_bits {bits}")
        if seconds <= 0 or not math.isfinite(seconds):
            raise MetricFailure(f"input audio duration is {seconds} s, so bitrate is undefined")
        return Score(bits / seconds, stats={"encoded_bits": bits, "input_seconds": seconds}, extra=extra)

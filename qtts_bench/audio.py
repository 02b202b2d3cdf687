"""Audio I/O, resampling and alignment: the one place where samples change shape or rate.

Audio inside the harness is a mono float32 numpy array in [-1, 1] plus its sample rate (Hz).
Every transformation used for a score is named in provenance via :func:`provenance`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import QttsBenchError

RESAMPLER = "soxr"
RESAMPLER_QUALITY = "VHQ"


class AudioError(QttsBenchError):
    """Audio that cannot be read or is unusable; the message names the file or cause."""


@dataclass(frozen=True)
class Audio:
    """Mono waveform. ``samples``: float32, shape (n,); ``sample_rate`` in Hz."""

    samples: np.ndarray
    sample_rate: int

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return len(self.samples) / self.sample_rate

    def at(self, sample_rate: int) -> "Audio":
        """This audio resampled to ``sample_rate`` (no-op when equal)."""
        return Audio(resample(self.samples, self.sample_rate, sample_rate), sample_rate)


def read_audio(path: str | Path) -> Audio:
    """Read any libsndfile format (wav, flac, ogg...) as mono float32; channels are averaged."""
    import soundfile as sf

    path = Path(path)
    if not path.is_file():
        raise AudioError(f"audio file not found: {path}")
    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as exc:  # libsndfile raises several types
        raise AudioError(f"cannot read audio file {path}: {exc}") from exc
    samples = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    return Audio(np.ascontiguousarray(samples, dtype=np.float32), int(sr))


def write_audio(path: str | Path, audio: Audio, exact: bool = False) -> None:
    """Write FLAC or WAV (by suffix), 16-bit PCM clipped to [-1, 1], atomically.

    ``exact``: 32-bit float WAV (``path`` must end in .wav), the float32 samples unchanged and
    unclipped, so :func:`read_audio` returns exactly what was written.
    """
    import soundfile as sf

    path = Path(path)
    fmt = "FLAC" if path.suffix.lower() == ".flac" else "WAV"
    if exact and fmt != "WAV":
        raise ValueError(f"{path}: exact (float) audio is written as .wav, not {path.suffix}")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    if exact:
        sf.write(str(tmp), np.asarray(audio.samples, dtype=np.float32), audio.sample_rate, format="WAV",
                 subtype="FLOAT")
    else:
        sf.write(str(tmp), np.clip(audio.samples, -1.0, 1.0), audio.sample_rate, format=fmt, subtype="PCM_16")
    tmp.replace(path)


def resample(samples: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """Resample a mono float array with soxr (very high quality). Returns float32."""
    if from_rate == to_rate:
        return np.asarray(samples, dtype=np.float32)
    import soxr

    out = soxr.resample(np.asarray(samples, dtype=np.float32), from_rate, to_rate, quality=RESAMPLER_QUALITY)
    return np.asarray(out, dtype=np.float32)


def align_lengths(reference: np.ndarray, estimate: np.ndarray, policy: str = "trim") -> tuple[np.ndarray, np.ndarray]:
    """Make two signals equal length.

    ``trim`` cuts both to the shorter one; ``pad`` zero-pads the shorter one at its end.
    """
    n_ref, n_est = len(reference), len(estimate)
    if n_ref == n_est:
        return reference, estimate
    if policy == "trim":
        n = min(n_ref, n_est)
        return reference[:n], estimate[:n]
    if policy == "pad":
        n = max(n_ref, n_est)
        return np.pad(reference, (0, n - n_ref)), np.pad(estimate, (0, n - n_est))
    raise ValueError(f"unknown alignment policy '{policy}' (use 'trim' or 'pad')")


def check_usable(samples: np.ndarray, what: str) -> None:
    """Raise AudioError for empty, non-finite or all-silent audio (``what`` names it)."""
    if samples.size == 0:
        raise AudioError(f"{what} is empty")
    if not np.all(np.isfinite(samples)):
        raise AudioError(f"{what} contains NaN or infinite samples")
    if float(np.max(np.abs(samples))) < 1e-6:
        raise AudioError(f"{what} is all silence")


def provenance() -> dict:
    """How audio is resampled and aligned, for run.json."""
    import soxr

    return {"resampler": RESAMPLER, "resampler_version": soxr.__version__, "quality": RESAMPLER_QUALITY}

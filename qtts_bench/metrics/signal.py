"""Signal metrics that compare an estimate with its reference: PESQ, STOI, ESTOI, SI-SDR.

Two layers:

* Pure per-utterance functions (:func:`pesq_score`, :func:`stoi_score`, :func:`si_sdr`) on 1-D
  float arrays of equal length at one sample rate. They raise
  :class:`~qtts_bench.errors.MetricFailure` with a reason whenever no honest value exists.
* Metric classes (:class:`PesqWB`, :class:`PesqNB`, :class:`Stoi`, :class:`Estoi`,
  :class:`SiSdr`) that resample both signals to the metric's rate (soxr, see
  :mod:`qtts_bench.audio`), check or align their lengths by the ``align`` parameter and call the
  function; PESQ's function runs in a guarded worker process (:mod:`.isolation`), so a crash of
  its C code is that utterance's missing value, not the end of the run.

Rates and protocol choices (all recorded in ``settings()``):

* PESQ-WB: ITU-T P.862.2 at 16 kHz; PESQ-NB: P.862 + P.862.1 mapping at 8 kHz. Both MOS-LQO,
  from the ``pesq`` package (ITU C code).
* STOI / ESTOI: signals are resampled to 16 kHz by us, then pystoi resamples them to its internal
  10 kHz with its MATLAB-compatible polyphase filter, as the reference MATLAB code and most peers
  (feeding 16 kHz audio to pystoi) do. Resampling to 10 kHz ourselves instead moves the score by < 1e-4 (measured).
  The two share pystoi's front end per pair (:mod:`.stoi_pair`; values bit-equal to ``pystoi.stoi``).
* SI-SDR: zero-mean by default (Le Roux et al. 2019), at 16 kHz so systems with different output
  rates are compared on the same 0-8 kHz band, like PESQ-WB and STOI.
* Length alignment: ``align="strict"`` (default) scores only signals whose lengths agree within
  the codecs' own tolerance, max(40 ms, 2 % of the reference) (:data:`LENGTH_TOLERANCE`), and cuts
  that small difference off the longer one; a larger mismatch (a truncated or runaway estimate)
  is a missing value with the two durations as reason, never a silently trimmed perfect score.
  ``"trim"`` cuts both to the shorter signal and ``"pad"`` zero-pads the shorter one, whatever
  the difference: explicit choices, recorded in the settings. None compensates a codec delay:
  that happens before scoring.
* PESQ length: at most :data:`PESQ_MAX_SECONDS` (30 s). The P.862 application guide (P.862.3)
  asks for 8-30 s references with at most 50 utterances; the ITU C code keeps 50 utterances in
  fixed arrays and crashes (SIGSEGV) past ~60 (measured with a bundled utterance tiled: 1.1 s
  utterances crash from ~65 s on, 1.75 s ones from ~105 s). Longer audio is a missing value with
  that reason; a crash below the limit (many very short utterances) is caught by the isolation.
"""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np

from ..audio import RESAMPLER, RESAMPLER_QUALITY, AudioError, align_lengths, check_usable
from ..errors import ConfigError, MetricFailure
from ..systems.base import Codec
from . import isolation
from .base import Inputs, Metric, Score

ALIGN_POLICIES = ("strict", "trim", "pad")  # the first is the default
# (fraction of the reference, seconds): the larger is the length difference "strict" accepts;
# the same tolerance a codec's output length is held to.
LENGTH_TOLERANCE = Codec.LENGTH_TOLERANCE
PESQ_RATES = {"wb": (16000,), "nb": (8000, 16000)}
PESQ_MIN_SECONDS = 0.25  # the ITU C code rejects shorter buffers
PESQ_MAX_SECONDS = 30.0  # P.862.3's 8-30 s; the C code crashes past ~60 utterances (from ~65 s of speech)
STOI_INTERNAL_RATE = 10000  # pystoi's fixed internal rate
SI_SDR_LIMIT_DB = 100.0  # SiSdr clamps to +-this; exact reconstructions are +inf otherwise


def _checked_pair(reference, estimate) -> tuple[np.ndarray, np.ndarray]:
    """Both signals as float64 1-D arrays, or MetricFailure naming what is wrong."""
    ref = np.asarray(reference, dtype=np.float64)
    est = np.asarray(estimate, dtype=np.float64)
    for what, x in (("reference", ref), ("estimate", est)):
        if x.ndim != 1:
            raise MetricFailure(f"{what} must be 1-D (mono), got shape {x.shape}")
    if ref.shape != est.shape:
        raise MetricFailure(
            f"reference and estimate lengths differ ({len(ref)} vs {len(est)} samples); align them first"
        )
    for what, x in (("reference", ref), ("estimate", est)):
        try:
            check_usable(x, what)
        except AudioError as exc:  # empty, NaN/inf or all-silent
            raise MetricFailure(str(exc)) from exc
    return ref, est


def pesq_score(*, reference: np.ndarray, estimate: np.ndarray, sample_rate: int, mode: str) -> float:
    """PESQ MOS-LQO of ``estimate`` against ``reference`` (ITU-T P.862 C code, ``pesq`` package).

    Args:
        reference, estimate: float arrays, shape (n,), same length, same rate; any scale (PESQ
            aligns levels and delays itself).
        sample_rate: Hz. ``mode="wb"`` (P.862.2) needs 16000; ``mode="nb"`` (P.862 with the
            P.862.1 mapping) takes 8000 or 16000.
        mode: ``"wb"`` or ``"nb"``.

    Returns:
        MOS-LQO in (0.999, 4.644] for WB, (0.999, 4.549] for NB; identical signals give the
        maximum (raw P.862 score 4.5 through the P.862.2 / P.862.1 mapping).

    Raises:
        MetricFailure: unequal lengths, empty, NaN/inf, all-silent input, shorter than 1/4 s or
            longer than :data:`PESQ_MAX_SECONDS`, wrong rate for the mode, or an error of the C
            code (e.g. no utterances detected).

    Example:
        >>> t = np.arange(16000) / 16000
        >>> x = np.sin(2 * np.pi * 440 * t) * (1 + np.sin(2 * np.pi * 3 * t))
        >>> round(pesq_score(reference=x, estimate=x, sample_rate=16000, mode="wb"), 3)
        4.644
    """
    if mode not in PESQ_RATES:
        raise ConfigError(f"PESQ mode must be 'wb' or 'nb', got {mode!r}")
    if sample_rate not in PESQ_RATES[mode]:
        allowed = " or ".join(str(r) for r in PESQ_RATES[mode])
        raise MetricFailure(f"PESQ {mode.upper()} needs a sample rate of {allowed} Hz, got {sample_rate}")
    ref, est = _checked_pair(reference, estimate)
    if len(ref) < PESQ_MIN_SECONDS * sample_rate:
        raise MetricFailure(
            f"clip too short for PESQ: {len(ref) / sample_rate:.3f} s, needs at least {PESQ_MIN_SECONDS} s"
        )
    if len(ref) > PESQ_MAX_SECONDS * sample_rate:
        raise MetricFailure(
            f"PESQ is defined for utterances up to {PESQ_MAX_SECONDS:g} s (ITU-T P.862.3 asks for 8-30 s with "
            f"at most 50 utterances; the ITU C code crashes beyond); this one is {len(ref) / sample_rate:.1f} s")
    import pesq

    try:
        return float(pesq.pesq(sample_rate, ref, est, mode))
    except pesq.NoUtterancesError as exc:
        raise MetricFailure("PESQ detected no speech utterances in the reference or estimate") from exc
    except pesq.BufferTooShortError as exc:
        raise MetricFailure("clip too short for PESQ (the C code needs at least 1/4 s)") from exc
    except pesq.PesqError as exc:
        raise MetricFailure(f"PESQ C code failed: {_pesq_message(exc)}") from exc


def _pesq_message(exc: Exception) -> str:
    arg = exc.args[0] if exc.args else type(exc).__name__
    return arg.decode(errors="replace") if isinstance(arg, bytes) else str(arg)


def stoi_score(*, reference: np.ndarray, estimate: np.ndarray, sample_rate: int, extended: bool = False) -> float:
    """STOI (Taal et al. 2011) or, with ``extended=True``, ESTOI (Jensen & Taal 2016), via pystoi.

    Args:
        reference, estimate: float arrays, shape (n,), same length, same rate.
        sample_rate: Hz, any; pystoi resamples to 10 kHz internally.
        extended: ESTOI instead of STOI.

    Returns:
        Unitless, higher is better: STOI typically in [0.3, 1], ESTOI in [0, 1]; identical
        signals give 1. Frames more than 40 dB below the reference's loudest frame are dropped.

    Raises:
        MetricFailure: unequal lengths, empty, NaN/inf or all-silent input, or fewer than 30
            non-silent 25.6 ms frames (about 0.4 s of speech), where pystoi would return 1e-5.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> t = np.arange(16000) / 16000
        >>> x = np.sin(2 * np.pi * 440 * t) * (1 + np.sin(2 * np.pi * 3 * t))
        >>> round(stoi_score(reference=x, estimate=x, sample_rate=16000), 6)
        1.0
    """
    ref, est = _checked_pair(reference, estimate)
    from .stoi_pair import TooFewFrames, stoi_pair  # pystoi's computation, front end shared by STOI and ESTOI

    try:
        value = stoi_pair(ref, est, sample_rate, extended=extended)
    except TooFewFrames:
        raise MetricFailure(
            "too little non-silent speech for STOI: needs 30 frames (~0.4 s) after silence removal"
        ) from None
    if not math.isfinite(value):
        raise MetricFailure(f"STOI is not finite ({value})")
    return value


def si_sdr(*, reference: np.ndarray, estimate: np.ndarray, zero_mean: bool = True) -> float:
    """Scale-invariant signal-to-distortion ratio in dB (Le Roux et al. 2019).

    With ``s = a * reference`` the projection of ``estimate`` on ``reference`` and
    ``e = estimate - s``: ``10 * log10(|s|^2 / |e|^2)``. Computed in float64.

    Args:
        reference, estimate: float arrays, shape (n,), same length, same rate (any rate).
        zero_mean: subtract each signal's mean first (our default; torchmetrics' default is
            ``False``, which gives a different number when the signals carry a DC offset).

    Returns:
        dB, higher is better; ``inf`` when the estimate is an exact scaled copy of the
        reference, ``-inf`` when it is exactly orthogonal to it.

    Raises:
        MetricFailure: unequal lengths, empty, NaN/inf or all-silent input, or a reference with
            no energy left after mean removal (a constant signal).

    Example:
        >>> round(si_sdr(reference=np.array([3.0, -0.5, 2.0, 7.0]),
        ...              estimate=np.array([2.5, 0.0, 2.0, 8.0]), zero_mean=False), 4)
        18.403
    """
    ref, est = _checked_pair(reference, estimate)
    if zero_mean:
        ref = ref - ref.mean()
        est = est - est.mean()
    ref_energy = float(ref @ ref)
    if ref_energy <= 0.0:
        raise MetricFailure("reference has no energy after mean removal (constant signal)")
    target = (float(est @ ref) / ref_energy) * ref
    residual = est - target
    target_energy, residual_energy = float(target @ target), float(residual @ residual)
    if residual_energy == 0.0:
        return math.inf
    if target_energy == 0.0:
        return -math.inf
    return 10.0 * math.log10(target_energy / residual_energy)


def _library_version(distribution: str) -> str:
    from ..provenance import package_version

    return package_version(distribution) or "unknown"


def length_mismatch(n_reference: int, n_estimate: int, sample_rate: int) -> str | None:
    """Why ``align: strict`` refuses this pair (lengths in samples at ``sample_rate``), or None.

    Accepted: a difference of at most max(2 % of the reference, 40 ms) (:data:`LENGTH_TOLERANCE`).
    """
    fraction, seconds = LENGTH_TOLERANCE
    if abs(n_estimate - n_reference) <= max(fraction * n_reference, seconds * sample_rate):
        return None
    return (f"estimate is {n_estimate / sample_rate:.2f} s, reference {n_reference / sample_rate:.2f} s: "
            f"lengths differ by more than max({seconds * 1000:g} ms, {fraction * 100:g} %); "
            "set align: trim or pad (qtts-bench score --align) to score anyway")


class _ReferenceMetric(Metric):
    """Shared plumbing: parameter checks, resampling, length checks and alignment, settings.

    ``isolate = True`` runs :meth:`_compute` in the guarded worker process (:mod:`.isolation`):
    for metrics whose native code can crash the interpreter.
    """

    direction: ClassVar[str] = "higher"
    aggregation: ClassVar[str] = "mean"
    cpu_bound: ClassVar[bool] = True
    requires: ClassVar[tuple[str, ...]] = ("reference",)
    sample_rate: ClassVar[int] = 16000
    defaults: ClassVar[dict] = {"align": "strict"}  # every accepted parameter with its default
    isolate: ClassVar[bool] = False

    def __init__(self, **params):
        unknown = sorted(set(params) - set(self.defaults))
        if unknown:
            raise ConfigError(
                f"metric '{self.name}': unknown parameter(s) {', '.join(unknown)}; "
                f"accepted: {', '.join(sorted(self.defaults))}"
            )
        merged = {**self.defaults, **params}
        if merged["align"] not in ALIGN_POLICIES:
            raise ConfigError(
                f"metric '{self.name}': align must be one of {', '.join(ALIGN_POLICIES)}, got {merged['align']!r}"
            )
        super().__init__(**merged)

    def settings(self) -> dict:
        tolerance = {}
        if self.params["align"] == "strict":
            fraction, seconds = LENGTH_TOLERANCE
            tolerance = {"length_tolerance": {"fraction": fraction, "seconds": seconds}}
        return {
            "version": self.version,
            "sample_rate": self.sample_rate,
            "resampler": f"{RESAMPLER} {RESAMPLER_QUALITY}",
            **self.params,
            **tolerance,
            **self._method(),
        }

    def _method(self) -> dict:
        """Library, version and mode: what else changes the numbers."""
        return {}

    def score(self, inputs: Inputs) -> Score:
        if inputs.reference is None:
            raise MetricFailure(f"{self.name} needs reference audio and this item has none")
        if inputs.reference.sample_rate < self.sample_rate:
            # Upsampling cannot restore the missing band: the score would describe the resampler.
            raise MetricFailure(
                f"{self.name} scores at {self.sample_rate} Hz but the reference is "
                f"{inputs.reference.sample_rate} Hz; use a metric for that band (e.g. pesq_nb)")
        ref = inputs.reference.at(self.sample_rate).samples
        est = inputs.estimate.at(self.sample_rate).samples
        length_difference = len(est) - len(ref)
        policy = self.params["align"]
        if policy == "strict":
            mismatch = length_mismatch(len(ref), len(est), self.sample_rate)
            if mismatch:
                raise MetricFailure(mismatch)
            policy = "trim"  # the difference is within tolerance: cut it off the longer signal
        ref, est = align_lengths(ref, est, policy)
        value = isolation.call(self._compute, ref, est) if self.isolate else self._compute(ref, est)
        extra = {"samples": len(ref), "length_difference": length_difference}
        return Score(value=value, extra=extra)

    def _compute(self, reference: np.ndarray, estimate: np.ndarray) -> float:
        raise NotImplementedError


class _Pesq(_ReferenceMetric):
    unit: ClassVar[str] = "MOS-LQO"
    mode: ClassVar[str]
    standard: ClassVar[str]
    isolate = True  # the ITU C code can SIGSEGV (utterance table overflow)

    def _method(self) -> dict:
        return {"library": "pesq", "library_version": _library_version("pesq"),
                "mode": self.mode, "standard": self.standard,
                "max_seconds": PESQ_MAX_SECONDS}

    def _compute(self, reference, estimate) -> float:
        return pesq_score(reference=reference, estimate=estimate, sample_rate=self.sample_rate, mode=self.mode)


class PesqWB(_Pesq):
    """Wide-band PESQ (ITU-T P.862.2) at 16 kHz, MOS-LQO in (0.999, 4.644]."""

    name = "pesq_wb"
    sample_rate = 16000
    mode = "wb"
    standard = "ITU-T P.862.2"


class PesqNB(_Pesq):
    """Narrow-band PESQ (ITU-T P.862 + P.862.1 mapping) at 8 kHz, MOS-LQO in (0.999, 4.549]."""

    name = "pesq_nb"
    sample_rate = 8000
    mode = "nb"
    standard = "ITU-T P.862 + P.862.1"


class _StoiBase(_ReferenceMetric):
    unit: ClassVar[str] = ""
    sample_rate: ClassVar[int] = 16000
    extended: ClassVar[bool]

    def _method(self) -> dict:
        return {"library": "pystoi", "library_version": _library_version("pystoi"),
                "extended": self.extended, "internal_rate": STOI_INTERNAL_RATE,
                "internal_resampler": "pystoi resample_oct (16 kHz -> 10 kHz)"}

    def _compute(self, reference, estimate) -> float:
        return stoi_score(reference=reference, estimate=estimate, sample_rate=self.sample_rate,
                          extended=self.extended)


class Stoi(_StoiBase):
    """STOI (Taal et al. 2011): audio at 16 kHz, pystoi resamples to 10 kHz internally."""

    name = "stoi"
    extended = False


class Estoi(_StoiBase):
    """Extended STOI (Jensen & Taal 2016): audio at 16 kHz, pystoi resamples to 10 kHz."""

    name = "estoi"
    extended = True


class SiSdr(_ReferenceMetric):
    """SI-SDR in dB at 16 kHz, zero-mean by default; clamped to +-100 dB (exact copies are +inf).

    Parameters: ``align`` ("strict" | "trim" | "pad"), ``zero_mean`` (bool, default True;
    torchmetrics' default is False).
    """

    name = "si_sdr"
    unit = "dB"
    sample_rate = 16000
    defaults = {"align": "strict", "zero_mean": True}

    def __init__(self, **params):
        super().__init__(**params)
        if not isinstance(self.params["zero_mean"], bool):
            zero_mean = self.params["zero_mean"]
            raise ConfigError(f"metric 'si_sdr': zero_mean must be true or false, got {zero_mean!r}")

    def _method(self) -> dict:
        return {"library": "qtts_bench (numpy, float64)", "limit_db": SI_SDR_LIMIT_DB}

    def _compute(self, reference, estimate) -> float:
        value = si_sdr(reference=reference, estimate=estimate, zero_mean=self.params["zero_mean"])
        return min(max(value, -SI_SDR_LIMIT_DB), SI_SDR_LIMIT_DB)

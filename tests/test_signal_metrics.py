"""Signal metrics (PESQ, STOI, ESTOI, SI-SDR) against independent references.

References used, with tolerances:
* PESQ maxima: the published ITU-T mapping functions (P.862.1 for NB, P.862.2 for WB) applied to
  the largest raw P.862 score, 4.5 (zero disturbance); 1e-5 (the C code maps in float32).
  Properties P.862 guarantees by design (level, polarity and delay alignment; asymmetry) and
  monotonic decrease with SNR. No ITU conformance audio ships in any package we can install
  (the `pesq` sdist has none), so no conformance pair is checked here.
* STOI/ESTOI: exact properties of the algorithm (identity, gain and polarity invariance give 1
  within 1e-9; silent-frame removal ignores appended silence) and monotonicity in SNR. pystoi
  itself is verified against Taal's MATLAB code by its authors (rtol 1e-4); no second
  implementation installs offline (fast-stoi needs a Rust build), so none is compared.
* SI-SDR: the analytic value of an orthogonal construction (1e-9 dB), the torchmetrics
  docstring examples (18.4030 dB SI-SDR with zero_mean=False, 15.0918 dB SI-SNR = zero-mean
  SI-SDR; 5e-5, they are printed to 4 decimals) and fast-bss-eval's independent si_sdr (1e-6 dB)
  when installed.
Wrapper-equals-direct-call tests only check plumbing (resampling, alignment), and say so.
"""

from __future__ import annotations

import math
from importlib.metadata import version

import numpy as np
import pytest

from qtts_bench.audio import Audio, align_lengths
from qtts_bench.errors import ConfigError, MetricFailure
from qtts_bench.metrics.base import Inputs
from qtts_bench.metrics.signal import (
    Estoi,
    PesqNB,
    PesqWB,
    SiSdr,
    Stoi,
    pesq_score,
    si_sdr,
    stoi_score,
)


def speech(seconds: float, rate: int, seed: int = 0) -> np.ndarray:
    """Harmonic 'voice' (gliding F0, three formants) with 4 Hz syllables and pauses, peak 0.5."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    f0 = 120 + 30 * np.sin(2 * np.pi * 0.8 * t + rng.uniform(0, 6))
    phase = 2 * np.pi * np.cumsum(f0) / rate
    x = np.zeros_like(t)
    for k in range(1, 25):
        gain = sum(np.exp(-((k * 120 - f) / 200.0) ** 2) for f in (600, 1600, 2600)) + 0.03
        x += gain * np.sin(k * phase) * (k * f0 < rate / 2)
    envelope = np.clip(np.sin(2 * np.pi * 4 * t + rng.uniform(0, 6)), 0, None) ** 0.5
    envelope *= np.sin(2 * np.pi * 0.5 * t) > -0.8
    x = x * envelope + 1e-3 * rng.standard_normal(len(t))
    return 0.5 * x / np.max(np.abs(x))


def with_noise(x: np.ndarray, snr_db: float, seed: int = 1) -> np.ndarray:
    """``x`` plus white Gaussian noise at ``snr_db`` (power ratio over the whole clip)."""
    noise = np.random.default_rng(seed).standard_normal(len(x))
    noise *= math.sqrt(np.mean(x**2) / np.mean(noise**2)) * 10 ** (-snr_db / 20)
    return x + noise


def mos_lqo(raw: float, mode: str) -> float:
    """ITU-T P.862.1 (NB) / P.862.2 (WB) mapping from raw P.862 score to MOS-LQO."""
    a, b = (1.3669, 3.8224) if mode == "wb" else (1.4945, 4.6607)
    return 0.999 + 4.0 / (1.0 + math.exp(-a * raw + b))


PESQ_CASES = [("wb", 16000), ("nb", 8000)]


# --- PESQ ---------------------------------------------------------------------------------

@pytest.mark.parametrize("mode,rate", PESQ_CASES)
def test_pesq_identical_signals_give_the_itu_maximum(mode, rate):
    x = speech(3.0, rate)
    expected = mos_lqo(4.5, mode)  # 4.6439 WB, 4.5486 NB
    assert pesq_score(reference=x, estimate=x, sample_rate=rate, mode=mode) == pytest.approx(expected, abs=1e-5)


@pytest.mark.parametrize("mode,rate", PESQ_CASES)
def test_pesq_falls_with_snr_and_stays_in_the_mapped_range(mode, rate):
    x = speech(3.0, rate)
    scores = [pesq_score(reference=x, estimate=with_noise(x, snr), sample_rate=rate, mode=mode)
              for snr in (40, 30, 20, 10, 0)]
    assert all(a > b for a, b in zip(scores, scores[1:])), scores
    # the mapping's floor is 0.999 (the C code does not clip the raw score at -0.5)
    assert 0.999 < min(scores) and max(scores) < mos_lqo(4.5, mode)


def test_pesq_aligns_level_polarity_and_delay_but_is_not_symmetric():
    x = speech(3.0, 16000)
    y = with_noise(x, 25)
    base = pesq_score(reference=x, estimate=y, sample_rate=16000, mode="wb")
    delayed = np.concatenate([np.zeros(160), y[:-160]])  # 10 ms
    for variant in (0.5 * y, 3.0 * y, -y, delayed):
        value = pesq_score(reference=x, estimate=variant, sample_rate=16000, mode="wb")
        assert value == pytest.approx(base, abs=0.01)
    swapped = pesq_score(reference=y, estimate=x, sample_rate=16000, mode="wb")
    assert abs(swapped - base) > 0.05


@pytest.mark.parametrize("metric_cls", [PesqWB, PesqNB])
def test_pesq_metric_equals_a_direct_pesq_call_after_resampling(metric_cls):
    """Plumbing only: our class resamples 24 kHz audio and trims, then calls pesq.pesq."""
    import pesq

    rate = metric_cls.sample_rate
    ref = Audio(speech(2.0, 24000).astype(np.float32), 24000)
    est = Audio(with_noise(ref.samples, 20).astype(np.float32)[:-240], 24000)  # 10 ms shorter
    score = metric_cls().score(Inputs(item_id="u1", estimate=est, reference=ref))
    r, e = align_lengths(ref.at(rate).samples, est.at(rate).samples, "trim")
    assert score.value == pesq.pesq(rate, r.astype(np.float64), e.astype(np.float64), metric_cls.mode)
    length_difference = len(est.at(rate).samples) - len(ref.at(rate).samples)
    assert score.extra == {"samples": len(r), "length_difference": length_difference}
    assert length_difference < 0


def test_pesq_short_clip_fails_with_the_reason():
    x = speech(0.2, 16000)
    with pytest.raises(MetricFailure, match="too short for PESQ.*0.200 s"):
        pesq_score(reference=x, estimate=x, sample_rate=16000, mode="wb")


def test_pesq_no_utterances_from_the_c_code_becomes_a_failure():
    t = np.arange(16000) / 16000
    hum = np.sin(2 * np.pi * 20 * t)  # below the WB input filter: the C code finds no speech
    with pytest.raises(MetricFailure, match="no speech utterances"):
        pesq_score(reference=hum, estimate=hum, sample_rate=16000, mode="wb")


def test_pesq_wrong_rate_or_mode():
    x = speech(1.0, 8000)
    with pytest.raises(MetricFailure, match="WB needs a sample rate of 16000"):
        pesq_score(reference=x, estimate=x, sample_rate=8000, mode="wb")
    with pytest.raises(MetricFailure, match="NB needs a sample rate of 8000 or 16000"):
        pesq_score(reference=x, estimate=x, sample_rate=22050, mode="nb")
    with pytest.raises(ConfigError, match="'wb' or 'nb'"):
        pesq_score(reference=x, estimate=x, sample_rate=8000, mode="swb")


# --- failures shared by all pure functions ---------------------------------------------------

def _pesq(reference, estimate):
    return pesq_score(reference=reference, estimate=estimate, sample_rate=16000, mode="wb")


def _stoi(reference, estimate):
    return stoi_score(reference=reference, estimate=estimate, sample_rate=16000)


def _estoi(reference, estimate):
    return stoi_score(reference=reference, estimate=estimate, sample_rate=16000, extended=True)


def _si_sdr(reference, estimate):
    return si_sdr(reference=reference, estimate=estimate)


FUNCTIONS = [_pesq, _stoi, _estoi, _si_sdr]
x16 = speech(1.0, 16000)
with_nan = x16.copy()
with_nan[100] = np.nan
with_inf = x16.copy()
with_inf[5] = np.inf
BAD_PAIRS = {
    "length": (x16, x16[:-1], "lengths differ"),
    "empty": (np.zeros(0), np.zeros(0), "reference is empty"),
    "nan": (x16, with_nan, "estimate contains NaN"),
    "inf": (with_inf, x16, "reference contains NaN or infinite"),
    "silent estimate": (x16, np.zeros_like(x16), "estimate is all silence"),
    "silent reference": (np.zeros_like(x16), x16, "reference is all silence"),
    "2-D": (x16[None, :], x16[None, :], "must be 1-D"),
}


@pytest.mark.parametrize("function", FUNCTIONS, ids=lambda f: f.__name__.strip("_"))
@pytest.mark.parametrize("case", BAD_PAIRS, ids=str)
def test_unusable_input_raises_metric_failure_with_reason(function, case):
    reference, estimate, reason = BAD_PAIRS[case]
    with pytest.raises(MetricFailure, match=reason):
        function(reference, estimate)


# --- STOI / ESTOI -------------------------------------------------------------------------

@pytest.mark.parametrize("extended", [False, True])
def test_stoi_is_one_for_identical_scaled_or_inverted_estimates(extended):
    x = speech(2.0, 16000)
    for estimate in (x, 0.3 * x, -x, 4.0 * x):
        value = stoi_score(reference=x, estimate=estimate, sample_rate=16000, extended=extended)
        assert value == pytest.approx(1.0, abs=1e-9)


@pytest.mark.parametrize("extended", [False, True])
def test_stoi_falls_with_snr(extended):
    x = speech(2.0, 16000)
    scores = [stoi_score(reference=x, estimate=with_noise(x, snr), sample_rate=16000, extended=extended)
              for snr in (20, 10, 0, -10)]
    assert all(a > b for a, b in zip(scores, scores[1:])), scores
    assert 0.0 < scores[-1] and scores[0] < 1.0


def test_stoi_ignores_appended_silence():
    """Frames 40 dB below the reference's loudest are removed before scoring (Taal et al.)."""
    x = speech(2.0, 16000)
    y = with_noise(x, 5)
    pad = np.zeros(8000)
    base = stoi_score(reference=x, estimate=y, sample_rate=16000)
    padded = stoi_score(reference=np.concatenate([x, pad]), estimate=np.concatenate([y, pad]), sample_rate=16000)
    assert padded == pytest.approx(base, abs=0.02)


def test_stoi_too_little_speech_fails_instead_of_returning_1e_5():
    x = speech(0.3, 16000)
    with pytest.raises(MetricFailure, match="too little non-silent speech"):
        stoi_score(reference=x, estimate=x, sample_rate=16000)


def test_stoi_rate_choice_moves_scores_by_less_than_1e_3():
    """Documented choice: we feed pystoi 16 kHz and let it resample; resampling to 10 kHz with
    soxr first would give nearly the same number."""
    x = speech(3.0, 16000)
    y = with_noise(x, 5)
    ours = stoi_score(reference=x, estimate=y, sample_rate=16000)
    x10k, y10k = (Audio(s.astype(np.float32), 16000).at(10000).samples for s in (x, y))
    alternative = stoi_score(reference=x10k, estimate=y10k, sample_rate=10000)
    assert abs(ours - alternative) < 1e-3


@pytest.mark.parametrize("metric_cls", [Stoi, Estoi])
def test_stoi_metric_equals_a_direct_pystoi_call_after_resampling(metric_cls):
    """Plumbing only: 44.1 kHz audio resampled to 16 kHz, zero-padded, passed to pystoi."""
    from pystoi import stoi

    ref = Audio(speech(2.0, 44100).astype(np.float32), 44100)
    est = Audio(with_noise(ref.samples, 10).astype(np.float32)[:-441], 44100)
    score = metric_cls(align="pad").score(Inputs(item_id="u1", estimate=est, reference=ref))
    r, e = align_lengths(ref.at(16000).samples, est.at(16000).samples, "pad")
    direct = stoi(r.astype(np.float64), e.astype(np.float64), 16000, extended=metric_cls.extended)
    assert score.value == pytest.approx(direct, abs=1e-12)
    assert score.extra["samples"] == len(r) and score.extra["length_difference"] < 0


# --- SI-SDR -------------------------------------------------------------------------------

@pytest.mark.parametrize("gain,snr_db", [(1.0, 10.0), (0.25, 0.0), (-2.0, 30.0), (5.0, -12.5)])
def test_si_sdr_of_an_orthogonal_construction_is_exact(gain, snr_db):
    rng = np.random.default_rng(7)
    r = rng.standard_normal(16000)
    r -= r.mean()
    n = rng.standard_normal(16000)
    n -= n.mean()
    n -= (n @ r) / (r @ r) * r  # orthogonal to r and zero-mean
    n *= math.sqrt((gain**2 * (r @ r)) / (n @ n) * 10 ** (-snr_db / 10))
    expected = 10 * math.log10(gain**2 * (r @ r) / (n @ n))
    assert expected == pytest.approx(snr_db, abs=1e-9)
    for zero_mean in (True, False):
        assert si_sdr(reference=r, estimate=gain * r + n, zero_mean=zero_mean) == pytest.approx(expected, abs=1e-9)


def test_si_sdr_is_scale_invariant():
    x = speech(1.0, 16000)
    y = with_noise(x, 8)
    base = si_sdr(reference=x, estimate=y)
    for c in (0.01, -3.0, 100.0):
        assert si_sdr(reference=x, estimate=c * y) == pytest.approx(base, abs=1e-9)
        assert si_sdr(reference=c * x, estimate=y) == pytest.approx(base, abs=1e-9)


def test_si_sdr_zero_mean_removes_a_dc_offset():
    x = speech(1.0, 16000)
    y = with_noise(x, 8)
    offset = y + 0.2
    clean = {zm: si_sdr(reference=x, estimate=y, zero_mean=zm) for zm in (True, False)}
    assert si_sdr(reference=x, estimate=offset, zero_mean=True) == pytest.approx(clean[True], abs=1e-9)
    assert si_sdr(reference=x, estimate=offset, zero_mean=False) < clean[False] - 1.0


def test_si_sdr_matches_the_torchmetrics_docstring_examples():
    target = np.array([3.0, -0.5, 2.0, 7.0])
    preds = np.array([2.5, 0.0, 2.0, 8.0])
    # ScaleInvariantSignalDistortionRatio() (default zero_mean=False) -> 18.4030
    assert si_sdr(reference=target, estimate=preds, zero_mean=False) == pytest.approx(18.4030, abs=5e-5)
    # ScaleInvariantSignalNoiseRatio, i.e. SI-SDR with zero_mean=True -> 15.0918
    assert si_sdr(reference=target, estimate=preds, zero_mean=True) == pytest.approx(15.0918, abs=5e-5)


@pytest.mark.parametrize("zero_mean", [True, False])
def test_si_sdr_matches_fast_bss_eval(zero_mean):
    fast_bss_eval = pytest.importorskip("fast_bss_eval", reason="fast-bss-eval (independent SI-SDR) not installed")
    for snr in (-5, 5, 25):
        r = speech(1.0, 16000, seed=snr + 10) + 0.05
        e = 0.7 * with_noise(r, snr, seed=snr + 20) - 0.03
        theirs = float(fast_bss_eval.si_sdr(r[None, :], e[None, :], zero_mean=zero_mean)[0])
        assert si_sdr(reference=r, estimate=e, zero_mean=zero_mean) == pytest.approx(theirs, abs=1e-6)


def test_si_sdr_exact_copy_is_infinite_and_the_metric_clamps_it():
    x = speech(1.0, 16000)
    assert si_sdr(reference=x, estimate=2 * x) == math.inf
    audio = Audio(x.astype(np.float32), 16000)
    assert SiSdr().score(Inputs(item_id="u", estimate=audio, reference=audio)).value == 100.0


def test_si_sdr_constant_reference_has_no_energy_after_mean_removal():
    with pytest.raises(MetricFailure, match="no energy after mean removal"):
        si_sdr(reference=np.full(100, 0.3), estimate=np.linspace(-1, 1, 100))
    assert math.isfinite(si_sdr(reference=np.full(100, 0.3), estimate=np.linspace(-1, 1, 100), zero_mean=False))


def test_si_sdr_metric_trims_and_passes_zero_mean():
    """Plumbing only: trim alignment and the zero_mean parameter reach the pure function."""
    x = speech(1.0, 16000)
    ref = Audio((x + 0.1).astype(np.float32), 16000)
    est = Audio(np.concatenate([with_noise(x, 10), np.ones(50)]).astype(np.float32), 16000)
    r, e = align_lengths(ref.samples, est.samples, "trim")
    for zero_mean in (True, False):
        value = SiSdr(zero_mean=zero_mean).score(Inputs(item_id="u", estimate=est, reference=ref)).value
        assert value == pytest.approx(si_sdr(reference=r, estimate=e, zero_mean=zero_mean), abs=1e-12)


# --- metric classes: metadata, parameters, settings ----------------------------------------

ALL = [PesqWB, PesqNB, Stoi, Estoi, SiSdr]
EXPECTED = {  # name, unit, sample rate, library
    PesqWB: ("pesq_wb", "MOS-LQO", 16000, "pesq"),
    PesqNB: ("pesq_nb", "MOS-LQO", 8000, "pesq"),
    Stoi: ("stoi", "", 16000, "pystoi"),
    Estoi: ("estoi", "", 16000, "pystoi"),
    SiSdr: ("si_sdr", "dB", 16000, None),
}


@pytest.mark.parametrize("metric_cls", ALL, ids=lambda c: c.__name__)
def test_metric_declares_its_metadata_and_settings(metric_cls):
    name, unit, rate, library = EXPECTED[metric_cls]
    described = metric_cls.describe()
    assert (metric_cls.name, described["unit"], described["sample_rate"]) == (name, unit, rate)
    assert described["direction"] == "higher" and described["aggregation"] == "mean"
    assert described["requires"] == ["reference"]
    settings = metric_cls().settings()
    # the default was "trim" (silent cut to the shorter signal) before issue 10; now "strict"
    assert settings["align"] == "strict" and settings["sample_rate"] == rate and settings["version"]
    assert settings["resampler"].startswith("soxr")
    if library:
        assert settings["library"] == library and settings["library_version"] == version(library)


def test_settings_name_the_mode_and_protocol():
    assert PesqWB().settings()["mode"] == "wb" and PesqNB().settings()["mode"] == "nb"
    assert Stoi().settings()["extended"] is False and Estoi().settings()["extended"] is True
    assert Stoi().settings()["internal_rate"] == 10000
    assert SiSdr().settings()["zero_mean"] is True and SiSdr(zero_mean=False).settings()["zero_mean"] is False
    assert SiSdr().settings()["limit_db"] == 100.0
    assert PesqWB(align="pad").settings()["align"] == "pad"


@pytest.mark.parametrize("metric_cls", ALL, ids=lambda c: c.__name__)
def test_bad_parameters_are_config_errors(metric_cls):
    with pytest.raises(ConfigError, match="align must be one of strict, trim, pad"):
        metric_cls(align="bogus")
    with pytest.raises(ConfigError, match="unknown parameter"):
        metric_cls(mode="wb", bogus=1)


def test_si_sdr_zero_mean_must_be_boolean():
    with pytest.raises(ConfigError, match="zero_mean must be true or false"):
        SiSdr(zero_mean="yes")
    with pytest.raises(ConfigError, match="unknown parameter"):
        Stoi(zero_mean=True)


@pytest.mark.parametrize("metric_cls", ALL, ids=lambda c: c.__name__)
def test_metric_without_reference_fails(metric_cls):
    audio = Audio(speech(1.0, 16000).astype(np.float32), 16000)
    with pytest.raises(MetricFailure, match="needs reference audio"):
        metric_cls().score(Inputs(item_id="u", estimate=audio))


@pytest.mark.parametrize("metric_cls", ALL, ids=lambda c: c.__name__)
def test_metric_reports_a_silent_estimate_as_failure_not_a_score(metric_cls):
    ref = Audio(speech(1.0, 16000).astype(np.float32), 16000)
    silent = Audio(np.zeros(16000, dtype=np.float32), 16000)
    with pytest.raises(MetricFailure, match="estimate is all silence"):
        metric_cls().score(Inputs(item_id="u", estimate=silent, reference=ref))


def test_catalog_points_at_these_classes():
    from qtts_bench.registry import METRICS

    for metric_cls in ALL:
        assert METRICS.get(metric_cls.name) is metric_cls


def test_reference_below_the_metric_rate_is_a_missing_value_not_a_score():
    from qtts_bench.audio import Audio
    from qtts_bench.metrics.base import Inputs
    from qtts_bench.metrics.signal import PesqNB, PesqWB

    rng = np.random.default_rng(0)
    narrow = Audio(rng.standard_normal(8000).astype(np.float32) * 0.1, 8000)
    inputs = Inputs("u", estimate=narrow, reference=narrow)
    with pytest.raises(MetricFailure, match="scores at 16000 Hz but the reference is 8000 Hz"):
        PesqWB().score(inputs)
    assert PesqNB().score(inputs).value > 4.0  # narrow-band PESQ is the right tool at 8 kHz

"""STOI / ESTOI with a shared front end (qtts_bench.metrics.stoi_pair) against pystoi itself.

Reference: ``pystoi.stoi`` (the library the metric wraps), tolerance 0: the split computation
must give bit-identical values. ESTOI adds EPS-scaled noise from numpy's global RNG, so both
sides are called with the same global seed.
"""

from __future__ import annotations

import numpy as np
import pytest
from pystoi import stoi as pystoi_stoi

from qtts_bench.audio import Audio, read_audio
from qtts_bench.data.bundled import bundled_dir
from qtts_bench.metrics import stoi_pair as sp
from qtts_bench.testing import speech_like as speech


def with_noise(x: np.ndarray, snr_db: float, seed: int = 1) -> np.ndarray:
    noise = np.random.default_rng(seed).standard_normal(len(x))
    return x + noise * np.sqrt(np.mean(x**2) / np.mean(noise**2)) * 10 ** (-snr_db / 20)


def _pairs():
    x = speech(2.5, 16000, seed=3)
    real = read_audio(next(iter(sorted((bundled_dir() / "audio").glob("*.flac"))))).at(16000).samples
    real = real.astype(np.float64)
    lowpassed = Audio(Audio(real.astype(np.float32), 16000).at(4000).samples, 4000).at(16000).samples
    lowpassed = np.resize(lowpassed.astype(np.float64), real.shape)  # a band-limited "codec" output
    return {
        "synthetic+noise 16k": (x, with_noise(x, 5), 16000),
        "synthetic+noise 10k (no resampling)": (x[:25000], with_noise(x, -5)[:25000], 10000),
        "speech, band-limited": (real, lowpassed, 16000),
        "speech, identical": (real, real.copy(), 16000),
    }


@pytest.fixture(autouse=True)
def empty_memo():
    sp._memo.clear()
    yield
    sp._memo.clear()


@pytest.mark.parametrize("case", list(_pairs()))
@pytest.mark.parametrize("extended", [False, True])
def test_values_are_bit_identical_to_pystoi(case, extended):
    x, y, fs = _pairs()[case]
    np.random.seed(7)
    expected = pystoi_stoi(x, y, fs, extended=extended)
    np.random.seed(7)
    assert sp.stoi_pair(x, y, fs, extended=extended) == expected


def test_the_front_end_is_computed_once_per_pair_and_not_altered_by_either_measure():
    x, y, fs = _pairs()["synthetic+noise 16k"]
    calls = []
    original = sp._front_end

    def counting(*args):
        calls.append(1)
        return original(*args)

    sp._front_end = counting
    try:
        first = sp.stoi_pair(x, y, fs)
        np.random.seed(1)
        estoi = sp.stoi_pair(x, y, fs, extended=True)
        again = sp.stoi_pair(x.copy(), y.copy(), fs)  # equal content, other arrays: same memo entry
    finally:
        sp._front_end = original
    assert len(calls) == 1
    assert again == first == pystoi_stoi(x, y, fs)
    np.random.seed(1)
    assert estoi == pystoi_stoi(x, y, fs, extended=True)


def test_the_memo_is_keyed_by_content_and_rate_and_bounded(monkeypatch):
    monkeypatch.setattr(sp, "MEMO_SIZE", 3)
    x, y, fs = _pairs()["synthetic+noise 16k"]
    values = [sp.stoi_pair(x, with_noise(x, snr, seed=snr), fs) for snr in (0, 5, 10, 15)]
    assert len(sp._memo) == 3
    assert all(a < b for a, b in zip(values, values[1:]))  # different estimates, different values
    assert sp.stoi_pair(x, y, 16000) != sp.stoi_pair(x, y, 20000)  # the rate is part of the key


def test_too_little_speech_raises_and_is_memoised():
    x = speech(0.3, 16000)
    for _ in range(2):
        with pytest.raises(sp.TooFewFrames):
            sp.stoi_pair(x, x, 16000)
    assert len(sp._memo) == 1


def test_another_pystoi_version_is_delegated_to_pystoi(monkeypatch):
    s, utils, _ = sp._pystoi()
    monkeypatch.setattr(sp, "_pystoi", lambda: (s, utils, False))
    x, y, fs = _pairs()["synthetic+noise 16k"]
    assert sp.stoi_pair(x, y, fs) == pystoi_stoi(x, y, fs)
    assert not sp._memo
    with pytest.raises(sp.TooFewFrames):
        sp.stoi_pair(speech(0.3, 16000), speech(0.3, 16000), 16000)

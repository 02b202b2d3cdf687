"""STOI and ESTOI of one signal pair with pystoi's front end computed once.

``pystoi.stoi(x, y, fs, extended)`` runs the same front end for both measures (resampling to
10 kHz, silent-frame removal, STFT, 1/3-octave band envelopes), about 70 % of its time, then a
short measure-specific stage. A codec suite scores both on every pair, so this module runs
pystoi's own front-end functions once per pair (a small per-process memo keyed by the two
signals' bytes) and each measure's final stage as pystoi writes it: the values are identical to
``pystoi.stoi`` (tested to be bit-equal on speech, noise and codec output, ``tests/test_stoi_pair.py``).
Written for pystoi 0.4.1, the pinned version; another version is delegated to ``pystoi.stoi``.
"""

from __future__ import annotations

import hashlib
import importlib
from collections import OrderedDict
from functools import lru_cache

import numpy as np

PYSTOI_VERSION = "0.4.1"  # the version whose stoi() this module splits in two
MEMO_SIZE = 256  # front ends kept per process: a chunk's worth; each is ~15 x frames floats x 2

_memo: OrderedDict = OrderedDict()


class TooFewFrames(Exception):
    """Fewer than 30 STFT frames remain after silent-frame removal (pystoi would return 1e-5)."""


@lru_cache(maxsize=1)
def _pystoi():
    """(pystoi's ``stoi`` module, its ``utils`` module, usable here?), looked up once per process."""
    from importlib.metadata import version

    module = importlib.import_module("pystoi.stoi")
    return module, importlib.import_module("pystoi.utils"), version("pystoi") == PYSTOI_VERSION


def _front_end(x: np.ndarray, y: np.ndarray, fs_sig: int) -> tuple[np.ndarray, np.ndarray]:
    """pystoi.stoi's steps up to the segments: -> (x_segments, y_segments), shape (J_windows, 15, 30)."""
    s, utils, _ = _pystoi()
    if fs_sig != s.FS:
        x = utils.resample_oct(x, s.FS, fs_sig)
        y = utils.resample_oct(y, s.FS, fs_sig)
    x, y = utils.remove_silent_frames(x, y, s.DYN_RANGE, s.N_FRAME, int(s.N_FRAME / 2))
    x_spec = utils.stft(x, s.N_FRAME, s.NFFT, overlap=2).transpose()
    y_spec = utils.stft(y, s.N_FRAME, s.NFFT, overlap=2).transpose()
    if x_spec.shape[-1] < s.N:
        raise TooFewFrames()
    x_tob = np.sqrt(np.matmul(s.OBM, np.square(np.abs(x_spec))))
    y_tob = np.sqrt(np.matmul(s.OBM, np.square(np.abs(y_spec))))
    x_segments = np.array([x_tob[:, m - s.N:m] for m in range(s.N, x_tob.shape[1] + 1)])
    y_segments = np.array([y_tob[:, m - s.N:m] for m in range(s.N, x_tob.shape[1] + 1)])
    return x_segments, y_segments


def _segments(x: np.ndarray, y: np.ndarray, fs_sig: int):
    """The front end of (x, y, fs), memoised; a TooFewFrames result is memoised too."""
    key = (int(fs_sig), x.dtype.str, hashlib.blake2b(x.tobytes(), digest_size=16).digest(),
           y.dtype.str, hashlib.blake2b(y.tobytes(), digest_size=16).digest())
    if key in _memo:
        _memo.move_to_end(key)
        found = _memo[key]
    else:
        try:
            found = _front_end(x, y, fs_sig)
        except TooFewFrames as exc:
            found = exc
        _memo[key] = found
        if len(_memo) > MEMO_SIZE:
            _memo.popitem(last=False)
    if isinstance(found, TooFewFrames):
        raise TooFewFrames()
    return found


def stoi_pair(x: np.ndarray, y: np.ndarray, fs_sig: int, extended: bool = False) -> float:
    """``pystoi.stoi(x, y, fs_sig, extended)`` sharing the front end between the two measures.

    Args:
        x: clean reference, float64, shape (n,); y: estimate, same shape; fs_sig: Hz.

    Raises:
        TooFewFrames: where pystoi warns and returns 1e-5.
    """
    s, utils, supported = _pystoi()
    if not supported:  # another pystoi: its own function (same warning protocol as the caller expects)
        import warnings

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            value = s.stoi(x, y, fs_sig, extended=extended)
        if any("Not enough STFT frames" in str(w.message) for w in caught):
            raise TooFewFrames()
        return float(value)
    if x.shape != y.shape:
        raise ValueError(f"x and y should have the same length, found {x.shape} and {y.shape}")
    x_segments, y_segments = _segments(x, y, fs_sig)
    N = s.N
    if extended:
        x_n = utils.row_col_normalize(x_segments)
        y_n = utils.row_col_normalize(y_segments)
        return float(np.sum(x_n * y_n / N) / x_n.shape[0])
    # pystoi 0.4.1's STOI stage, unchanged (new arrays: the memoised segments stay intact)
    normalization_consts = (np.linalg.norm(x_segments, axis=2, keepdims=True)
                            / (np.linalg.norm(y_segments, axis=2, keepdims=True) + utils.EPS))
    y_segments_normalized = y_segments * normalization_consts
    clip_value = 10 ** (-s.BETA / 20)
    y_primes = np.minimum(y_segments_normalized, x_segments * (1 + clip_value))
    y_primes = y_primes - np.mean(y_primes, axis=2, keepdims=True)
    x_centred = x_segments - np.mean(x_segments, axis=2, keepdims=True)
    y_primes /= (np.linalg.norm(y_primes, axis=2, keepdims=True) + utils.EPS)
    x_centred /= (np.linalg.norm(x_centred, axis=2, keepdims=True) + utils.EPS)
    correlations_components = y_primes * x_centred
    J = x_centred.shape[0]
    M = x_centred.shape[1]
    return float(np.sum(correlations_components) / (J * M))

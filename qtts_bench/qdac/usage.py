"""Codebook usage and bitrate of token codecs (numpy only).

For codes of shape (n_codebooks, frames) with values in [0, codebook_size):

* ``entropy_bits``: Shannon entropy of each codebook's code histogram (bits/code);
* ``perplexity``: 2 ** entropy (effective number of codes in use);
* ``dead_fraction``: share of the codebook never used;
* ``bitrate``: frame_rate * n_codebooks * ceil(log2(codebook_size)) bits/s (fixed-length codes),
  and ``entropy_bitrate``: frame_rate * sum of entropies (a lower bound with entropy coding).

Per utterance, histograms are few-sample estimates; aggregate by summing histograms over
utterances (:func:`aggregate_usage`), which is exact for the corpus.
"""

from __future__ import annotations

import math

import numpy as np


def code_histograms(codes: np.ndarray, codebook_size: int) -> np.ndarray:
    """(n_codebooks, frames) int -> (n_codebooks, codebook_size) counts. Raises ValueError out of range."""
    c = np.asarray(codes)
    if c.ndim != 2:
        raise ValueError(f"codes must have shape (codebooks, frames), got {c.shape}")
    if c.size and (c.min() < 0 or c.max() >= codebook_size):
        raise ValueError(f"codes out of range [{c.min()}, {c.max()}] for codebook_size {codebook_size}")
    return np.stack([np.bincount(row.astype(np.int64), minlength=codebook_size) for row in c])


def usage_from_histograms(histograms: np.ndarray, frame_rate: float) -> dict:
    """Usage statistics from (n_codebooks, codebook_size) counts."""
    h = np.asarray(histograms, dtype=np.float64)
    n_codebooks, size = h.shape
    totals = h.sum(axis=1, keepdims=True)
    p = np.divide(h, totals, out=np.zeros_like(h), where=totals > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        entropy = -np.where(p > 0, p * np.log2(p), 0.0).sum(axis=1)
    bits_per_code = math.ceil(math.log2(size))
    return {
        "n_codebooks": n_codebooks,
        "codebook_size": size,
        "frames": int(totals[0, 0]) if n_codebooks else 0,
        "entropy_bits": entropy.tolist(),
        "perplexity": np.power(2.0, entropy).tolist(),
        "dead_fraction": (h == 0).mean(axis=1).tolist(),
        "mean_perplexity": float(np.power(2.0, entropy).mean()),
        "mean_dead_fraction": float((h == 0).mean()),
        "bitrate": frame_rate * n_codebooks * bits_per_code,
        "entropy_bitrate": float(frame_rate * entropy.sum()),
    }


def codebook_usage(codes: np.ndarray, codebook_size: int, frame_rate: float) -> dict:
    """Usage statistics of one utterance's codes (n_codebooks, frames)."""
    return usage_from_histograms(code_histograms(codes, codebook_size), frame_rate)


def aggregate_usage(all_codes, codebook_size: int, frame_rate: float) -> dict:
    """Corpus usage: histograms summed over utterances (each (n_codebooks, frames))."""
    total = None
    for codes in all_codes:
        h = code_histograms(codes, codebook_size)
        total = h if total is None else total + h
    if total is None:
        raise ValueError("no utterances to aggregate")
    return usage_from_histograms(total, frame_rate)

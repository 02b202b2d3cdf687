"""Codebook usage of token codecs (numpy only): statistics and the harness metrics.

For codes of shape (n_codebooks, frames) with values in [0, codebook_size):

* ``entropy_bits``: Shannon entropy of each codebook's code histogram (bits/code);
* ``perplexity``: 2 ** entropy (effective number of codes in use);
* ``dead_fraction``: share of the codebook never used;
* ``bitrate``: frame_rate * n_codebooks * ceil(log2(codebook_size)) bits/s (fixed-length codes),
  and ``entropy_bitrate``: frame_rate * sum of entropies (a lower bound with entropy coding).

Per utterance, histograms are few-sample estimates; aggregate by summing histograms over
utterances (:func:`aggregate_usage`), which is exact for the corpus.

Harness metrics (they need a token codec: the runner passes its codes as ``Inputs.codes``):

* ``codebook_perplexity``: per utterance, the mean over codebooks of 2 ** entropy of that
  utterance's codes (bounded by its number of frames); each record keeps the sparse
  histograms as sufficient statistics, and ``summary.json`` adds the corpus ``pooled`` block
  (per-codebook perplexity and dead-code fraction of the summed histograms).
* ``codebook_entropy``: per utterance, the mean over codebooks of the entropy in bits per code.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import MetricFailure, NotApplicable
from .base import Inputs, Metric, Score


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


def sparse_histograms(histograms: np.ndarray) -> list[list[list[int]]]:
    """(n_codebooks, codebook_size) counts -> per codebook [[codes used...], [counts...]] (JSON-friendly)."""
    out = []
    for row in np.asarray(histograms):
        used = np.flatnonzero(row)
        out.append([used.tolist(), row[used].tolist()])
    return out


def pooled_usage(stats_list: list[dict]) -> dict | None:
    """Corpus usage from the ``stats`` of many ``codebook_perplexity`` scores (summed histograms).

    Utterances with different codebook counts or sizes cannot be pooled: returns None then.
    """
    shapes = {(s["codebook_size"], len(s["histograms"])) for s in stats_list}
    if len(shapes) != 1:
        return None
    size, n_codebooks = shapes.pop()
    total = np.zeros((n_codebooks, size), dtype=np.int64)
    for stats in stats_list:
        for row, (used, counts) in zip(total, stats["histograms"]):
            np.add.at(row, np.asarray(used, dtype=np.int64), np.asarray(counts, dtype=np.int64))
    usage = usage_from_histograms(total, stats_list[0].get("frame_rate") or 0.0)
    usage["n_utterances"] = len(stats_list)
    return usage


def _utterance_usage(inputs: Inputs) -> tuple[np.ndarray, int, dict]:
    """-> (histograms (n_codebooks, codebook_size), codebook_size, usage statistics).

    Raises NotApplicable when the system emits no codes, MetricFailure when its codes are unusable.
    """
    if inputs.codes is None:
        raise NotApplicable("the system emits no codec tokens (it is not a token codec or a codec-token TTS)")
    size = inputs.system_info.get("codebook_size")
    if not size:
        raise MetricFailure("the system does not report its codebook_size")
    codes = np.asarray(inputs.codes)
    if codes.ndim != 2 or codes.shape[1] == 0:
        raise MetricFailure(f"codes have shape {codes.shape}; expected (codebooks, frames > 0)")
    try:
        histograms = code_histograms(codes, int(size))
    except ValueError as exc:
        raise MetricFailure(f"invalid codes: {exc}") from None
    return histograms, int(size), usage_from_histograms(histograms, inputs.system_info.get("frame_rate") or 0.0)


class CodebookPerplexity(Metric):
    """Mean over codebooks of 2 ** (entropy of this utterance's codes); corpus value in ``pooled``."""

    name = "codebook_perplexity"
    direction = "higher"
    unit = "codes"
    requires = ("codes",)

    def aggregate(self, entries: list[dict]) -> dict:
        """Adds ``pooled``: corpus usage of the histograms summed over utterances."""
        stats = [e["stats"] for e in entries if e.get("value") is not None and e.get("stats")]
        return {**super().aggregate(entries), "pooled": pooled_usage(stats) if stats else None}

    def score(self, inputs: Inputs) -> Score:
        histograms, size, usage = _utterance_usage(inputs)
        stats = {"codebook_size": size, "frame_rate": inputs.system_info.get("frame_rate"),
                 "histograms": sparse_histograms(histograms)}
        return Score(usage["mean_perplexity"], stats=stats,
                     extra={"perplexity": [round(p, 3) for p in usage["perplexity"]],
                            "entropy_bitrate": usage["entropy_bitrate"], "frames": usage["frames"]})


class CodebookEntropy(Metric):
    """Mean over codebooks of the entropy of this utterance's codes, in bits per code."""

    name = "codebook_entropy"
    direction = "higher"
    unit = "bit/code"
    requires = ("codes",)

    def score(self, inputs: Inputs) -> Score:
        _, _, usage = _utterance_usage(inputs)
        return Score(float(np.mean(usage["entropy_bits"])),
                     extra={"entropy_bits": [round(e, 4) for e in usage["entropy_bits"]]})

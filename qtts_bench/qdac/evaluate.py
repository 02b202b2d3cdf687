"""Evaluate one QDAC checkpoint at several codebook prefixes (and baselines) on a dataset.

Per utterance: PESQ-WB, STOI, SI-SDR (the harness's metric functions, lengths trimmed to the
shorter signal), codebook usage and bits. Aggregates: mean with a percentile bootstrap CI, and
paired differences between prefixes (same utterances) with CIs. This is a development tool
for training; benchmark numbers come from ``qtts-bench run suites/qdac_codebooks.yaml``.
"""

from __future__ import annotations

import time

import numpy as np

from ..audio import align_lengths, read_audio
from ..errors import MetricFailure
from ..metrics.signal import pesq_score, si_sdr, stoi_score
from ..report.stats import Sample, bootstrap, paired_delta
from ..metrics.codebook import aggregate_usage, codebook_usage

METRICS = ("pesq_wb", "stoi", "si_sdr")


def score_pair(reference: np.ndarray, estimate: np.ndarray) -> dict:
    """16 kHz reference and estimate -> {metric: value or None}, reasons under '<metric>_reason'."""
    ref, est = align_lengths(reference, estimate, "trim")
    out = {}
    for name, fn in (("pesq_wb", lambda: pesq_score(reference=ref, estimate=est, sample_rate=16000, mode="wb")),
                     ("stoi", lambda: stoi_score(reference=ref, estimate=est, sample_rate=16000)),
                     ("si_sdr", lambda: si_sdr(reference=ref, estimate=est))):
        try:
            out[name] = float(fn())
        except MetricFailure as exc:
            out[name], out[f"{name}_reason"] = None, str(exc)
    return out


def evaluate_codec(codec, items, *, keep_codes: bool = False) -> list[dict]:
    """Encode/decode each item with a loaded codec (any harness Codec) and score it at 16 kHz."""
    rows = []
    for item in items:
        reference = read_audio(item.audio).at(16000)
        x = reference.at(codec.sample_rate).samples
        start = time.perf_counter()
        encoded = codec.encode(x)
        decoded = codec.decode(encoded)
        seconds = time.perf_counter() - start
        from ..audio import Audio

        estimate = Audio(np.asarray(decoded, dtype=np.float32), codec.sample_rate).at(16000).samples
        row = {"id": item.id, "seconds": seconds, "input_seconds": reference.duration,
               "encoded_bits": codec.encoded_bits(encoded), **score_pair(reference.samples, estimate)}
        if keep_codes:
            row["codes"] = np.asarray(encoded)
        rows.append(row)
    return rows


def summarize(rows: list[dict], seed: int = 0) -> dict:
    out = {}
    for metric in METRICS:
        values = np.array([r[metric] for r in rows if r.get(metric) is not None], dtype=np.float64)
        est = bootstrap(Sample(values), seed=seed)
        out[metric] = {"mean": est.value, "low": est.low, "high": est.high, "n": est.n,
                       "n_failed": len(rows) - est.n}
    seconds = sum(r["seconds"] for r in rows)
    audio = sum(r["input_seconds"] for r in rows)
    out["rtf"] = seconds / audio if audio else None
    bits = [r["encoded_bits"] for r in rows if r.get("encoded_bits") is not None]
    out["bitrate_measured"] = sum(bits) / audio if bits and audio else None
    return out


def paired(rows_a: list[dict], rows_b: list[dict], seed: int = 0) -> dict:
    """b − a per metric over utterances both scored, with bootstrap CIs."""
    out = {}
    for metric in METRICS:
        pairs = [(ra[metric], rb[metric]) for ra, rb in zip(rows_a, rows_b)
                 if ra.get(metric) is not None and rb.get(metric) is not None]
        a = Sample(np.array([p[0] for p in pairs]))
        b = Sample(np.array([p[1] for p in pairs]))
        est = paired_delta(a, b, seed=seed)
        out[metric] = {"delta": est.value, "low": est.low, "high": est.high, "n": est.n,
                       "excludes_zero": est.excludes_zero}
    return out


def evaluate_prefixes(checkpoint: str, items, prefixes=(4, 8, 16), device: str = "cpu") -> dict:
    """Scores, usage and paired deltas for one checkpoint decoded from each codebook prefix."""
    from ..systems.qdac import QdacCodec

    results, rows_by_k = {}, {}
    for k in prefixes:
        codec = QdacCodec(checkpoint=checkpoint, n_codebooks=k)
        codec.load(device)
        rows = evaluate_codec(codec, items, keep_codes=True)
        usage = aggregate_usage([r.pop("codes") for r in rows], codec.codebook_size, codec.frame_rate)
        results[f"qdac-{k}"] = {"bitrate": codec.nominal_bitrate, **summarize(rows), "usage": usage}
        rows_by_k[k] = rows
    deltas = {}
    ks = list(prefixes)
    for i, a in enumerate(ks):
        for b in ks[i + 1:]:
            deltas[f"qdac-{b} - qdac-{a}"] = paired(rows_by_k[a], rows_by_k[b])
    results["paired"] = deltas
    results["provenance"] = codec.provenance()
    results["per_utterance"] = {f"qdac-{k}": rows for k, rows in rows_by_k.items()}
    return results


__all__ = ["evaluate_prefixes", "evaluate_codec", "summarize", "paired", "codebook_usage"]

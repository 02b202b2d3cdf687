"""Training data for QDAC: utterances from registered datasets, held in memory, batched per step.

Batches are a pure function of (seed, step), so a resumed run sees exactly the batches an
uninterrupted run would have seen.

* reconstruction batch: ``batch_size`` rows of ``max_seconds``, each a random crop of a random
  utterance followed by further random utterances until the row is full (``pack_crops``; or,
  without packing, zero-padded to the longest crop);
* ASR batch: ``batch_size`` whole utterances that have a transcript of at most ``max_tokens``
  byte tokens and last at most ``asr_max_seconds`` (the transcript must cover the audio).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from ..audio import read_audio
from ..errors import ConfigError
from .asr_head import encode_text
from .config import SAMPLE_RATE


@dataclass
class Utterance:
    id: str
    samples: np.ndarray  # int16 at 16 kHz (memory: 2 bytes per sample)
    tokens: list | None  # byte tokens of the transcript, or None


def audio_hash(samples_16k: np.ndarray) -> str:
    """Content hash of 16 kHz audio quantised to int16 (matches FLAC-stored copies exactly)."""
    return hashlib.sha256(_to_int16(samples_16k).tobytes()).hexdigest()


def _to_int16(x: np.ndarray) -> np.ndarray:
    return np.round(np.clip(x, -1.0, 1.0) * 32767.0).astype(np.int16)


def _load_dataset(spec: dict):
    from ..registry import DATASETS

    return DATASETS.create(spec["dataset"], **(spec.get("params") or {}))


class TrainingData:
    """All training utterances in memory plus deterministic per-step batch sampling."""

    def __init__(self, utterances: list[Utterance], sources: dict):
        if not utterances:
            raise ConfigError("QDAC training: no training utterances (check the config's 'data')")
        self.utterances = utterances
        self.sources = sources
        self.with_text = [i for i, u in enumerate(utterances) if u.tokens is not None]

    @classmethod
    def from_specs(cls, data: list[dict], exclude: list[dict], min_seconds: float, max_tokens: int,
                   progress: bool = False) -> "TrainingData":
        """Load every item of ``data``; drop items whose audio or id is in any ``exclude`` dataset."""
        held_ids, held_hashes = set(), set()
        for spec in exclude:
            for item in _load_dataset(spec).items:
                held_ids.add(item.id)
                if item.audio:
                    held_hashes.add(audio_hash(read_audio(item.audio).at(SAMPLE_RATE).samples))
        utterances, sources = [], {"datasets": [], "excluded": 0, "too_short": 0}
        for spec in data:
            dataset = _load_dataset(spec)
            items = [item for item in dataset.items if item.audio]
            if progress:
                from tqdm import tqdm

                items = tqdm(items, desc=f"loading {dataset.name}", leave=False)
            kept = 0
            for item in items:
                samples = read_audio(item.audio).at(SAMPLE_RATE).samples
                if item.id in held_ids or audio_hash(samples) in held_hashes:
                    sources["excluded"] += 1
                    continue
                if len(samples) < min_seconds * SAMPLE_RATE:
                    sources["too_short"] += 1
                    continue
                tokens = encode_text(item.text, max_tokens) if item.text else None
                utterances.append(Utterance(item.id, _to_int16(samples), tokens))
                kept += 1
            sources["datasets"].append({"dataset": spec["dataset"], "params": spec.get("params") or {},
                                        "source": dataset.source, "items_sha256": dataset.items_sha256(),
                                        "n_items": kept})
        data = cls(utterances, sources)
        sources["n_items"] = len(utterances)
        sources["n_with_text"] = len(data.with_text)
        sources["seconds"] = round(sum(len(u.samples) for u in utterances) / SAMPLE_RATE, 1)
        return data

    def reconstruction_batch(self, seed: int, step: int, batch_size: int, max_seconds: float, hop: int,
                             pack: bool = True):
        """-> float32 (batch, samples) with samples a multiple of ``hop``.

        Each row starts with a random crop of a random utterance. ``pack``: rows are filled to
        ``max_seconds`` (rounded down to whole frames) by appending further random utterances, so
        no row ends in zero padding (41 % of the Asterisk prompts are shorter than 1 s, and
        log-spectral losses on digital-zero padding dominate the reconstruction loss). Without
        ``pack``, short crops are zero-padded to the longest one.
        """
        rng = np.random.default_rng([seed, step, 0])
        limit = int(max_seconds * SAMPLE_RATE)
        if pack:
            limit = max(hop, limit // hop * hop)
        crops = []
        for _ in range(batch_size):
            pieces, have = [], 0
            while have < limit:
                x = self.utterances[int(rng.integers(0, len(self.utterances)))].samples
                room = limit - have
                if len(x) > room:
                    start = int(rng.integers(0, len(x) - room + 1)) if not pieces else 0
                    x = x[start: start + room]
                pieces.append(x)
                have += len(x)
                if not pack:
                    break
            crops.append(np.concatenate(pieces))
        return _stack(crops, hop)

    def asr_batch(self, seed: int, step: int, batch_size: int, max_seconds: float, hop: int):
        """-> (float32 audio (batch, samples), lengths in samples, list of token lists) or None."""
        limit = int(max_seconds * SAMPLE_RATE)
        pool = [i for i in self.with_text if len(self.utterances[i].samples) <= limit]
        if not pool:
            return None
        rng = np.random.default_rng([seed, step, 1])
        picks = [pool[int(j)] for j in rng.integers(0, len(pool), batch_size)]
        chosen = [self.utterances[i] for i in picks]
        audio = _stack([u.samples for u in chosen], hop)
        lengths = [len(u.samples) for u in chosen]
        return audio, lengths, [u.tokens for u in chosen]


def _stack(pieces: list[np.ndarray], hop: int) -> np.ndarray:
    width = max(len(p) for p in pieces)
    width = -(-width // hop) * hop
    out = np.zeros((len(pieces), width), dtype=np.float32)
    for row, piece in enumerate(pieces):
        out[row, : len(piece)] = piece.astype(np.float32) / 32767.0
    return out

"""QTTS training data: (text, QDAC codes) pairs, codes computed once and cached in the run folder.

* Items come from registered datasets (``manifest``, ``folder``, ...); each needs audio and text.
  Items of the ``exclude`` datasets (matched by id and by audio content) are dropped; items whose
  text the tokenizer cannot represent, or whose duration is outside [min_seconds, max_seconds],
  are skipped and counted.
* Codes: the QDAC checkpoint encodes every item once; ``<run>/codes/codes.npz`` (one int16 array
  per audio content hash) + ``index.json`` (the codec's weights sha256 and codebook count) are
  reused by later runs and resumes; a different codec or codebook count rebuilds the cache.
* Held out: the ``heldout`` items with the smallest sha256(id) (stable when items are added).
* Batches are a pure function of (seed, step): a random anchor in the length-sorted list and its
  neighbours, up to ``max_tokens`` padded positions, so a resumed run sees the batches an
  uninterrupted run would have seen.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..audio import read_audio
from ..errors import ConfigError
from .tokenizer import CharTokenizer, TokenizerError

SAMPLE_RATE = 16000


@dataclass
class Example:
    id: str
    text: str
    text_ids: list
    codes: np.ndarray  # int16 (K, T)

    @property
    def frames(self) -> int:
        return int(self.codes.shape[1])


def audio_hash(samples: np.ndarray) -> str:
    x = np.round(np.clip(samples, -1.0, 1.0) * 32767.0).astype(np.int16)
    return hashlib.sha256(x.tobytes()).hexdigest()


def _dataset(spec: dict):
    from ..registry import DATASETS

    return DATASETS.create(spec["dataset"], **(spec.get("params") or {}))


class CodeCache:
    """int16 codes per audio hash for one (codec weights, codebook count); saved atomically."""

    def __init__(self, folder: Path, codec_sha: str, n_codebooks: int):
        self.folder, self.key = Path(folder), {"codec_sha256": codec_sha, "n_codebooks": n_codebooks}
        self.codes: dict[str, np.ndarray] = {}
        self.dirty = False
        index, store = self.folder / "index.json", self.folder / "codes.npz"
        if index.is_file() and store.is_file():
            try:
                meta = json.loads(index.read_text())
                if {k: meta.get(k) for k in self.key} == self.key:
                    with np.load(store) as npz:
                        self.codes = {name: npz[name] for name in npz.files}
            except (ValueError, OSError):
                self.codes = {}

    def get(self, digest: str):
        return self.codes.get(digest)

    def put(self, digest: str, codes: np.ndarray) -> None:
        self.codes[digest] = codes.astype(np.int16)
        self.dirty = True

    def save(self) -> None:
        if not self.dirty:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self.folder / "codes.tmp.npz"
        np.savez(tmp, **self.codes)
        os.replace(tmp, self.folder / "codes.npz")
        (self.folder / "index.json").write_text(json.dumps({**self.key, "n_items": len(self.codes)}) + "\n")
        self.dirty = False


class QttsData:
    """Training and held-out examples in memory, plus deterministic batching."""

    def __init__(self, train: list[Example], heldout: list[Example], sources: dict, delay_steps: int = 1):
        if not train:
            raise ConfigError("QTTS training: no training items (check the config's 'data' and the skipped counts: "
                              f"{sources.get('skipped')})")
        self.train, self.heldout, self.sources = train, heldout, sources
        self.delay_steps = delay_steps
        self.order = sorted(range(len(train)), key=lambda i: self._length(train[i]))

    def _length(self, ex: Example) -> int:
        return len(ex.text_ids) + 1 + ex.frames + self.delay_steps

    @classmethod
    def from_specs(cls, run, codec, codec_sha: str, cache_dir: Path, tokenizer: CharTokenizer,
                   progress: bool = False) -> "QttsData":
        """Load items, encode (or reuse cached) codes with ``codec`` (a loaded QdacCodec)."""
        tc, cfg = run.train, run.model
        held_ids, held_hashes = set(), set()
        for spec in run.exclude:
            for item in _dataset(spec).items:
                held_ids.add(item.id)
                if item.audio:
                    held_hashes.add(audio_hash(read_audio(item.audio).at(SAMPLE_RATE).samples))
        cache = CodeCache(cache_dir, codec_sha, cfg.n_codebooks)
        skipped = {"excluded": 0, "no_text_or_audio": 0, "tokenizer": 0, "too_short": 0, "too_long": 0,
                   "text_too_long": 0, "audio_too_long": 0}
        examples, datasets, seen = [], [], set()
        for spec in run.data:
            dataset = _dataset(spec)
            items = dataset.items
            if progress:
                from tqdm import tqdm

                items = tqdm(items, desc=f"codes for {dataset.name}", leave=False)
            kept = 0
            for item in items:
                if not item.audio or not item.text:
                    skipped["no_text_or_audio"] += 1
                    continue
                samples = read_audio(item.audio).at(SAMPLE_RATE).samples
                digest = audio_hash(samples)
                if item.id in held_ids or digest in held_hashes or item.id in seen:
                    skipped["excluded"] += 1
                    continue
                seconds = len(samples) / SAMPLE_RATE
                if seconds < tc.min_seconds:
                    skipped["too_short"] += 1
                    continue
                if seconds > tc.max_seconds:
                    skipped["too_long"] += 1
                    continue
                try:
                    ids = tokenizer.encode(item.text)
                except TokenizerError:
                    skipped["tokenizer"] += 1
                    continue
                if len(ids) > cfg.max_text_tokens:
                    skipped["text_too_long"] += 1
                    continue
                codes = cache.get(digest)
                if codes is None:
                    codes = codec.encode(samples.astype(np.float32))[: cfg.n_codebooks]
                    cache.put(digest, codes)
                if codes.shape[1] + cfg.n_codebooks + 1 > cfg.max_audio_positions:
                    skipped["audio_too_long"] += 1
                    continue
                seen.add(item.id)
                examples.append(Example(item.id, item.text, ids, np.asarray(codes, dtype=np.int16)))
                kept += 1
            datasets.append({"dataset": spec["dataset"], "params": spec.get("params") or {}, "source": dataset.source,
                             "items_sha256": dataset.items_sha256(), "n_items": kept})
        cache.save()
        examples.sort(key=lambda e: hashlib.sha256(e.id.encode()).hexdigest())
        n_held = min(tc.heldout, max(0, len(examples) - 1))
        heldout, train = examples[:n_held], examples[n_held:]
        frame_rate = cfg.frame_rate
        sources = {"datasets": datasets, "skipped": skipped, "n_train": len(train), "n_heldout": len(heldout),
                   "train_seconds": round(sum(e.frames for e in train) / frame_rate, 1),
                   "heldout_seconds": round(sum(e.frames for e in heldout) / frame_rate, 1),
                   "heldout_ids": [e.id for e in heldout]}
        return cls(train, heldout, sources, cfg.delay_steps)

    # --- batches ------------------------------------------------------------------------------
    def batch_indices(self, seed: int, step: int, max_tokens: int, max_batch: int) -> list[int]:
        rng = np.random.default_rng([seed, step])
        anchor = int(rng.integers(0, len(self.order)))
        picked, longest = [], 0
        lo, hi = anchor - 1, anchor
        while len(picked) < max_batch and (lo >= 0 or hi < len(self.order)):
            j = hi if hi < len(self.order) else lo
            longest_new = max(longest, self._length(self.train[self.order[j]]))
            if picked and longest_new * (len(picked) + 1) > max_tokens:
                break
            picked.append(self.order[j])
            longest = longest_new
            if j == hi:
                hi += 1
            else:
                lo -= 1
        return picked

    def batch(self, seed: int, step: int, max_tokens: int, max_batch: int, device="cpu") -> dict:
        return collate([self.train[i] for i in self.batch_indices(seed, step, max_tokens, max_batch)], device)

    def eval_batches(self, max_tokens: int, max_batch: int, wrong_text: bool = False, device="cpu"):
        """Held-out batches in order; ``wrong_text`` pairs each audio with the next item's text."""
        items = self.heldout
        if wrong_text and len(items) > 1:
            items = [Example(e.id, o.text, o.text_ids, e.codes) for e, o in zip(items, items[1:] + items[:1])]
        batch, longest = [], 0
        for ex in items:
            n = self._length(ex)
            if batch and max(longest, n) * (len(batch) + 1) > max_tokens or len(batch) >= max_batch:
                yield collate(batch, device)
                batch, longest = [], 0
            batch.append(ex)
            longest = max(longest, n)
        if batch:
            yield collate(batch, device)


def collate(examples: list[Example], device="cpu") -> dict:
    """-> {text_ids (B, L), text_mask (B, L), codes (B, K, T), frames (B,), n_tokens}: right-padded."""
    B = len(examples)
    L = max(len(e.text_ids) for e in examples)
    T = max(e.frames for e in examples)
    K = examples[0].codes.shape[0]
    text = torch.zeros(B, L, dtype=torch.long)
    mask = torch.zeros(B, L, dtype=torch.bool)
    codes = torch.zeros(B, K, T, dtype=torch.long)
    for b, e in enumerate(examples):
        text[b, :len(e.text_ids)] = torch.tensor(e.text_ids)
        mask[b, :len(e.text_ids)] = True
        codes[b, :, :e.frames] = torch.from_numpy(e.codes.astype(np.int64))
    frames = torch.tensor([e.frames for e in examples])
    return {"text_ids": text.to(device), "text_mask": mask.to(device), "codes": codes.to(device),
            "frames": frames.to(device), "n_tokens": int(sum(len(e.text_ids) + e.frames for e in examples)),
            "ids": [e.id for e in examples]}

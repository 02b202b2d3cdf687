#!/usr/bin/env python
"""Does the speaker-similarity model separate the bundled speakers?

Embeds every utterance of the bundled set (or a manifest), scores all utterance pairs by cosine,
and prints, for every pair of speakers A, B: the mean same-speaker cosine (all within-A and
within-B pairs), each speaker's own mean, and the mean cross-speaker cosine (A×B pairs); the pair
passes when the same-speaker mean is above the cross mean. Then the EER over all pairs.

    PYTHONPATH=. python scripts/speaker_separation.py [--backend resemblyzer] [--json out.json]

Exit code 1 when some speaker pair is not separated.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from qtts_bench.audio import read_audio
from qtts_bench.metrics.speaker import (
    SpeakerEmbedder,
    cosine_similarity,
    equal_error_rate,
    shared_backend,
)


def load_items(manifest: str | None, limit_per_speaker: int | None):
    if manifest:
        from qtts_bench.data.manifest import load_manifest

        return load_manifest(manifest).items
    from qtts_bench.data.bundled import load_bundled

    return load_bundled(limit_per_speaker=limit_per_speaker).items


def separation(speakers: list[str], emb: np.ndarray) -> dict:
    """Pairwise cosines -> per-speaker-pair same/cross means and the EER over all pairs."""
    n = len(speakers)
    sims = np.array([[cosine_similarity(emb[i], emb[j]) for j in range(n)] for i in range(n)])
    iu = np.triu_indices(n, k=1)
    labels = np.array(speakers)
    same = labels[iu[0]] == labels[iu[1]]
    eer, threshold = equal_error_rate(sims[iu], same)
    names = sorted(set(speakers))
    idx = {s: np.flatnonzero(labels == s) for s in names}

    def within(s):
        i = idx[s]
        return sims[np.ix_(i, i)][np.triu_indices(len(i), k=1)]

    own = {s: within(s) for s in names}
    pairs = []
    for a, b in itertools.combinations(names, 2):
        same_vals = np.concatenate([own[a], own[b]])
        cross = sims[np.ix_(idx[a], idx[b])].ravel()
        pairs.append({"a": a, "b": b, "same_mean": float(same_vals.mean()),
                      "a_mean": float(own[a].mean()), "b_mean": float(own[b].mean()),
                      "cross_mean": float(cross.mean()), "cross_max": float(cross.max()),
                      "separated": bool(same_vals.mean() > cross.mean()),
                      "separated_each": bool(min(own[a].mean(), own[b].mean()) > cross.mean())})
    return {"n_utterances": n, "n_target_pairs": int(same.sum()), "n_impostor_pairs": int((~same).sum()),
            "target_mean": float(sims[iu][same].mean()), "impostor_mean": float(sims[iu][~same].mean()),
            "eer": eer, "eer_threshold": threshold,
            "speakers": {s: {"n": len(idx[s]), "within_mean": float(own[s].mean())} for s in names},
            "pairs": pairs}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", default="resemblyzer")
    parser.add_argument("--checkpoint", help="backend checkpoint (speechbrain_ecapa / wavlm_ecapa)")
    parser.add_argument("--s3prl-hub", help="local s3prl checkout (wavlm_ecapa)")
    parser.add_argument("--manifest", help="JSONL manifest with 'speaker' fields (default: bundled set)")
    parser.add_argument("--limit-per-speaker", type=int)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--no-cache", action="store_true")
    parser.add_argument("--per-language", action="store_true",
                        help="treat each speaker-language as its own identity (allison-en vs allison-es)")
    parser.add_argument("--json", help="write the full result here")
    args = parser.parse_args(argv)

    params = {k: v for k, v in {"checkpoint": args.checkpoint, "s3prl_hub": args.s3prl_hub}.items() if v}
    items = [it for it in load_items(args.manifest, args.limit_per_speaker) if it.audio and it.speaker]
    embedder = SpeakerEmbedder(shared_backend(args.backend, args.device, **params), args.batch_size,
                               cache=not args.no_cache)
    start = time.perf_counter()
    embeddings = embedder.embed([read_audio(it.audio) for it in items])
    seconds = time.perf_counter() - start
    kept = [(it, e) for it, e in zip(items, embeddings) if isinstance(e, np.ndarray)]
    for it, e in zip(items, embeddings):
        if not isinstance(e, np.ndarray):
            print(f"missing: {it.id}: {e}")
    labels = [f"{it.speaker}-{it.language}" if args.per_language else it.speaker for it, _ in kept]
    result = separation(labels, np.stack([e for _, e in kept]))
    result.update({"model": embedder.identity, "embed_seconds": seconds,
                   "n_missing": len(items) - len(kept)})

    print(f"model: {embedder.identity['model']} sha256 {embedder.identity['sha256'][:16]}; "
          f"{len(kept)} utterances embedded in {seconds:.1f} s ({len(items) - len(kept)} missing)")
    print(f"{'speaker A':>16} {'speaker B':>16} {'same':>6} {'A':>6} {'B':>6} {'cross':>6} {'max x':>6}  ok")
    for p in result["pairs"]:
        print(f"{p['a']:>16} {p['b']:>16} {p['same_mean']:6.3f} {p['a_mean']:6.3f} {p['b_mean']:6.3f} "
              f"{p['cross_mean']:6.3f} {p['cross_max']:6.3f}  {'yes' if p['separated'] else 'NO'}")
    print(f"target pairs {result['n_target_pairs']} mean {result['target_mean']:.3f}; impostor pairs "
          f"{result['n_impostor_pairs']} mean {result['impostor_mean']:.3f}")
    print(f"EER over all pairs: {100 * result['eer']:.2f} % at cosine {result['eer_threshold']:.3f}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2), encoding="utf-8")
    return 0 if all(p["separated"] for p in result["pairs"]) else 1


if __name__ == "__main__":
    sys.exit(main())

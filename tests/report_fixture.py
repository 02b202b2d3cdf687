"""Write results stores in the documented format (docs/results-format.md) for report tests.

Values are synthetic but structured like real runs: each utterance has a difficulty shared by
all systems (so paired comparisons are tighter than unpaired ones), each system a quality level.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import soundfile as sf

SR = 16000

PESQ = {"direction": "higher", "unit": "MOS-LQO", "aggregation": "mean", "ratio": None,
        "requires": ["reference"], "sample_rate": 16000, "version": "1",
        "settings": {"mode": "wb", "library": "pesq 0.0.4"}}
STOI = {"direction": "higher", "unit": "", "aggregation": "mean", "ratio": None,
        "requires": ["reference"], "sample_rate": 10000, "version": "1",
        "settings": {"extended": False, "library": "pystoi 0.4.1", "alignment": "trim"}}
WER = {"direction": "lower", "unit": "%", "aggregation": "ratio", "ratio": ["errors", "ref_words", 100.0],
       "requires": ["text"], "sample_rate": 16000, "version": "1",
       "settings": {"model": "whisper-base", "model_sha256": "ab" * 32, "normaliser": "whisper-en",
                    "averaging": "corpus"}}
UTMOS = {"direction": "higher", "unit": "MOS", "aggregation": "mean", "ratio": None, "requires": [],
         "sample_rate": 16000, "version": "1", "settings": {"model": "dnsmos-p808"}}


def sim_meta(model: str) -> dict:
    return {"direction": "higher", "unit": "cosine", "aggregation": "mean", "ratio": None,
            "requires": ["prompt"], "sample_rate": 16000, "version": "1",
            "settings": {"model": model, "reference": "prompt (SIM-o)"}}


def write_tone(path: Path, freq: float, seconds: float = 0.4) -> Path:
    t = np.arange(int(SR * seconds)) / SR
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32), SR, format="FLAC")
    return path


def write_references(root: Path, n: int) -> list[dict]:
    """n items with reference (and prompt) audio under ``root``."""
    items = []
    for i in range(n):
        item_id = f"en-u{i:03d}"
        ref = write_tone(root / "refs" / f"{item_id}.flac", 200 + 20 * i)
        prompt = write_tone(root / "prompts" / f"{item_id}.flac", 150 + 10 * i)
        items.append({"id": item_id, "text": f"utterance number {i} says hello world",
                      "reference_audio": str(ref.resolve()), "prompt_audio": str(prompt.resolve()),
                      "language": "en", "speaker": "allison" if i % 2 else "june"})
    return items


def write_run(out: Path, *, suite: str, dataset: str, label: str, system: str, params: dict,
              axes: dict, metrics: dict, items: list[dict], quality: float, seed: int,
              failures: dict | None = None, system_errors: tuple = (), save_audio: bool = False,
              n_done: int | None = None, finished: bool = True, write_summary: bool = True,
              nominal_bitrate: float | None = None, rtf: float = 0.05, device: str = "cpu",
              schema_version: int = 1, kind: str = "codec", target: str = "tests:fixture",
              jobs: int | None = 1, pooled: dict | None = None) -> Path:
    """One run folder. ``quality`` in [0, 1] shifts every metric; ``failures``: {metric: ids}.

    ``target``: the system's registry target (``qtts_bench.systems.classical:Passthrough`` makes a
    reference row); ``jobs``: run.json's worker processes (None: not recorded, as in older results);
    ``pooled``: {metric: block} written as summary.json's corpus ``pooled`` codebook usage."""
    folder = out / suite / dataset / label
    folder.mkdir(parents=True, exist_ok=True)
    failures = failures or {}
    rng = np.random.default_rng(seed)
    run_json = {
        "schema_version": schema_version,
        "suite": {"name": suite, "path": f"qtts_bench/suites/{suite}.yaml", "sha256": "0" * 64, "resolved": {}},
        "run": {"dataset": dataset, "system": system, "label": label, "params": params, "axes": axes},
        "dataset": {"name": dataset, "type": "bundled", "params": {}, "n_items": len(items),
                    "items_sha256": "1" * 64, "source": "fixture"},
        "system": {"name": system, "kind": kind, "target": target, "params": params,
                   "sample_rate": SR, "nominal_bitrate": nominal_bitrate, "provenance": {}},
        "metrics": metrics,
        "audio": {"resampler": "soxr", "resampler_version": "1.1.0", "quality": "VHQ", "alignment": "trim"},
        "environment": {"qtts_bench": "0.1.0", "git": {"commit": "f" * 40, "dirty": False},
                        "python": "3.11.7", "platform": "linux", "cpu": "Fixture CPU", "device": device,
                        "device_name": device, "packages": {}},
        "seed": 0, "command": ["qtts-bench", "run", suite],
        "started": "2026-11-25T18:00:00Z",
    }
    if jobs is not None:
        run_json["jobs"] = jobs
    if finished:
        run_json["finished"] = "2026-11-25T18:05:00Z"
    (folder / "run.json").write_text(json.dumps(run_json, indent=2))
    lines = []
    done = items[: n_done if n_done is not None else len(items)]
    for i, item in enumerate(done):
        difficulty = np.sin(i * 1.7)  # shared by every system: makes pairing matter
        record = {"id": item["id"], "status": "ok", "error": None, "metrics": {},
                  "system": {"seconds": rtf * 2.0 * (1 + 0.1 * rng.standard_normal()),
                             "audio_seconds": 2.0, "input_seconds": 2.0,
                             "encoded_bits": int((nominal_bitrate or 0) * 2.0) or None, "sample_rate": SR},
                  "text": item["text"], "language": item["language"], "speaker": item["speaker"],
                  "reference_audio": item["reference_audio"], "prompt_audio": item["prompt_audio"],
                  "output_audio": None}
        if item["id"] in system_errors:
            record.update(status="error", error="decoder produced NaN")
            record["metrics"] = {m: {"value": None, "reason": "system error"} for m in metrics}
            lines.append(record)
            continue
        for name, meta in metrics.items():
            if item["id"] in failures.get(name, ()):
                record["metrics"][name] = {"value": None, "reason": "reference is all silence"}
                continue
            record["metrics"][name] = _value(name, meta, quality, difficulty, rng)
        if save_audio:
            write_tone(folder / "audio" / f"{item['id']}.flac", 300 + 15 * i)
            record["output_audio"] = f"audio/{item['id']}.flac"
        lines.append(record)
    with open(folder / "items.jsonl", "w") as fh:
        for record in lines:
            fh.write(json.dumps(record) + "\n")
    if write_summary:
        summary = {"schema_version": schema_version, "label": label, "dataset": dataset, "system": system,
                   "n_items": len(items), "n_done": len(lines),
                   "n_system_errors": sum(r["status"] != "ok" for r in lines),
                   "metrics": {key: {"pooled": block} for key, block in (pooled or {}).items()}}
        (folder / "summary.json").write_text(json.dumps(summary))
    return folder


def _value(name: str, meta: dict, quality: float, difficulty: float, rng) -> dict:
    noise = rng.standard_normal()
    if meta["aggregation"] == "ratio":
        words = int(8 + 4 * abs(difficulty) + rng.integers(0, 4))
        rate = max(0.0, 0.25 * (1 - quality) + 0.05 * difficulty + 0.02 * noise)
        errors = int(rng.binomial(words, min(rate, 1.0)))
        return {"value": errors / words, "stats": {"errors": errors, "ref_words": words},
                "extra": {"hypothesis": "utterance number says hello"}}
    if name.startswith("pesq"):
        value = 1.2 + 3.2 * quality - 0.3 * difficulty + 0.12 * noise
        return {"value": float(np.clip(value, 1.0, 4.64))}
    if name.startswith("stoi"):
        return {"value": float(np.clip(0.7 + 0.28 * quality - 0.03 * difficulty + 0.01 * noise, 0, 1))}
    if name.startswith("sim"):
        offset = 0.1 if "ecapa" in json.dumps(meta["settings"]) else 0.0
        return {"value": float(np.clip(0.5 + 0.3 * quality + offset + 0.04 * noise, -1, 1))}
    return {"value": float(1.5 + 2.5 * quality - 0.2 * difficulty + 0.15 * noise)}


def codec_store(root: Path, n: int = 24, save_audio: bool = True) -> Path:
    """Results of a codec suite: passthrough, opus at three bitrates, qdac over codebooks x decoder.

    Some PESQ values are missing with a reason, one qdac run has a system error, UTMOS exists
    only for qdac runs, opus runs save no audio.
    """
    items = write_references(root / "data", n)
    out = root / "results"
    common = {"suite": "codec_baselines", "dataset": "bundled", "items": items}
    metrics = {"pesq_wb": PESQ, "stoi": STOI, "wer": WER}
    write_run(out, label="passthrough", system="passthrough", params={}, axes={}, metrics=metrics,
              quality=1.0, seed=1, save_audio=save_audio, rtf=0.001,
              target="qtts_bench.systems.classical:Passthrough", **common)
    for j, bitrate in enumerate((6000, 12000, 24000)):
        fails = {"pesq_wb": [items[3 % n]["id"], items[7 % n]["id"]]} if bitrate == 6000 else {}
        write_run(out, label=f"opus@bitrate={bitrate}", system="opus", params={"bitrate": bitrate},
                  axes={"bitrate": bitrate}, metrics=metrics, quality=0.35 + 0.2 * j, seed=10 + j,
                  failures=fails, nominal_bitrate=bitrate, rtf=0.01, **common)
    for d, decoder in enumerate(("conv", "transformer")):
        for k, cb in enumerate((4, 8, 16)):
            params = {"decoder": decoder, "n_codebooks": cb}
            label = f"qdac@decoder={decoder},n_codebooks={cb}"
            errors = (items[5 % n]["id"],) if (cb == 4 and decoder == "conv") else ()
            write_run(out, label=label, system="qdac", params=params, axes=dict(params),
                      metrics={**metrics, "utmos": UTMOS}, quality=0.5 + 0.15 * k + 0.03 * d,
                      seed=100 + 10 * d + k, system_errors=errors, save_audio=save_audio,
                      nominal_bitrate=50 * cb * 10, rtf=0.2 + 0.1 * d, jobs=2 if decoder == "transformer" else 1,
                      pooled={"codebook_perplexity": pooled_usage_block(cb, n - len(errors))}, **common)
    return out


def pooled_usage_block(n_codebooks: int, n_utterances: int, size: int = 1024, frame_rate: float = 50.0) -> dict:
    """summary.json's ``pooled`` block of codebook_perplexity (metrics/codebook.py usage_from_histograms):
    codebook k uses fewer codes the deeper it is."""
    perplexity = [600.0 / (1 + 0.2 * k) for k in range(n_codebooks)]
    entropy = [float(np.log2(p)) for p in perplexity]
    dead = [0.1 + 0.05 * k for k in range(n_codebooks)]
    return {"n_codebooks": n_codebooks, "codebook_size": size, "frames": 100 * n_utterances,
            "entropy_bits": entropy, "perplexity": perplexity, "dead_fraction": dead,
            "mean_perplexity": float(np.mean(perplexity)), "mean_dead_fraction": float(np.mean(dead)),
            "bitrate": frame_rate * n_codebooks * 10, "entropy_bitrate": frame_rate * sum(entropy),
            "n_utterances": n_utterances}


def shifted_copy(src: Path, dst: Path, metric: str, deltas) -> Path:
    """Copy of run folder ``src`` whose ``metric`` values are shifted by ``deltas[i]`` per utterance."""
    import shutil

    shutil.copytree(src, dst)
    records = [json.loads(line) for line in (dst / "items.jsonl").read_text().splitlines()]
    for record, delta in zip(records, deltas):
        entry = record["metrics"][metric]
        if entry.get("value") is not None:
            entry["value"] += float(delta)
    (dst / "items.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return dst

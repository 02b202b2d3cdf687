#!/usr/bin/env python
"""Build the QDAC *training* corpus (outside the repository) from Debian packages.

Every Asterisk core-sounds prompt in en/es/fr/it/ru (G.722, 16 kHz, 4 professional speakers)
that is NOT in the bundled evaluation set, with its transcript when the package has one.
The bundled set's items (``SOURCES.json`` of ``qtts_bench/data/bundled`` or ``--exclude``) are
held out by their original package path; pocketsphinx-testdata is held out entirely (all of it
is in the bundled set).

Decoding and trimming reuse ``scripts/build_bundled_dataset.py`` (PyAV G.722 decoder, digital
silence trimmed to a 0.1 s margin). Prompts shorter than ``--min-seconds`` or quieter than
-30 dBFS peak are skipped. Transcripts with placeholders (``[beep]``) are dropped (audio kept).

Output: ``<out>/audio/<id>.flac`` and ``<out>/manifest.jsonl`` (qtts_bench manifest format),
``<out>/SOURCES.json`` (packages, versions, excluded ids, counts).

Usage: ``python scripts/build_training_corpus.py --out /tmp/qdac_corpus/train
[--exclude qtts_bench/data/bundled/SOURCES.json ...]``

The training step re-checks the exclusion by audio content (``exclude:`` in the config).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent


def _bundled_builder():
    spec = importlib.util.spec_from_file_location("build_bundled_dataset", HERE / "build_bundled_dataset.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


def held_out_paths(sources: Path) -> set[str]:
    """Original package paths of the bundled evaluation items."""
    if not sources.is_file():
        raise SystemExit(f"bundled SOURCES.json not found: {sources} (build the bundled set first, "
                         "or pass --exclude PATH)")
    data = json.loads(sources.read_text(encoding="utf-8"))
    return {item["path"] for item in data["items"]}


def build(out: Path, exclude: list[Path], min_seconds: float) -> dict:
    bb = _bundled_builder()
    held_out = set().union(*(held_out_paths(path) for path in exclude))
    names = []
    for lang in bb.LANGUAGES:
        names += [f"asterisk-core-sounds-{lang}-g722", f"asterisk-core-sounds-{lang}"]
    (out / "audio").mkdir(parents=True, exist_ok=True)
    rows, stats = [], {}
    t0 = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        packages = bb.fetch(names, Path(tmp))
        for lang in bb.LANGUAGES:
            folder, speaker = bb.VOICES[lang]
            audio_pkg = packages[f"asterisk-core-sounds-{lang}-g722"]
            text_pkg = packages[f"asterisk-core-sounds-{lang}"]
            texts = bb.read_transcripts(text_pkg.root / f"usr/share/doc/{text_pkg.name}/core-sounds-{lang}.txt.gz")
            sounds = audio_pkg.root / "usr/share/asterisk/sounds" / folder
            counts = {"files": 0, "held_out": 0, "too_quiet": 0, "too_short": 0, "with_text": 0, "kept": 0,
                      "seconds": 0.0}
            for path in sorted(sounds.rglob("*.g722")):
                counts["files"] += 1
                rel = "/" + path.relative_to(audio_pkg.root).as_posix()
                if rel in held_out:
                    counts["held_out"] += 1
                    continue
                samples, _ = bb.trim_silence(bb.decode_g722(path))
                if int(np.abs(samples.astype(np.int32)).max(initial=0)) < bb.MIN_PEAK_LSB:
                    counts["too_quiet"] += 1
                    continue
                if len(samples) < min_seconds * bb.SAMPLE_RATE:
                    counts["too_short"] += 1
                    continue
                key = path.relative_to(sounds).with_suffix("").as_posix()
                text = texts.get(key)
                if text and any(ch in text for ch in "[]<>{}"):
                    text = None
                uid = f"train-{lang}-{speaker}-{bb.safe(key)}"
                bb.write_flac(out / "audio" / f"{uid}.flac", samples)
                rows.append({"id": uid, "audio": f"audio/{uid}.flac", "text": text or None,
                             "language": lang, "speaker": speaker})
                counts["kept"] += 1
                counts["with_text"] += bool(text)
                counts["seconds"] += len(samples) / bb.SAMPLE_RATE
            stats[lang] = counts
            print(f"{lang}: {counts}", flush=True)
        versions = {name: pkg.version for name, pkg in packages.items()}
    with open(out / "manifest.jsonl", "w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps({k: v for k, v in row.items() if v is not None}, ensure_ascii=False) + "\n")
    info = {"generator": "scripts/build_training_corpus.py", "packages": versions,
            "excluded_from": [str(p) for p in exclude], "n_held_out_paths": len(held_out), "counts": stats,
            "n_items": len(rows), "seconds": round(sum(c["seconds"] for c in stats.values()), 1),
            "build_seconds": round(time.time() - t0, 1)}
    (out / "SOURCES.json").write_text(json.dumps(info, indent=1), encoding="utf-8")
    return info


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp/qdac_corpus/train"))
    parser.add_argument("--exclude", type=Path, action="append",
                        help="SOURCES.json of an evaluation set whose items are held out (repeatable; "
                             "default: qtts_bench/data/bundled/SOURCES.json)")
    parser.add_argument("--min-seconds", type=float, default=0.3)
    args = parser.parse_args(argv)
    exclude = args.exclude or [REPO / "qtts_bench/data/bundled/SOURCES.json"]
    info = build(args.out, exclude, args.min_seconds)
    print(f"{info['n_items']} utterances, {info['seconds'] / 60:.1f} min -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

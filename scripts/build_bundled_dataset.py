#!/usr/bin/env python
"""Rebuild qtts-bench's bundled real-speech set from Debian packages.

Sources (downloaded with ``apt-get download`` into a temporary folder, unpacked with ``dpkg-deb -x``):

* ``asterisk-core-sounds-{en,es,fr,it,ru}-g722``: professional IVR prompts, G.722 at 16 kHz;
  transcripts ``core-sounds-<lang>.txt.gz`` come from the matching non-g722 package.
* ``pocketsphinx-testdata``: 5 LibriVox utterances and 5 "cards" utterances with transcripts.

Output (``--out``, default ``qtts_bench/data/bundled``)::

    audio/<id>.flac    16 kHz mono 16-bit FLAC
    manifest.jsonl     id, audio, text, language, speaker (qtts_bench.data.manifest format)
    SOURCES.json       per item: package, version, original path, sha256, trim; build parameters
    ATTRIBUTION.md     authors, licences, changes made
    LICENSES/          the packages' Debian copyright files and the licence texts they carry

Processing: G.722 is decoded with PyAV (FFmpeg's decoder) to 16-bit PCM; leading/trailing
digital silence is cut where ``MIN_CUT_S`` or more can go, keeping ``MARGIN_S`` on each side; nothing
else changes (no resampling, no loudness normalisation). The output is byte-identical between
runs for the same package versions, PyAV/FFmpeg and libsndfile/libFLAC versions.

Usage: ``python scripts/build_bundled_dataset.py [--out DIR] [--per-language N] [--seed S]``
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

SAMPLE_RATE = 16000
LANGUAGES = ("en", "es", "fr", "it", "ru")
POCKETSPHINX = "pocketsphinx-testdata"
# Asterisk voice folder and speaker id per language. Names from the packages' copyright file
# (CREDITS) and folder names: en/es Allison Smith, fr June Wallack, it Carlo Flora (m),
# ru an unnamed female voice provided by Maxim Topal / ivrvoice.ru (folder ru_RU_f_IvrvoiceRU).
VOICES = {
    "en": ("en_US_f_Allison", "allison"),
    "es": ("es_MX_f_Allison", "allison"),
    "fr": ("fr_CA_f_June", "june"),
    "it": ("it_IT_m_Carlo", "carlo"),
    "ru": ("ru_RU_f_IvrvoiceRU", "ru-female"),
}
LOST_CHARACTER = re.compile(r"\?(?=\s*\w)|\ufffd")  # it: "non pu? essere" (accent lost)
SKIP_FOLDERS = ("digits/", "letters/", "phonetic/", "silence/")  # single words, letters, silence
MIN_WORDS = 3
MIN_S, MAX_S = 1.5, 4.5  # duration bounds after trimming
SILENCE_LSB = 16  # |sample| <= this (16-bit LSB, about -66 dBFS) counts as digital silence
MARGIN_S = 0.1  # silence kept before the first and after the last non-silent sample
MIN_CUT_S = 0.1  # shorter stretches of removable silence are left alone
MIN_PEAK_LSB = 1000  # about -30 dBFS: anything quieter is treated as silent / unusable
DEFAULT_PER_LANGUAGE = 32
DEFAULT_SEED = 20250717
LIBRIVOX_SPEAKER = "librivox-sas01"  # all five are from one chapter recording (one reader)
CARDS_SPEAKER = "cards"
# ATTRIBUTION.md states these; the build stops if a package's copyright file no longer does.
EXPECTED_CREDITS = {
    "asterisk-core-sounds-en": ("Allison Smith", "June Wallack", "Carlo Flora", "Maxim Topal",
                                "License: CC-BY-SA-3.0", "License: CC-BY-3.0"),
    POCKETSPHINX: ("Carnegie Mellon University", "Alpha Cephei", "License: BSD-2"),
}


@dataclass
class Package:
    name: str
    version: str
    deb: Path
    deb_sha256: str
    root: Path


@dataclass
class Utterance:
    id: str
    subset: str
    language: str
    speaker: str
    text: str
    samples: np.ndarray  # int16, 16 kHz mono
    package: Package
    path: str  # path inside the package, e.g. /usr/share/asterisk/sounds/...
    source_sha256: str
    transcript: str  # where the text came from (path inside a package, key)
    trim: dict = field(default_factory=dict)


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def run(cmd: list[str], cwd: Path | None = None) -> str:
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout


def fetch(names: list[str], workdir: Path) -> dict[str, Package]:
    """apt-get download + dpkg-deb -x each package; runs apt-get update once if a download fails."""
    debs = workdir / "debs"
    debs.mkdir()
    try:
        run(["apt-get", "download", *names], cwd=debs)
    except RuntimeError:
        print("apt-get download failed; running apt-get update once", file=sys.stderr)
        run(["apt-get", "update"])
        run(["apt-get", "download", *names], cwd=debs)
    packages = {}
    for deb in sorted(debs.glob("*.deb")):
        name = run(["dpkg-deb", "-f", str(deb), "Package"]).strip()
        version = run(["dpkg-deb", "-f", str(deb), "Version"]).strip()
        root = workdir / "root" / name
        root.mkdir(parents=True)
        run(["dpkg-deb", "-x", str(deb), str(root)])
        packages[name] = Package(name, version, deb, sha256_file(deb), root)
    missing = set(names) - set(packages)
    if missing:
        raise RuntimeError(f"packages not downloaded: {sorted(missing)}")
    return packages


def decode_g722(path: Path) -> np.ndarray:
    """Raw G.722 bitstream -> int16 samples at 16 kHz (PyAV, FFmpeg's g722 decoder)."""
    import av

    chunks = []
    with av.open(str(path), format="g722") as container:
        for frame in container.decode(audio=0):
            if frame.sample_rate != SAMPLE_RATE or frame.format.name != "s16" or frame.layout.nb_channels != 1:
                raise RuntimeError(f"{path}: unexpected decoder output {frame.sample_rate} Hz "
                                   f"{frame.format.name} {frame.layout.name}")
            chunks.append(frame.to_ndarray().reshape(-1))
    return np.concatenate(chunks).astype(np.int16) if chunks else np.zeros(0, np.int16)


def read_wav16k(path: Path) -> np.ndarray:
    import soundfile as sf

    data, rate = sf.read(str(path), dtype="int16", always_2d=True)
    if rate != SAMPLE_RATE or data.shape[1] != 1:
        raise RuntimeError(f"{path}: expected 16 kHz mono, got {rate} Hz x {data.shape[1]}")
    return data[:, 0].copy()


def trim_silence(samples: np.ndarray) -> tuple[np.ndarray, dict]:
    """Cut leading/trailing digital silence beyond MARGIN_S when at least MIN_CUT_S can go.

    Returns (samples, {"start": samples cut at the start, "end": samples cut at the end}).
    """
    loud = np.nonzero(np.abs(samples.astype(np.int32)) > SILENCE_LSB)[0]
    if loud.size == 0:
        return samples, {"start": 0, "end": 0}
    margin, min_cut = round(MARGIN_S * SAMPLE_RATE), round(MIN_CUT_S * SAMPLE_RATE)
    head = max(0, int(loud[0]) - margin)
    tail = max(0, len(samples) - (int(loud[-1]) + 1 + margin))
    head, tail = (head if head >= min_cut else 0), (tail if tail >= min_cut else 0)
    return samples[head:len(samples) - tail], {"start": head, "end": tail}


def read_transcripts(path: Path) -> dict[str, str]:
    """``core-sounds-<lang>.txt.gz``: ``name: text`` lines, ``;`` comments. First entry wins."""
    texts: dict[str, str] = {}
    with gzip.open(path, "rt", encoding="utf-8-sig") as handle:
        for line in handle:
            line = line.strip()
            if not line or line.startswith(";") or ":" not in line:
                continue
            key, text = line.split(":", 1)
            texts.setdefault(key.strip(), " ".join(text.split()))
    return texts


def is_sentence(key: str, text: str) -> bool:
    if key.startswith(SKIP_FOLDERS) or not text:
        return False
    if any(ch in text for ch in "[]<>{}") or LOST_CHARACTER.search(text):
        return False  # placeholders such as "[ascending tones]", characters lost in encoding
    return len(text.split()) >= MIN_WORDS


def safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_")


def asterisk_items(packages: dict[str, Package], language: str, per_language: int, seed: int,
                   stats: dict) -> list[Utterance]:
    folder, speaker = VOICES[language]
    audio_pkg = packages[f"asterisk-core-sounds-{language}-g722"]
    text_pkg = packages[f"asterisk-core-sounds-{language}"]
    transcript_rel = f"/usr/share/doc/{text_pkg.name}/core-sounds-{language}.txt.gz"
    texts = read_transcripts(text_pkg.root / transcript_rel.lstrip("/"))
    sounds = audio_pkg.root / "usr/share/asterisk/sounds" / folder
    candidates = []
    counts = {"transcripts": len(texts), "no_audio": 0, "not_sentence": 0, "too_quiet": 0,
              "duration_out_of_range": 0}
    for key in sorted(texts):
        text = texts[key]
        path = sounds / f"{key}.g722"
        if not path.is_file():
            counts["no_audio"] += 1
            continue
        if not is_sentence(key, text):
            counts["not_sentence"] += 1
            continue
        samples, trim = trim_silence(decode_g722(path))
        if int(np.abs(samples.astype(np.int32)).max(initial=0)) < MIN_PEAK_LSB:
            counts["too_quiet"] += 1
            continue
        if not MIN_S <= len(samples) / SAMPLE_RATE <= MAX_S:
            counts["duration_out_of_range"] += 1
            continue
        candidates.append((key, text, samples, trim, path))
    counts["candidates"] = len(candidates)
    rng = random.Random(f"{seed}-{language}")
    chosen = sorted(rng.sample(range(len(candidates)), min(per_language, len(candidates))))
    counts["selected"] = len(chosen)
    stats[language] = counts
    items = []
    for n, index in enumerate(chosen, 1):
        key, text, samples, trim, path = candidates[index]
        items.append(Utterance(
            id=f"{language}-{speaker}-{n:04d}-{safe(key)}", subset="asterisk", language=language,
            speaker=speaker, text=text, samples=samples, package=audio_pkg,
            path="/" + path.relative_to(audio_pkg.root).as_posix(), source_sha256=sha256_file(path),
            transcript=f"{text_pkg.name}:{transcript_rel}#{key}", trim=trim))
    return items


def read_sphinx_transcription(path: Path) -> dict[str, str]:
    """``<s> words </s> (fileid)`` lines -> {fileid: words}."""
    texts = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        match = re.match(r"^\s*(?:<s>)?(.*?)(?:</s>)?\s*\(([^)]+)\)\s*$", line)
        if match:
            texts[match.group(2)] = " ".join(match.group(1).split())
    return texts


def pocketsphinx_items(package: Package) -> list[Utterance]:
    base = package.root / "usr/share/pocketsphinx/test/data"
    items = []
    for subset, folder, transcript, speaker in (
        ("librivox", "librivox", "transcription", LIBRIVOX_SPEAKER),
        ("cards", "cards", "cards.transcription", CARDS_SPEAKER),
    ):
        texts = read_sphinx_transcription(base / folder / transcript)
        for n, file_id in enumerate(sorted(texts), 1):
            path = base / folder / f"{file_id}.wav"
            samples, trim = trim_silence(read_wav16k(path))
            short = file_id.rsplit("-", 1)[-1]
            items.append(Utterance(
                id=f"en-{speaker}-{n:04d}-{safe(short)}", subset=subset, language="en", speaker=speaker,
                text=texts[file_id], samples=samples, package=package,
                path="/" + path.relative_to(package.root).as_posix(), source_sha256=sha256_file(path),
                transcript=f"{package.name}:/{(base / folder / transcript).relative_to(package.root).as_posix()}"
                           f"#{file_id}", trim=trim))
    return items


def write_flac(path: Path, samples: np.ndarray) -> None:
    import soundfile as sf

    sf.write(str(path), samples, SAMPLE_RATE, format="FLAC", subtype="PCM_16")


def license_paragraphs(copyright_text: str) -> dict[str, str]:
    """Stand-alone ``License: NAME`` paragraphs of a DEP-5 copyright file -> {NAME: text}."""
    found = {}
    for para in re.split(r"\n\s*\n", copyright_text):
        lines = para.splitlines()
        if len(lines) > 1 and lines[0].startswith("License:") and not any(
                line.startswith(("Files:", "Copyright:")) for line in lines):
            body = [("" if line.strip() == "." else line[1:] if line.startswith(" ") else line)
                    for line in lines[1:]]
            found[lines[0].split(":", 1)[1].strip()] = "\n".join(body).rstrip() + "\n"
    return found


def check_credits(packages: dict[str, Package]) -> None:
    for name, needed in EXPECTED_CREDITS.items():
        text = (packages[name].root / f"usr/share/doc/{name}/copyright").read_text(encoding="utf-8")
        missing = [phrase for phrase in needed if phrase not in text]
        if missing:
            raise RuntimeError(f"{name} {packages[name].version}: copyright file no longer states {missing}; "
                               "review ATTRIBUTION.md in this script")


def write_licenses(out: Path, packages: dict[str, Package]) -> list[str]:
    folder = out / "LICENSES"
    folder.mkdir()
    written = []
    by_hash: dict[str, list[str]] = {}
    for name, pkg in sorted(packages.items()):
        text = (pkg.root / f"usr/share/doc/{name}/copyright").read_bytes()
        by_hash.setdefault(hashlib.sha256(text).hexdigest(), []).append(name)
    asterisk = [n for n in packages if n.startswith("asterisk-")]
    for digest, names in sorted(by_hash.items(), key=lambda kv: kv[1]):
        is_asterisk = all(n in asterisk for n in names)
        target = "asterisk-core-sounds.copyright" if is_asterisk and len(by_hash) == 2 else f"{names[0]}.copyright"
        text = (packages[names[0]].root / f"usr/share/doc/{names[0]}/copyright").read_text(encoding="utf-8")
        (folder / target).write_text(text, encoding="utf-8")
        written.append(target)
        if is_asterisk:
            for licence, body in sorted(license_paragraphs(text).items()):
                if licence.startswith("CC-"):
                    (folder / f"{licence}.txt").write_text(body, encoding="utf-8")
                    written.append(f"{licence}.txt")
    return written


def attribution(packages: dict[str, Package], items: list[Utterance], licences: list[str]) -> str:
    counts: dict[tuple[str, str], int] = {}
    for item in items:
        counts[(item.language, item.speaker)] = counts.get((item.language, item.speaker), 0) + 1
    ver = {name: pkg.version for name, pkg in packages.items()}
    rows = "\n".join(f"| {lang} | {spk} | {n} |" for (lang, spk), n in sorted(counts.items()))
    pkg_rows = "\n".join(f"| `{n}` | {ver[n]} | `{packages[n].deb_sha256}` |" for n in sorted(packages))
    return f"""# Bundled real-speech set: attribution and licences

This folder is generated by `scripts/build_bundled_dataset.py` from Debian packages; do not
edit it by hand. `SOURCES.json` names, for every file, the package, version, original path
and the sha256 of the original file, so anyone can verify it.

## Source packages

| package | version | .deb sha256 |
|---|---|---|
{pkg_rows}

## Utterances

| language | speaker id | utterances |
|---|---|---|
{rows}

## Asterisk core sounds (en, es, fr, it, ru)

Voice prompts of the Asterisk PBX ("Core Asterisk Sounds" {ver.get('asterisk-core-sounds-en-g722', '')}),
as credited by the packages' copyright file (`LICENSES/asterisk-core-sounds.copyright`):

- **English (en-US) and Spanish (es-MX)** (speaker id `allison`): recorded by Allison Smith
  (http://www.theivrvoice.com); copyright 2003-2010 Allison Smith; financial contributions by
  Digium, Inc. Licence: **CC-BY-SA-3.0** (the copyright file's `Files: *` paragraph; the Spanish
  prompts fall under it).
- **French (fr-CA)** (speaker id `june`): recorded by June Wallack (http://www.junewallack.com);
  copyright 2006-2008 June Wallack; translated into French by Clod Patry, Kristopher Lalletti and
  June Wallack; financial contributions by Digium, Inc., Unlimitel, BGM Informatique.
  Licence: **CC-BY-SA-3.0**.
- **Italian (it-IT)** (speaker id `carlo`, male): recorded by Carlo Flora (http://www.carloflora.com,
  http://www.segreterietelefoniche.it); copyright 2012 Carlo Flora; translated by Silvia Petrin.
  Licence: **CC-BY-3.0**.
- **Russian (ru-RU)** (speaker id `ru-female`): provided by Maxim Topal (http://www.ivrvoice.ru);
  copyright 2010 Maxim; the voice folder is `ru_RU_f_IvrvoiceRU` (a female voice; the talent is
  not named). Licence: **CC-BY-3.0**.

Transcripts: `core-sounds-<lang>.txt.gz` from the non-g722 packages `asterisk-core-sounds-<lang>`,
whitespace collapsed, otherwise unchanged (including their spelling, e.g. missing accents in es).

Changes made (CC-BY-SA-3.0 §4b / CC-BY-3.0 §4b: modifications are labelled here): a subset of
the prompts was selected; each was decoded from G.722 (16 kHz) to 16-bit PCM with FFmpeg's G.722
decoder (PyAV) and stored as FLAC; leading and trailing digital silence (|sample| <= {SILENCE_LSB}
LSB) was cut where at least {int(MIN_CUT_S * 1000)} ms could go, keeping {int(MARGIN_S * 1000)} ms of it on
each side (per-file cut in samples in `SOURCES.json`, `trim`). No resampling, filtering or loudness normalisation.
The derived files keep their licences: CC-BY-SA-3.0 for en/es/fr (ShareAlike), CC-BY-3.0 for
it/ru. Licence texts: `LICENSES/CC-BY-SA-3.0.txt`, `LICENSES/CC-BY-3.0.txt` (as carried in the
Debian copyright file).

## pocketsphinx-testdata (en)

Test recordings of CMU PocketSphinx ({ver.get(POCKETSPHINX, '')}), with their transcripts
(`librivox/transcription`, `cards/cards.transcription`; sentence markers and ids removed):

- 5 LibriVox utterances (speaker id `{LIBRIVOX_SPEAKER}`), all from the recording
  `sense_and_sensibility_01_austen_64kb` (Jane Austen, *Sense and Sensibility*, chapter 1; one
  reader, not named in the package). LibriVox dedicates its recordings to the public domain
  (LibriVox's own policy; the Debian package does not say so).
- 5 "cards" utterances (speaker id `{CARDS_SPEAKER}`; the package does not say whether one
  person spoke all five).

The Debian copyright file (`LICENSES/pocketsphinx-testdata.copyright`) covers all files with
"Copyright 1995-2014 Carnegie Mellon University, 2014-2015 Alpha Cephei Inc.", licence
**BSD-2** (text in that file). Changes: converted from WAV to FLAC, same silence trimming rule
as above (no other change).

## Files in LICENSES/

{chr(10).join(f'- `{name}`' for name in licences)}
"""


def build(out: Path, per_language: int, seed: int) -> dict:
    names = [f"asterisk-core-sounds-{lang}{suffix}" for lang in LANGUAGES for suffix in ("-g722", "")]
    names.append(POCKETSPHINX)
    with tempfile.TemporaryDirectory(prefix="qtts-bundled-") as tmp:
        packages = fetch(names, Path(tmp))
        check_credits(packages)
        stats: dict = {}
        items: list[Utterance] = []
        for language in LANGUAGES:
            items += asterisk_items(packages, language, per_language, seed, stats)
        items += pocketsphinx_items(packages[POCKETSPHINX])
        if len({item.id for item in items}) != len(items):
            raise RuntimeError("duplicate ids")

        for stale in ("audio", "LICENSES"):
            if (out / stale).exists():
                shutil.rmtree(out / stale)
        (out / "audio").mkdir(parents=True)
        manifest_lines, sources = [], []
        for item in items:
            rel = f"audio/{item.id}.flac"
            write_flac(out / rel, item.samples)
            manifest_lines.append(json.dumps({"id": item.id, "audio": rel, "text": item.text,
                                              "language": item.language, "speaker": item.speaker},
                                             ensure_ascii=False))
            sources.append({"id": item.id, "subset": item.subset, "package": item.package.name,
                            "version": item.package.version, "path": item.path,
                            "source_sha256": item.source_sha256, "transcript": item.transcript,
                            "trim": item.trim, "samples": int(len(item.samples)),
                            "flac_sha256": sha256_file(out / rel)})
        (out / "manifest.jsonl").write_text("\n".join(manifest_lines) + "\n", encoding="utf-8")
        licences = write_licenses(out, packages)
        import av
        import soundfile

        meta = {
            "generator": "scripts/build_bundled_dataset.py",
            "parameters": {"per_language": per_language, "seed": seed, "sample_rate": SAMPLE_RATE,
                           "min_s": MIN_S, "max_s": MAX_S, "min_words": MIN_WORDS,
                           "skip_folders": list(SKIP_FOLDERS), "silence_lsb": SILENCE_LSB,
                           "margin_s": MARGIN_S, "min_cut_s": MIN_CUT_S, "min_peak_lsb": MIN_PEAK_LSB},
            "tools": {"av": av.__version__, "soundfile": soundfile.__version__,
                      "libsndfile": soundfile.__libsndfile_version__},
            "packages": {name: {"version": pkg.version, "deb_sha256": pkg.deb_sha256}
                         for name, pkg in sorted(packages.items())},
            "selection": stats,
            "items": sources,
        }
        (out / "SOURCES.json").write_text(json.dumps(meta, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        (out / "ATTRIBUTION.md").write_text(attribution(packages, items, licences), encoding="utf-8")
    return {"items": items, "stats": stats}


def main(argv: list[str] | None = None) -> int:
    default_out = Path(__file__).resolve().parents[1] / "qtts_bench" / "data" / "bundled"
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=default_out, help=f"output folder (default {default_out})")
    parser.add_argument("--per-language", type=int, default=DEFAULT_PER_LANGUAGE,
                        help="Asterisk prompts per language (default %(default)s)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="selection seed (default %(default)s)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    result = build(args.out, args.per_language, args.seed)
    items = result["items"]
    by_key: dict[tuple[str, str], list[float]] = {}
    for item in items:
        by_key.setdefault((item.language, item.speaker), []).append(len(item.samples) / SAMPLE_RATE)
    for (language, speaker), durations in sorted(by_key.items()):
        print(f"{language:3} {speaker:16} {len(durations):4d} utterances {sum(durations):7.1f} s")
    total_s = sum(len(item.samples) for item in items) / SAMPLE_RATE
    size = sum(p.stat().st_size for p in (args.out / "audio").glob("*.flac"))
    trimmed = sum(1 for item in items if item.trim["start"] or item.trim["end"])
    print(f"total {len(items)} utterances, {total_s:.1f} s ({total_s / 60:.1f} min), FLAC {size / 1e6:.2f} MB, "
          f"{trimmed} trimmed, built in {time.perf_counter() - started:.1f} s -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Synthesise a single-voice QTTS training corpus with an offline TTS engine of this repository.

    python scripts/make_qtts_corpus.py --out /work/runs/qtts/corpus_flite_slt --n 500
    python scripts/make_qtts_corpus.py --out DIR --engine kokoro --n 2000 --seed 1
    python scripts/make_qtts_corpus.py --out DIR --texts my_sentences.txt   # one sentence a line

Writes ``DIR/audio/<id>.flac`` (16 kHz mono; other engine rates resampled with soxr),
``DIR/manifest.jsonl`` (the ``manifest`` dataset: id, audio, text, language, speaker) and
``DIR/corpus.json`` (engine, voice, parameters, versions, counts, duration, text source, and
``"synthetic": true``: this is machine speech, and a QTTS checkpoint trained on it says so in
its card). Re-running with the same arguments skips files that exist (resumable).

Texts: by default generated from a small English grammar in this file (templates x word lists,
seeded, de-duplicated): nothing is downloaded and no evaluation text is used (the PGC-hard
stand-in and bundled transcripts are evaluation sets). The vocabulary is deliberately small
(about 400 words) so a small model sees each word many times; ``--texts`` reads your own.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

NAMES = ["anna", "ben", "clara", "david", "emma", "frank", "grace", "henry", "iris", "jack", "kate", "leo",
         "maria", "nick", "olivia", "paul", "rose", "sam", "tom", "vera"]
NOUNS = ["dog", "cat", "house", "garden", "river", "teacher", "window", "letter", "train", "city", "bottle",
         "mountain", "kitchen", "doctor", "book", "road", "apple", "bridge", "farmer", "pencil", "table", "island",
         "horse", "lamp", "market", "child", "forest", "music", "boat", "paper", "street", "clock", "shirt",
         "friend", "morning", "village", "chair", "story", "picture", "school", "storm", "coffee",
         "engine", "student", "ocean", "basket", "camera", "flower", "garage", "office", "planet", "sister",
         "brother", "king", "queen", "tower", "wheel", "winter", "summer", "machine", "rabbit", "sandwich"]
PLURALS = {"child": "children", "city": "cities", "story": "stories", "bottle": "bottles", "shirt": "shirts",
           "sandwich": "sandwiches", "bus": "buses", "box": "boxes", "glass": "glasses", "knife": "knives"}
ADJECTIVES = ["old", "young", "small", "large", "quiet", "noisy", "bright", "dark", "happy", "tired", "green",
              "yellow", "heavy", "light", "clever", "strange", "warm", "cold", "empty", "busy", "gentle", "rough",
              "ancient", "modern", "careful", "famous", "hidden", "broken", "golden", "silver", "wooden", "friendly"]
STATES = ["ready", "late", "closed", "open", "clean", "expensive", "beautiful", "difficult", "simple", "wonderful",
          "dangerous", "important", "comfortable", "perfect", "terrible", "missing", "finished", "full", "free"]
VERBS = [("carry", "carried"), ("paint", "painted"), ("find", "found"), ("build", "built"), ("open", "opened"),
         ("clean", "cleaned"), ("watch", "watched"), ("follow", "followed"), ("bring", "brought"), ("sell", "sold"),
         ("buy", "bought"), ("fix", "fixed"), ("visit", "visited"), ("draw", "drew"), ("move", "moved"),
         ("answer", "answered"), ("catch", "caught"), ("read", "read"), ("write", "wrote"), ("push", "pushed"),
         ("pull", "pulled"), ("wash", "washed"), ("choose", "chose"), ("forget", "forgot"), ("hide", "hid"),
         ("lift", "lifted"), ("check", "checked"), ("order", "ordered"), ("cook", "cooked"), ("count", "counted")]
MOTION = ["walked", "ran", "drove", "jumped", "swam", "rolled", "climbed", "waited", "stood", "sat", "danced",
          "slept", "worked", "sang", "laughed"]
PREPS = ["near", "behind", "under", "across", "beside", "inside", "above", "around", "past", "toward", "along"]
TIMES = ["yesterday", "today", "this morning", "last night", "on monday", "after lunch", "in the evening",
         "every day", "at noon", "last summer", "before dinner", "on the weekend", "at midnight", "next week"]
NUMBERS = ["two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve", "fifteen",
           "twenty", "thirty", "forty", "fifty", "a hundred"]
RELATIVES = ["mother", "father", "uncle", "aunt", "neighbour", "cousin", "grandmother", "boss", "teacher"]


def plural(noun: str) -> str:
    return PLURALS.get(noun, noun + "s")


def article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


TEMPLATES = [
    lambda r: f"the {r.choice(ADJECTIVES)} {r.choice(NOUNS)} {r.choice(MOTION)} {r.choice(PREPS)} the {r.choice(NOUNS)}.",
    lambda r: (lambda a, n: f"{r.choice(NAMES)} {r.choice(VERBS)[1]} {article(a)} {a} {n} {r.choice(TIMES)}.")(
        r.choice(ADJECTIVES), r.choice(NOUNS)),
    lambda r: f"did you see the {r.choice(NOUNS)} {r.choice(PREPS)} the {r.choice(ADJECTIVES)} {r.choice(NOUNS)}?",
    lambda r: f"{r.choice(NAMES)} and {r.choice(NAMES)} will {r.choice(VERBS)[0]} the {r.choice(NOUNS)} {r.choice(TIMES)}.",
    lambda r: f"there are {r.choice(NUMBERS)} {r.choice(ADJECTIVES)} {plural(r.choice(NOUNS))} {r.choice(PREPS)} the "
              f"{r.choice(NOUNS)}.",
    lambda r: f"please {r.choice(VERBS)[0]} the {r.choice(NOUNS)} before {r.choice(TIMES)}.",
    lambda r: f"my {r.choice(RELATIVES)} {r.choice(VERBS)[1]} the {r.choice(NOUNS)}, and it was {r.choice(STATES)}.",
    lambda r: f"why is the {r.choice(NOUNS)} so {r.choice(STATES)} {r.choice(TIMES)}?",
    lambda r: (lambda a, n: f"we {r.choice(VERBS)[1]} {r.choice(NUMBERS)} {plural(r.choice(NOUNS))} and {article(a)} "
               f"{a} {n}.")(r.choice(ADJECTIVES), r.choice(NOUNS)),
    lambda r: f"{r.choice(NAMES)} said that the {r.choice(NOUNS)} was {r.choice(STATES)}.",
    lambda r: f"the {r.choice(NOUNS)} is {r.choice(STATES)}, but the {r.choice(NOUNS)} is {r.choice(STATES)}.",
    lambda r: f"when the {r.choice(NOUNS)} {r.choice(MOTION)}, {r.choice(NAMES)} {r.choice(VERBS)[1]} the "
              f"{r.choice(ADJECTIVES)} {r.choice(NOUNS)}.",
    lambda r: f"{r.choice(NAMES)} {r.choice(MOTION)} {r.choice(PREPS)} the {r.choice(NOUNS)} {r.choice(TIMES)}.",
    lambda r: f"can you {r.choice(VERBS)[0]} {r.choice(NUMBERS)} {plural(r.choice(NOUNS))} for the "
              f"{r.choice(ADJECTIVES)} {r.choice(NOUNS)}?",
]


def grammar_sentences(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    out, seen = [], set()
    attempts = 0
    while len(out) < n:
        attempts += 1
        if attempts > 100 * n:
            raise SystemExit(f"could only make {len(out)} distinct sentences")
        sentence = rng.choice(TEMPLATES)(rng)
        sentence = sentence[0].upper() + sentence[1:]
        if sentence not in seen:
            seen.add(sentence)
            out.append(sentence)
    return out


def parse_params(pairs: list[str]) -> dict:
    params = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        if not key or not _:
            raise SystemExit(f"--param expects KEY=VALUE, got {pair!r}")
        try:
            params[key] = json.loads(value)
        except ValueError:
            params[key] = value
    return params


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="output folder (audio/, manifest.jsonl, corpus.json)")
    parser.add_argument("--n", type=int, default=500, help="number of sentences (default 500)")
    parser.add_argument("--engine", default="flite", help="a TTS system of this repository: flite, kokoro, espeak_ng, "
                        "festival, piper (default flite)")
    parser.add_argument("--voice", default=None, help="engine voice (default: the engine's; flite: slt)")
    parser.add_argument("--param", action="append", default=[], help="further engine parameter KEY=VALUE")
    parser.add_argument("--texts", help="a UTF-8 file with one sentence a line (instead of the grammar)")
    parser.add_argument("--seed", type=int, default=0, help="grammar seed (default 0)")
    args = parser.parse_args(argv)

    from qtts_bench.audio import Audio, write_audio
    from qtts_bench.provenance import package_versions
    from qtts_bench.registry import SYSTEMS

    params = parse_params(args.param)
    if args.voice:
        params["voice"] = args.voice
    elif args.engine == "flite":
        params["voice"] = "slt"
    engine = SYSTEMS.create(args.engine, **params)
    missing = engine.unavailable()
    if missing:
        raise SystemExit(f"{args.engine}: {missing}")
    engine.load("cpu")
    if args.texts:
        texts = [line.strip() for line in Path(args.texts).read_text(encoding="utf-8").splitlines() if line.strip()]
        texts = texts[: args.n]
        source = f"file {Path(args.texts).resolve()} (first {len(texts)} lines)"
    else:
        texts = grammar_sentences(args.n, args.seed)
        source = (f"combinatorial English grammar in scripts/make_qtts_corpus.py ({len(TEMPLATES)} templates, "
                  f"seed {args.seed}); generated, not taken from any evaluation set")
    out = Path(args.out)
    (out / "audio").mkdir(parents=True, exist_ok=True)
    voice = params.get("voice", "default")
    speaker = f"{args.engine}_{voice}"
    rows, seconds, made, start = [], 0.0, 0, time.perf_counter()
    for i, text in enumerate(texts):
        item_id = f"{speaker}_{args.seed}_{i:05d}"
        path = out / "audio" / f"{item_id}.flac"
        if not path.is_file():
            audio = Audio(engine.synthesize(text), engine.sample_rate).at(16000)
            write_audio(path, audio)
            made += 1
            duration = audio.duration
        else:
            import soundfile as sf

            duration = sf.info(str(path)).duration
        seconds += duration
        rows.append({"id": item_id, "audio": f"audio/{item_id}.flac", "text": text, "language": "en",
                     "speaker": f"{speaker} (synthetic)"})
        if (i + 1) % 50 == 0:
            print(f"{i + 1}/{len(texts)} sentences, {seconds / 60:.1f} min of audio", file=sys.stderr)
    tmp = out / "manifest.jsonl.tmp"
    tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    tmp.replace(out / "manifest.jsonl")
    card = {"synthetic": True, "engine": args.engine, "voice": voice, "params": params, "sample_rate": 16000,
            "n_items": len(rows), "seconds": round(seconds, 1), "text_source": source,
            "engine_provenance": engine.provenance(), "versions": package_versions(("qtts-bench", "numpy", "soxr")),
            "made_in_seconds": round(time.perf_counter() - start, 1), "files_synthesised_this_run": made}
    (out / "corpus.json").write_text(json.dumps(card, indent=1, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
    print(f"{out}: {len(rows)} items, {seconds / 60:.1f} min of synthetic {args.engine} ({voice}) speech; "
          f"manifest {out / 'manifest.jsonl'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""A STAND-IN for the paper's PGC-hard TTS test set (English hard cases, written for this project).

*Quantize More, Lose Less* (arXiv 2507.12197) evaluates its TTS on an in-house hard set,
"PGC-hard", which is not public. ``pgc_hard_standin`` is not that set: it is a small set of
original English sentences in the same spirit, in 8 categories (:data:`CATEGORIES`), kept in
``pgc_hard_standin/items.yaml`` (id, category, text, spoken_text). ``text`` is what the TTS
reads; ``spoken_text`` is what WER is scored against (``None`` where it equals ``text``).

Speaker prompts come from the bundled real-speech set (:mod:`qtts_bench.data.bundled`): the
fixed list :data:`PROMPT_IDS` (English utterances of 2-8 s with complete, digit-free
transcripts), sorted. Item ``i`` of the full list (file order, before any category filter)
gets prompt ``i mod len(pool)``, so an item keeps its prompt whatever categories are selected;
a prompt whose transcript equals the item's text is skipped for the next one. There is no
ground-truth recording (``audio`` is ``None``).

Imports only json/yaml/pathlib-level modules: loading the set is cheap.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from ..errors import ConfigError, did_you_mean
from .bundled import load_bundled
from .manifest import Dataset, Item

NAME = "pgc_hard_standin"
ITEMS_FILE = Path(__file__).resolve().parent / "pgc_hard_standin" / "items.yaml"
CATEGORIES = ("tongue_twister", "repeated_words", "numbers", "abbreviations", "homographs",
              "long_sentence", "short_utterance", "question")
# Bundled English utterances used as speaker prompts: 2-8 s, transcripts that are complete
# sentences or phrases without digits or "..." fragments. Checked by tests/test_pgc_hard_standin.py.
PROMPT_IDS = tuple(sorted((
    "en-allison-0002-agent-newlocation",
    "en-allison-0003-conf-extended",
    "en-allison-0005-conf-kicked",
    "en-allison-0007-conf-nonextended",
    "en-allison-0017-followme_pls-hold-while-try",
    "en-allison-0018-pls-hold-while-try",
    "en-allison-0019-priv-introsaved",
    "en-allison-0021-vm-enter-num-to-call",
    "en-allison-0022-vm-helpexit",
    "en-allison-0023-vm-mailboxfull",
    "en-allison-0025-vm-newpassword",
    "en-allison-0027-vm-passchanged",
    "en-allison-0030-vm-rec-name",
    "en-cards-0005-005",
    "en-librivox-sas01-0001-0870",
    "en-librivox-sas01-0002-0880",
    "en-librivox-sas01-0003-0890",
    "en-librivox-sas01-0004-0920",
    "en-librivox-sas01-0005-0930",
)))
ITEM_KEYS = ("id", "category", "text", "spoken_text")
FORBIDDEN_SPOKEN = re.compile(r"[0-9$%&/@#+=°€£¢]")  # a spoken form is words only


def _as_list(value, what: str) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)) or not value or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{NAME} dataset: {what} must be a non-empty list of names, got {value!r}")
    return list(value)


def _words(text: str) -> list[str]:
    return re.sub(r"[^a-z0-9' ]+", " ", text.lower()).split()


def _same_words(a: str, b: str) -> bool:
    return _words(a) == _words(b)


def read_items(path: Path = ITEMS_FILE) -> list[dict]:
    """The rows of ``items.yaml``, validated (errors name the file and the item id)."""
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read the {NAME} items ({exc})") from None
    rows = doc.get("items") if isinstance(doc, dict) else None
    if not isinstance(rows, list) or not rows:
        raise ConfigError(f"{path}: expected a mapping with a non-empty list 'items'")
    ids, texts = set(), set()
    for n, row in enumerate(rows, 1):
        where = f"{path}: item {n}"
        if not isinstance(row, dict):
            raise ConfigError(f"{where}: expected a mapping with keys {list(ITEM_KEYS)}")
        if set(row) != set(ITEM_KEYS):
            raise ConfigError(f"{where}: keys must be exactly {list(ITEM_KEYS)}, got {sorted(row)}")
        where = f"{path}: item '{row['id']}'"
        for key in ("id", "category", "text"):
            if not isinstance(row[key], str) or not row[key].strip():
                raise ConfigError(f"{where}: '{key}' must be a non-empty string")
        if row["category"] not in CATEGORIES:
            raise ConfigError(f"{where}: unknown category '{row['category']}'"
                              f"{did_you_mean(row['category'], CATEGORIES, n=3, cutoff=0.5)}; available: {', '.join(CATEGORIES)}")
        if not re.fullmatch(rf"pgch-{row['category'].replace('_', '-')}-\d{{3}}", row["id"]):
            raise ConfigError(f"{where}: id must be 'pgch-{row['category'].replace('_', '-')}-NNN'")
        if row["id"] in ids or row["text"] in texts:
            raise ConfigError(f"{where}: duplicate id or text")
        ids.add(row["id"])
        texts.add(row["text"])
        spoken = row["spoken_text"]
        if spoken is not None and (not isinstance(spoken, str) or not spoken.strip() or spoken == row["text"]):
            raise ConfigError(f"{where}: 'spoken_text' must be null (same as text) or a different non-empty string")
        if FORBIDDEN_SPOKEN.search(spoken if spoken is not None else row["text"]):
            raise ConfigError(f"{where}: the spoken form has digits or symbols; "
                              f"{'fix spoken_text' if spoken is not None else 'give a spoken_text'}")
    return rows


def load_pgc_hard_standin(name: str | None = None, categories: list[str] | None = None,
                          prompt_speakers: list[str] | None = None) -> Dataset:
    """The PGC-hard stand-in as a :class:`Dataset` (prompts from the bundled English speakers).

    ``categories``: keep only these (see :data:`CATEGORIES`). ``prompt_speakers``: draw prompts
    only from these bundled speakers (``allison``, ``cards``, ``librivox-sas01``); this changes
    the prompt assignment. Unknown names raise ConfigError with did-you-mean suggestions.
    """
    rows = read_items()
    if categories is not None:
        categories = _as_list(categories, "categories")
        for category in categories:
            if category not in CATEGORIES:
                raise ConfigError(f"{NAME} dataset: unknown category '{category}'"
                                  f"{did_you_mean(category, CATEGORIES, n=3, cutoff=0.5)}; available: {', '.join(CATEGORIES)}")

    bundled = {item.id: item for item in load_bundled(languages=["en"]).items}
    missing = [pid for pid in PROMPT_IDS if pid not in bundled]
    if missing:
        raise ConfigError(f"{NAME} dataset: prompt utterance(s) {missing} not in the bundled set")
    pool = [bundled[pid] for pid in PROMPT_IDS]
    speakers = sorted({p.speaker for p in pool})
    if prompt_speakers is not None:
        prompt_speakers = _as_list(prompt_speakers, "prompt_speakers")
        for speaker in prompt_speakers:
            if speaker not in speakers:
                raise ConfigError(f"{NAME} dataset: unknown prompt speaker '{speaker}'"
                                  f"{did_you_mean(speaker, speakers, n=3, cutoff=0.5)}; available: {', '.join(speakers)}")
        pool = [p for p in pool if p.speaker in set(prompt_speakers)]

    items = []
    for i, row in enumerate(rows):
        for step in range(len(pool)):
            prompt = pool[(i + step) % len(pool)]
            if not _same_words(prompt.text, row["text"]):
                break
        else:
            raise ConfigError(f"{NAME} dataset: item '{row['id']}': every prompt has the item's own text")
        if categories is not None and row["category"] not in categories:
            continue
        items.append(Item(id=row["id"], text=row["text"], language="en", speaker=prompt.speaker,
                          prompt_audio=prompt.audio, prompt_text=prompt.text,
                          spoken_text=row["spoken_text"], category=row["category"]))
    params = {"categories": categories, "prompt_speakers": prompt_speakers,
              "prompts": [p.id for p in pool]}
    return Dataset(name or NAME, items, str(ITEMS_FILE), params)

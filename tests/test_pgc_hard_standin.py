"""The PGC-hard stand-in: counts, ids, spoken forms, prompts, filters, registry."""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import soundfile as sf

from qtts_bench.data.pgc_hard import (
    CATEGORIES,
    ITEMS_FILE,
    PROMPT_IDS,
    load_pgc_hard_standin,
    read_items,
)
from qtts_bench.errors import ConfigError

FOLDER = ITEMS_FILE.parent
# Words the Whisper English normaliser rewrites as titles ("st" -> "saint", "dr" -> "doctor", ...)
# or otherwise ("cause" -> "because"): a spoken form must spell the intended word out instead.
NORMALISER_REWRITES = {"mr", "mrs", "st", "dr", "prof", "capt", "gov", "ald", "gen", "sen", "rep", "pres",
                       "rev", "hon", "asst", "assoc", "lt", "col", "jr", "sr", "esq", "cause"}
# Contractions whose "'s" really is "is" (the normaliser expands every "'s" to " is").
IS_CONTRACTION = re.compile(r"\b(it|that|what|there|here|where|who|how|he|she)'s\b")


@pytest.fixture(scope="module")
def dataset():
    return load_pgc_hard_standin()


def spoken(item) -> str:
    return item.spoken_text if item.spoken_text is not None else item.text


def test_counts_and_categories(dataset):
    assert dataset.name == "pgc_hard_standin"
    assert len(dataset.items) >= 130
    counts = Counter(item.category for item in dataset.items)
    assert set(counts) == set(CATEGORIES) and len(CATEGORIES) == 8
    assert min(counts.values()) >= 12
    assert all(item.language == "en" and item.audio is None for item in dataset.items)


def test_unique_ids_and_texts(dataset):
    ids = [item.id for item in dataset.items]
    texts = [item.text for item in dataset.items]
    assert len(set(ids)) == len(ids) and len(set(texts)) == len(texts)
    for item in dataset.items:
        assert re.fullmatch(rf"pgch-{item.category.replace('_', '-')}-\d{{3}}", item.id), item.id


def test_category_shapes(dataset):
    for item in dataset.items:
        words = len(item.text.split())
        if item.category == "long_sentence":
            assert 35 <= words <= 70, (item.id, words)
        if item.category == "short_utterance":
            assert 1 <= words <= 3, (item.id, words)
        if item.category == "question":
            assert item.text.rstrip().endswith("?"), item.id


def test_provides_text_and_prompt(dataset):
    assert {"text", "prompt"} <= dataset.provides()
    assert "reference" not in dataset.provides()


def test_prompts_exist_are_2_to_8_s_and_never_the_item_text(dataset):
    durations = {}
    for item in dataset.items:
        path = Path(item.prompt_audio)
        assert path.is_absolute() and path.is_file(), item.prompt_audio
        assert path.stem in PROMPT_IDS
        if path not in durations:
            durations[path] = sf.info(str(path)).duration
        assert 2.0 <= durations[path] <= 8.0, (path.name, durations[path])
        assert item.prompt_text and item.speaker
        assert item.prompt_text.strip().lower() != item.text.strip().lower()
    # every prompt in the pool is used and every English bundled speaker appears
    assert {Path(item.prompt_audio).stem for item in dataset.items} == set(PROMPT_IDS)
    assert {item.speaker for item in dataset.items} == {"allison", "cards", "librivox-sas01"}


def test_spoken_forms_are_words_only(dataset):
    for item in dataset.items:
        text = spoken(item)
        assert not re.search(r"[0-9$%&/@#]", text), (item.id, text)
        assert item.spoken_text != item.text  # identical spoken forms are stored as None
        words = set(re.findall(r"[a-z]+", text.lower()))
        assert not words & NORMALISER_REWRITES, (item.id, words & NORMALISER_REWRITES)
    # items whose written form needs expanding have a spoken_text
    for item in dataset.items:
        if re.search(r"[0-9$%&/@#]", item.text):
            assert item.spoken_text is not None, item.id


def test_hash_stable_across_loads(dataset):
    assert load_pgc_hard_standin().items_sha256() == dataset.items_sha256()


def test_category_filter_keeps_prompts(dataset):
    subset = load_pgc_hard_standin(categories=["numbers", "question"])
    assert {item.category for item in subset.items} == {"numbers", "question"}
    full = {item.id: item for item in dataset.items}
    assert all(full[item.id] == item for item in subset.items)  # same prompt as in the full set
    assert len(subset.items) == sum(item.category in ("numbers", "question") for item in dataset.items)


def test_bad_category_did_you_mean():
    with pytest.raises(ConfigError, match="did you mean 'homographs'"):
        load_pgc_hard_standin(categories=["homograph"])
    with pytest.raises(ConfigError, match="non-empty list"):
        load_pgc_hard_standin(categories=[])


def test_prompt_speaker_filter():
    subset = load_pgc_hard_standin(prompt_speakers=["librivox-sas01"])
    assert {item.speaker for item in subset.items} == {"librivox-sas01"}
    with pytest.raises(ConfigError, match="did you mean 'allison'"):
        load_pgc_hard_standin(prompt_speakers=["alison"])


def test_read_items_rejects_bad_rows(tmp_path):
    bad = tmp_path / "items.yaml"
    bad.write_text("items:\n- {id: pgch-numbers-001, category: numbers, text: 'at 5', spoken_text: null}\n")
    with pytest.raises(ConfigError, match="digits or symbols"):
        read_items(bad)
    bad.write_text("items:\n- {id: pgch-numbers-001, category: number, text: 'five', spoken_text: null}\n")
    with pytest.raises(ConfigError, match="did you mean 'numbers'"):
        read_items(bad)


def test_registered_and_light():
    from qtts_bench.registry import DATASETS

    assert "pgc_hard_standin" in DATASETS
    assert "stand-in" in DATASETS.entry("pgc_hard_standin").summary
    code = ("import sys; from qtts_bench.data.pgc_hard import load_pgc_hard_standin; load_pgc_hard_standin(); "
            "print(sorted(m for m in ('torch', 'numpy', 'scipy', 'soundfile') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_readme_and_packaging():
    readme = (FOLDER / "README.md").read_text(encoding="utf-8")
    assert "stand-in" in readme and "Apache-2.0" in readme
    counts = Counter(row["category"] for row in read_items())
    for category, n in counts.items():
        assert f"| `{category}` | {n} |" in readme, category  # the README's table is up to date
    pyproject = (Path(__file__).resolve().parent.parent / "pyproject.toml").read_text(encoding="utf-8")
    assert '"data/pgc_hard_standin/*"' in pyproject


def test_whisper_normaliser_keeps_spoken_words(dataset):
    """Independent check with Whisper's English normaliser (applied to both sides by WER)."""
    english = pytest.importorskip("whisper_normalizer.english")
    normalise = english.EnglishTextNormalizer()
    for item in dataset.items:
        text = spoken(item)
        normalised = normalise(text).split()
        lowered = text.lower()
        if item.category == "abbreviations" or "saint" in normalised:
            assert "saint" not in normalised or "saint" in lowered, (item.id, normalised)
        # no possessive "'s" that the normaliser would turn into "is"
        expected_is = (re.findall(r"[a-z']+", lowered).count("is") + len(IS_CONTRACTION.findall(lowered))
                       + lowered.count("isn't"))
        assert normalised.count("is") == expected_is, (item.id, normalised)
        assert normalised, item.id

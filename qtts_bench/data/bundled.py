"""The bundled real-speech set: Asterisk prompts (en/es/fr/it/ru) and pocketsphinx test utterances.

170 utterances, 16 kHz mono FLAC, with transcripts, languages and speakers, shipped in
``qtts_bench/data/bundled/`` and rebuilt by ``scripts/build_bundled_dataset.py`` from Debian
packages. Licences and authors: ``bundled/ATTRIBUTION.md``; per-file origin: ``bundled/SOURCES.json``.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

from ..errors import ConfigError
from .manifest import Dataset, load_manifest

SUBSETS = ("asterisk", "librivox", "cards", "pocketsphinx")  # pocketsphinx = librivox + cards
_SUBSET_PARTS = {"asterisk": {"asterisk"}, "librivox": {"librivox"}, "cards": {"cards"},
                 "pocketsphinx": {"librivox", "cards"}}


def bundled_dir() -> Path:
    """Folder holding ``manifest.jsonl``, ``audio/``, ``SOURCES.json`` and ``ATTRIBUTION.md``."""
    return Path(str(resources.files("qtts_bench.data").joinpath("bundled")))


def _subset_of_items(folder: Path) -> dict[str, str]:
    sources = json.loads((folder / "SOURCES.json").read_text(encoding="utf-8"))
    return {row["id"]: row["subset"] for row in sources["items"]}


def load_bundled(subset: str | None = None, languages: list[str] | None = None,
                 limit_per_speaker: int | None = None, name: str = "bundled") -> Dataset:
    """Load the bundled set, optionally filtered.

    ``subset``: one of :data:`SUBSETS` (None = all). ``languages``: ISO codes (en, es, fr, it, ru).
    ``limit_per_speaker``: keep the first N utterances (manifest order) of each speaker in each
    language (``allison`` speaks both en and es). Raises ConfigError on unknown values.
    """
    folder = bundled_dir()
    dataset = load_manifest(str(folder / "manifest.jsonl"), name=name)
    items = dataset.items
    if subset is not None:
        if subset not in _SUBSET_PARTS:
            raise ConfigError(f"bundled dataset: unknown subset '{subset}'; available: {', '.join(SUBSETS)}")
        subset_of = _subset_of_items(folder)
        items = [item for item in items if subset_of.get(item.id) in _SUBSET_PARTS[subset]]
    if languages is not None:
        if isinstance(languages, str):
            languages = [languages]
        available = sorted({item.language for item in dataset.items if item.language})
        unknown = [lang for lang in languages if lang not in available]
        if unknown or not languages:
            raise ConfigError(f"bundled dataset: unknown language(s) {unknown or languages}; "
                              f"available: {', '.join(available)}")
        items = [item for item in items if item.language in set(languages)]
    if limit_per_speaker is not None:
        if isinstance(limit_per_speaker, bool) or not isinstance(limit_per_speaker, int) or limit_per_speaker < 1:
            raise ConfigError(f"bundled dataset: limit_per_speaker must be a positive integer, "
                              f"got {limit_per_speaker!r}")
        kept, counts = [], {}
        for item in items:
            key = (item.language, item.speaker)
            if counts.get(key, 0) < limit_per_speaker:
                counts[key] = counts.get(key, 0) + 1
                kept.append(item)
        items = kept
    params = {"subset": subset, "languages": list(languages) if languages is not None else None,
              "limit_per_speaker": limit_per_speaker}
    return Dataset(name, items, dataset.source, params)

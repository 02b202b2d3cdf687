"""The bundled real-speech set: files, metadata, attribution, loader filters, build helpers."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import re
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from qtts_bench.data.bundled import SUBSETS, bundled_dir, load_bundled
from qtts_bench.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent
FOLDER = bundled_dir()
LANGUAGES = {"en", "es", "fr", "it", "ru"}
ASTERISK_SPEAKERS = {("en", "allison"), ("es", "allison"), ("fr", "june"), ("it", "carlo"), ("ru", "ru-female")}
MAX_TOTAL_BYTES = 10_000_000  # all FLAC files together


@pytest.fixture(scope="module")
def dataset():
    return load_bundled()


@pytest.fixture(scope="module")
def sources():
    return json.loads((FOLDER / "SOURCES.json").read_text(encoding="utf-8"))


def _script():
    """Import scripts/build_bundled_dataset.py (not a package) as a module."""
    import sys

    name = "build_bundled_dataset"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / "build_bundled_dataset.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up while the class is built
        spec.loader.exec_module(module)
    return sys.modules[name]


def test_manifest_loads_with_complete_rows(dataset):
    assert len(dataset.items) >= 150
    assert dataset.provides() == {"reference", "text"}
    for item in dataset.items:
        assert item.text and item.text.strip() == item.text, item.id
        assert item.language in LANGUAGES and item.speaker, item.id
        assert Path(item.audio).name == f"{item.id}.flac"


def test_ids_unique_and_filesystem_safe(dataset):
    ids = [item.id for item in dataset.items]
    assert len(ids) == len(set(ids))
    assert all(re.fullmatch(r"[A-Za-z0-9._-]+", i) for i in ids)


def test_every_file_is_16k_mono_pcm16_flac_nonsilent_and_sane_length(dataset):
    for item in dataset.items:
        info = sf.info(item.audio)
        assert (info.format, info.subtype, info.samplerate, info.channels) == ("FLAC", "PCM_16", 16000, 1), item.id
        assert 1.0 <= info.duration <= 15.0, (item.id, info.duration)
        samples, _ = sf.read(item.audio, dtype="float32")
        assert np.max(np.abs(samples)) > 0.03, item.id  # -30 dBFS peak
        assert np.sqrt(np.mean(samples ** 2)) > 0.003, item.id
    asterisk = [item for item in dataset.items if item.speaker != "cards" and not item.speaker.startswith("librivox")]
    assert all(1.5 <= sf.info(item.audio).duration <= 4.5 for item in asterisk)


def test_every_language_and_speaker_is_covered(dataset):
    assert {item.language for item in dataset.items} == LANGUAGES
    counts = Counter((item.language, item.speaker) for item in dataset.items)
    for key in ASTERISK_SPEAKERS:
        assert counts[key] >= 10, (key, counts[key])
    assert counts[("en", "librivox-sas01")] == 5  # all the package has
    assert counts[("en", "cards")] == 5


def test_total_size_is_bounded(dataset):
    total = sum(Path(item.audio).stat().st_size for item in dataset.items)
    assert total <= MAX_TOTAL_BYTES, total
    assert len(list((FOLDER / "audio").iterdir())) == len(dataset.items)  # no stray files


def test_sources_cover_every_item_and_match_files(dataset, sources):
    by_id = {row["id"]: row for row in sources["items"]}
    assert set(by_id) == {item.id for item in dataset.items}
    for item in dataset.items:
        row = by_id[item.id]
        assert row["package"] in sources["packages"] and row["version"] == sources["packages"][row["package"]]["version"]
        assert row["path"].startswith("/usr/share/") and re.fullmatch(r"[0-9a-f]{64}", row["source_sha256"])
        assert hashlib.sha256(Path(item.audio).read_bytes()).hexdigest() == row["flac_sha256"], item.id
        assert sf.info(item.audio).frames == row["samples"]


def test_attribution_and_licences_present():
    text = (FOLDER / "ATTRIBUTION.md").read_text(encoding="utf-8")
    for needed in ("CC-BY-SA-3.0", "CC-BY-3.0", "BSD-2", "Allison Smith", "June Wallack", "Carlo Flora",
                   "Maxim Topal", "LibriVox", "Carnegie Mellon University"):
        assert needed in text, needed
    licences = FOLDER / "LICENSES"
    for name in ("asterisk-core-sounds.copyright", "pocketsphinx-testdata.copyright", "CC-BY-SA-3.0.txt", "CC-BY-3.0.txt"):
        assert (licences / name).is_file() and (licences / name).stat().st_size > 500, name
    assert "ShareAlike" in (licences / "CC-BY-SA-3.0.txt").read_text(encoding="utf-8")
    assert "ShareAlike" not in (licences / "CC-BY-3.0.txt").read_text(encoding="utf-8")


def test_filter_by_language_and_unknown_language():
    french = load_bundled(languages=["fr"])
    assert french.items and {item.language for item in french.items} == {"fr"}
    assert french.params["languages"] == ["fr"]
    with pytest.raises(ConfigError, match=r"available: en, es, fr, it, ru"):
        load_bundled(languages=["de"])


def test_filter_by_subset_and_limit(dataset):
    parts = {subset: load_bundled(subset=subset) for subset in SUBSETS}
    assert len(parts["asterisk"].items) + len(parts["pocketsphinx"].items) == len(dataset.items)
    assert len(parts["librivox"].items) == 5 and len(parts["cards"].items) == 5
    assert {item.speaker for item in parts["asterisk"].items} == {s for _, s in ASTERISK_SPEAKERS}
    limited = load_bundled(limit_per_speaker=3)
    counts = Counter((item.language, item.speaker) for item in limited.items)
    assert set(counts.values()) == {3} and len(counts) == len(ASTERISK_SPEAKERS) + 2
    with pytest.raises(ConfigError, match="unknown subset"):
        load_bundled(subset="vctk")
    with pytest.raises(ConfigError, match="positive integer"):
        load_bundled(limit_per_speaker=0)


def test_trim_keeps_margin_and_leaves_short_silence_alone():
    build = _script()
    rate = build.SAMPLE_RATE
    tone = (8000 * np.cos(np.arange(rate) * 0.1)).astype(np.int16)  # first sample loud
    padded = np.concatenate([np.zeros(rate // 2, np.int16), tone, np.zeros(rate // 20, np.int16)])
    out, cut = build.trim_silence(padded)
    # 0.5 s of leading zeros minus the 0.1 s margin goes; the 50 ms tail is below the minimum cut
    assert cut == {"start": int(0.4 * rate), "end": 0}
    assert len(out) == len(padded) - int(0.4 * rate)
    assert np.all(out[: int(0.1 * rate)] == 0) and out[int(0.1 * rate)] == 8000


def test_sentence_filter_and_transcript_parsers(tmp_path):
    build = _script()
    assert build.is_sentence("vm-login", "Comedian Mail. Mailbox?")
    assert not build.is_sentence("digits/1", "one two three")
    assert not build.is_sentence("beep", "[ tono de error ]")
    assert not build.is_sentence("conf-full", "La conferenza ? piena.")  # character lost in the source
    assert not build.is_sentence("hello", "Hello.")
    sphinx = tmp_path / "transcription"
    sphinx.write_text("<s> ten of clubs  </s> (001)\n<s> he was not </s> (a-0880)\n")
    assert build.read_sphinx_transcription(sphinx) == {"001": "ten of clubs", "a-0880": "he was not"}


@pytest.mark.slow
def test_rebuild_is_byte_identical(tmp_path, sources):
    """Rebuild from the Debian packages; identical output when the package versions are the same."""
    if not (shutil.which("apt-get") and shutil.which("dpkg-deb")):
        pytest.skip("apt-get/dpkg-deb not available")
    build = _script()
    out = tmp_path / "bundled"
    try:
        build.main(["--out", str(out)])
    except RuntimeError as exc:
        pytest.skip(f"Debian packages unavailable: {exc}")
    rebuilt = json.loads((out / "SOURCES.json").read_text(encoding="utf-8"))
    if rebuilt["packages"] != sources["packages"] or rebuilt["tools"] != sources["tools"]:
        pytest.skip("package or tool versions differ from the committed build")
    for name in ("manifest.jsonl", "SOURCES.json", "ATTRIBUTION.md"):
        assert (out / name).read_bytes() == (FOLDER / name).read_bytes(), name
    for path in sorted((FOLDER / "audio").iterdir()):
        assert (out / "audio" / path.name).read_bytes() == path.read_bytes(), path.name

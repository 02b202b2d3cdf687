import json

import pytest

from qtts_bench.audio import Audio, write_audio
from qtts_bench.data.manifest import load_folder, load_manifest, load_seedtts
from qtts_bench.errors import ConfigError
from qtts_bench.testing import speech_like


@pytest.fixture
def wavs(tmp_path):
    for name in ("a", "b", "p"):
        write_audio(tmp_path / "wavs" / f"{name}.wav", Audio(speech_like(0.5, 16000, ord(name)), 16000))
    return tmp_path / "wavs"


def test_manifest_resolves_relative_paths(tmp_path, wavs):
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(
        json.dumps({"id": "a", "audio": "wavs/a.wav", "text": "hi", "language": "en", "speaker": "s"}) + "\n\n"
        + json.dumps({"id": "b", "audio": str(wavs / "b.wav"), "prompt_audio": "wavs/p.wav", "prompt_text": "x"}) + "\n")
    ds = load_manifest(str(manifest))
    assert [i.id for i in ds.items] == ["a", "b"]
    assert ds.items[0].audio == str((wavs / "a.wav").resolve())
    assert ds.items[1].prompt_audio == str((wavs / "p.wav").resolve())
    assert ds.items[0].provides() == {"reference", "text"}
    assert ds.provides() == {"reference"}
    assert len(ds.items_sha256()) == 64


@pytest.mark.parametrize("line, message", [
    ('{"id": "a", "audio": "wavs/a.wav"', "m.jsonl:1: not valid JSON"),
    ('{"audio": "wavs/a.wav"}', "m.jsonl:1: field 'id' is required"),
    ('{"id": "a", "wav": "wavs/a.wav"}', "unknown field(s) ['wav']"),
    ('{"id": "a", "audio": "wavs/missing.wav"}', "utterance 'a': audio file not found"),
    ('{"id": "a", "text": 3}', "field 'text' must be a string"),
    ('[1, 2]', "expected a JSON object"),
])
def test_manifest_errors_name_file_line_and_field(tmp_path, wavs, line, message):
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(line + "\n")
    with pytest.raises(ConfigError) as err:
        load_manifest(str(manifest))
    assert message in str(err.value)


def test_duplicate_ids_are_refused(tmp_path, wavs):
    manifest = tmp_path / "m.jsonl"
    manifest.write_text('{"id": "a"}\n{"id": "a"}\n')
    with pytest.raises(ConfigError, match="duplicate id 'a'"):
        load_manifest(str(manifest))


def test_seedtts_meta_lst(tmp_path, wavs):
    meta = tmp_path / "meta.lst"
    meta.write_text(
        "utt1|the prompt text|wavs/p.wav|the target text|wavs/a.wav\n"
        "utt2.wav|another prompt|wavs/p.wav|second target\n")
    ds = load_seedtts(str(meta), language="en")
    first, second = ds.items
    assert (first.id, first.prompt_text, first.text) == ("utt1", "the prompt text", "the target text")
    assert first.audio == str((wavs / "a.wav").resolve())
    assert first.prompt_audio == str((wavs / "p.wav").resolve())
    assert second.id == "utt2" and second.audio is None and second.language == "en"
    assert ds.provides() == {"text", "prompt"}


def test_seedtts_bad_field_count(tmp_path, wavs):
    meta = tmp_path / "meta.lst"
    meta.write_text("utt1|prompt|wavs/p.wav\n")
    with pytest.raises(ConfigError, match=r"meta.lst:1: expected 4 or 5 '\|'-separated fields"):
        load_seedtts(str(meta))


def test_seedtts_missing_prompt_file(tmp_path, wavs):
    meta = tmp_path / "meta.lst"
    meta.write_text("utt1|prompt|wavs/nope.wav|target\n")
    with pytest.raises(ConfigError, match="utterance 'utt1': prompt_audio file not found"):
        load_seedtts(str(meta))


def test_folder_with_transcripts(wavs):
    (wavs / "a.txt").write_text("hello there\n")
    ds = load_folder(str(wavs), language="en")
    assert [i.id for i in ds.items] == ["a", "b", "p"]
    assert ds.items[0].text == "hello there" and ds.items[1].text is None


def test_empty_folder_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="holds no audio files"):
        load_folder(str(tmp_path))


# --- text that is not UTF-8 (issue 10, item 13) ---------------------------------------------------
def _latin1_error(err) -> str:
    message = str(err.value)
    assert "not UTF-8 (byte 0xe9" in message and "iconv -f latin1 -t utf-8" in message
    assert "codec can't decode" not in message
    return message


def test_latin1_transcript_in_a_folder_names_the_file(wavs):
    (wavs / "b.txt").write_bytes("caf\u00e9 cr\u00e8me\n".encode("latin-1"))
    with pytest.raises(ConfigError) as err:
        load_folder(str(wavs))
    assert f"{wavs / 'b.txt'}:1: not UTF-8 (byte 0xe9 at column 4" in _latin1_error(err)


def test_latin1_manifest_names_the_line(tmp_path, wavs):
    manifest = tmp_path / "m.jsonl"
    manifest.write_bytes(('{"id": "a", "text": "ok"}\n{"id": "b", "text": "caf\u00e9"}\n').encode("latin-1"))
    with pytest.raises(ConfigError) as err:
        load_manifest(str(manifest))
    assert f"{manifest}:2: not UTF-8" in _latin1_error(err)


def test_latin1_seedtts_list_names_the_line(tmp_path, wavs):
    meta = tmp_path / "meta.lst"
    meta.write_bytes("u1|prompt|wavs/p.wav|target\nu2|caf\u00e9|wavs/p.wav|target\n".encode("latin-1"))
    with pytest.raises(ConfigError) as err:
        load_seedtts(str(meta))
    assert f"{meta}:2: not UTF-8" in _latin1_error(err)


def test_utf8_text_with_crlf_reads_as_before(tmp_path, wavs):
    (wavs / "a.txt").write_bytes("caf\u00e9\r\nline two\r\n".encode("utf-8"))
    ds = load_folder(str(wavs))
    assert ds.items[0].text == "caf\u00e9\nline two"

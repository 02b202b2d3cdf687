"""QTTS configs, tokenizer and checkpoints: validation, round trip, refusal of a mismatched QDAC."""

import json

import pytest
import yaml

from qtts_bench.errors import ConfigError
from qtts_bench.qtts.config import QttsConfig, load_run_config, run_config_from_dict
from qtts_bench.qtts.tokenizer import CharTokenizer, TokenizerError

torch = pytest.importorskip("torch", reason="QTTS needs the 'torch' extra")
pytest.importorskip("safetensors", reason="QTTS checkpoints need the 'torch' extra")

from qtts_bench.qtts.checkpoint import load_checkpoint, read_config  # noqa: E402
from qtts_bench.qtts.testing import tiny_qdac, tiny_qtts, tiny_run  # noqa: E402
from qtts_bench.systems.qtts import QttsTTS  # noqa: E402


@pytest.fixture(scope="module")
def codecs(tmp_path_factory):
    root = tmp_path_factory.mktemp("codecs")
    return {"qdac": tiny_qdac(root / "qdac"), "other_weights": tiny_qdac(root / "other", seed=1),
            "qdac25": tiny_qdac(root / "qdac25", frame_rate=25), "two_books": tiny_qdac(root / "two", n_codebooks=2),
            "big_books": tiny_qdac(root / "big", codebook_size=32)}


# --- tokenizer -----------------------------------------------------------------------------------
def test_tokenizer_normalises_and_round_trips():
    tok = CharTokenizer()
    text = "Café  “Quoted” — it’s 3…\tOK"
    assert tok.normalize(text) == 'cafe "quoted" - it\'s 3... ok'
    assert tok.decode(tok.encode(text)) == tok.normalize(text)
    assert 0 not in tok.encode(text)  # 0 is padding


def test_tokenizer_out_of_vocabulary_and_empty_text_are_clear_errors():
    tok = CharTokenizer()
    with pytest.raises(TokenizerError, match=r"2 character\(s\) outside the vocabulary: '你' \(U\+4F60\)"):
        tok.encode("hello 你好")
    with pytest.raises(TokenizerError, match="empty"):
        tok.encode("  \n ")
    with pytest.raises(TokenizerError, match="expected a string"):
        tok.encode(None)


# --- configs -------------------------------------------------------------------------------------
def test_config_errors_name_the_file_and_field(tmp_path, codecs):
    with pytest.raises(ConfigError, match="decoder must be one of .* did you mean 'multihead'"):
        QttsConfig(decoder="multihed")
    with pytest.raises(ConfigError, match="'single' models codebook 1 only"):
        QttsConfig(decoder="single", n_codebooks=4)
    path = tmp_path / "c.yaml"
    raw = tiny_run(codecs["qdac"], tmp_path / "syn")
    raw["train"]["stpes"] = 3
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match=r"c\.yaml: train: unknown key 'stpes'; did you mean 'steps'"):
        load_run_config(str(path))
    raw = tiny_run(codecs["qdac"], tmp_path / "syn")
    raw["model"]["n_codebooks"] = 8
    with pytest.raises(ConfigError, match="8 codebooks but the codec has only 4"):
        run_config_from_dict(raw, "cfg")
    raw = tiny_run(codecs["qdac25"], tmp_path / "syn")
    raw["model"]["frame_rate"] = 50
    with pytest.raises(ConfigError, match="frame rate 50 Hz vs the codec's 25 Hz"):
        run_config_from_dict(raw, "cfg")
    run = run_config_from_dict(tiny_run(codecs["qdac25"], tmp_path / "syn"), "cfg")
    assert run.model.frame_rate == 25  # taken from the codec when not given


# --- checkpoints ---------------------------------------------------------------------------------
def test_checkpoint_round_trip_with_card(tmp_path, codecs):
    folder = tiny_qtts(tmp_path / "ckpt", codecs["qdac"], "hierarchical",
                       card={"description": "flite slt sentences", "synthetic": True})
    cfg, meta = read_config(folder)
    assert cfg.decoder == "hierarchical" and meta["codec"]["weights_sha256"]
    assert "synthetic speech: **yes**" in (folder / "card.md").read_text()
    model, tokenizer, info = load_checkpoint(folder)
    assert info["weights_sha256"] and tokenizer.vocab_size == cfg.text_vocab_size
    (folder / "config.json").write_text(json.dumps({**meta, "model": {**meta["model"], "d_model": 64}}))
    with pytest.raises(ConfigError, match="does not match config.json"):
        load_checkpoint(folder)


def test_qdac_with_other_frame_rate_codebooks_or_weights_is_refused(tmp_path, codecs):
    folder = tiny_qtts(tmp_path / "ckpt", codecs["qdac"], "multihead")
    QttsTTS(checkpoint=str(folder))  # the recorded codec: fine
    with pytest.raises(ConfigError, match=r"frame rate: QTTS 50 Hz, QDAC 25 Hz"):
        QttsTTS(checkpoint=str(folder), codec=str(codecs["qdac25"]))
    with pytest.raises(ConfigError, match="codebooks: QTTS models 4, QDAC has 2"):
        QttsTTS(checkpoint=str(folder), codec=str(codecs["two_books"]))
    with pytest.raises(ConfigError, match="codebook size: QTTS 16, QDAC 32"):
        QttsTTS(checkpoint=str(folder), codec=str(codecs["big_books"]))
    system = QttsTTS(checkpoint=str(folder), codec=str(codecs["other_weights"]))  # same shape, other weights
    with pytest.raises(ConfigError, match="QDAC weights differ from the ones QTTS was trained on"):
        system.load("cpu")
    with pytest.raises(ConfigError, match="decoder='hierarchical' but checkpoint .* holds a 'multihead' model"):
        QttsTTS(checkpoint=str(folder), decoder="hierarchical")
    with pytest.raises(ConfigError, match="'checkpoint' is required"):
        QttsTTS()
    with pytest.raises(ConfigError, match="not found"):
        QttsTTS(checkpoint=str(tmp_path / "nope"))
    with pytest.raises(ConfigError, match="top_p must be in"):
        QttsTTS(checkpoint=str(folder), top_p=1.5)


def test_every_shipped_qtts_config_loads():
    from pathlib import Path

    configs = sorted((Path(__file__).resolve().parents[1] / "configs" / "qtts").glob("*.yaml"))
    assert len(configs) >= 4
    for path in configs:
        run = load_run_config(str(path))
        assert run.card and run.model.frame_rate == 50, path

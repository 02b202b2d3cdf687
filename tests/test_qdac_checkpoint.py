"""QDAC checkpoint I/O and the QdacCodec system on tiny random-initialised models."""

import json
import subprocess
import sys

import numpy as np
import pytest

from qtts_bench.errors import ConfigError
from qtts_bench.qdac.checkpoint import read_config, resolve_checkpoint, shipped_names
from qtts_bench.qdac.config import TINY_MODEL, QdacConfig

torch = pytest.importorskip("torch", reason="QDAC needs the 'torch' extra")
pytest.importorskip("safetensors", reason="QDAC checkpoints need the 'torch' extra")

from qtts_bench.qdac.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402
from qtts_bench.hashing import sha256_file  # noqa: E402
from qtts_bench.qdac.model import Qdac  # noqa: E402
from qtts_bench.systems.qdac import QdacCodec  # noqa: E402


@pytest.fixture
def tiny_checkpoint(tmp_path):
    torch.manual_seed(0)
    model = Qdac(QdacConfig(**TINY_MODEL)).eval()
    folder = save_checkpoint(model, tmp_path / "tiny", {"name": "tiny"})
    return folder, model


def test_save_load_round_trip(tiny_checkpoint):
    folder, model = tiny_checkpoint
    loaded, info = load_checkpoint(folder)
    audio = torch.randn(1, 4000) * 0.1
    assert torch.equal(model.encode(audio), loaded.encode(audio))
    assert torch.allclose(model.decode(model.encode(audio)), loaded.decode(loaded.encode(audio)))
    assert info["weights_sha256"] == sha256_file(folder / "model.safetensors")
    assert info["config"]["name"] == "tiny"


def test_config_not_matching_weights_names_file_and_tensors(tiny_checkpoint):
    folder, _ = tiny_checkpoint
    meta = json.loads((folder / "config.json").read_text())
    meta["model"]["decoder_dim"] = 24
    (folder / "config.json").write_text(json.dumps(meta))
    with pytest.raises(ConfigError, match=r"model\.safetensors does not match config\.json.*shape mismatch"):
        load_checkpoint(folder)


def test_missing_checkpoint_and_files(tmp_path):
    with pytest.raises(ConfigError, match="'nope' not found"):
        resolve_checkpoint("nope")
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "config.json").write_text("{}")
    with pytest.raises(ConfigError, match="missing model.safetensors"):
        resolve_checkpoint(tmp_path / "half")


def test_corrupt_weights_and_bad_config(tiny_checkpoint):
    folder, _ = tiny_checkpoint
    meta = json.loads((folder / "config.json").read_text())
    meta["model"]["frame_rate"] = 40
    (folder / "config.json").write_text(json.dumps(meta))
    with pytest.raises(ConfigError, match="frame_rate must be one of"):
        read_config(folder)
    meta["model"]["frame_rate"] = 50
    meta["model"]["n_codbooks"] = 4
    (folder / "config.json").write_text(json.dumps(meta))
    with pytest.raises(ConfigError, match="unknown key 'n_codbooks'; did you mean 'n_codebooks'"):
        read_config(folder)
    del meta["model"]["n_codbooks"]
    (folder / "config.json").write_text(json.dumps(meta))
    (folder / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ConfigError, match="model.safetensors: cannot read"):
        load_checkpoint(folder)


def test_codec_system_prefixes_bitrate_and_provenance(tiny_checkpoint):
    folder, _ = tiny_checkpoint
    codec = QdacCodec(checkpoint=str(folder), n_codebooks=2)
    assert codec.nominal_bitrate == 50 * 2 * 4  # 16-entry codebooks: 4 bits
    codec.load("cpu")
    audio = (np.random.default_rng(0).standard_normal(5000) * 0.1).astype(np.float32)
    codes = codec.encode(audio)
    assert codes.shape == (2, 16) and codes.dtype == np.int64
    out = codec.decode(codes)
    assert out.dtype == np.float32 and out.shape == (16 * 320,)
    assert codec.encoded_bits(codes) == 2 * 16 * 4
    full = QdacCodec(checkpoint=str(folder))
    full.load()
    assert np.array_equal(full.encode(audio)[:2], codes)  # qdac-2 = prefix of qdac-4
    prov = codec.provenance()
    assert prov["weights_sha256"] == sha256_file(folder / "model.safetensors")
    assert prov["n_codebooks"] == 2 and prov["trained_codebooks"] == 4


def test_codec_system_bad_input(tiny_checkpoint):
    folder, _ = tiny_checkpoint
    with pytest.raises(ConfigError, match="n_codebooks=8 exceeds the 4 codebooks"):
        QdacCodec(checkpoint=str(folder), n_codebooks=8)
    with pytest.raises(ConfigError, match="not found"):
        QdacCodec(checkpoint=str(folder / "missing"))
    codec = QdacCodec(checkpoint=str(folder))
    codec.load()
    with pytest.raises(ConfigError, match=r"codes out of range \[0, 16\]; valid 0..15"):
        codec.decode(np.array([[0, 16], [1, 2]]))
    with pytest.raises(ConfigError, match="got 5 codebooks"):
        codec.decode(np.zeros((5, 3), dtype=np.int64))
    with pytest.raises(ConfigError, match="shape"):
        codec.decode(np.zeros(3, dtype=np.int64))
    from qtts_bench.audio import AudioError

    with pytest.raises(AudioError, match="mono 16 kHz"):
        codec.encode(np.zeros((2, 100), dtype=np.float32))
    from qtts_bench.audio import Audio

    with pytest.raises(AudioError, match="qdac works at 16000 Hz, got 44100 Hz"):
        codec.encode_audio(Audio(np.zeros(441, dtype=np.float32), 44100))
    assert codec.encode_audio(Audio(np.full(640, 0.1, dtype=np.float32), 16000)).shape == (4, 2)


def test_system_module_does_not_import_torch():
    code = ("import sys, qtts_bench.systems.qdac, qtts_bench.qdac.checkpoint, qtts_bench.qdac.config, "
            "qtts_bench.metrics.codebook; print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("name", shipped_names())
def test_shipped_checkpoints_load_and_are_small(name):
    folder = resolve_checkpoint(name)
    assert (folder / "model.safetensors").stat().st_size < 15 * 2**20
    model, info = load_checkpoint(name)
    audio = torch.randn(1, 8000) * 0.1
    frames = -(-8000 // model.cfg.hop)  # 25 frames at 50 Hz, 13 at 25 Hz
    assert model.decode(model.encode(audio, 4)).shape == (1, frames * model.cfg.hop)
    assert info["config"]["training"]["step"] > 0


def test_shipped_qdac_checkpoints_stay_within_the_package_budget():
    """Issue 14: the package's QDAC checkpoints stay <= 60 MB in total."""
    total = sum((resolve_checkpoint(name) / "model.safetensors").stat().st_size for name in shipped_names())
    assert total <= 60 * 2**20, f"{total / 2**20:.1f} MB"


def test_suite_runs_qdac_prefixes_end_to_end(tiny_checkpoint, tmp_path):
    """QDAC 1/4 prefixes through the harness runner on synthetic speech (a stand-in for bundled)."""
    import yaml

    from qtts_bench.registry import SYSTEMS
    from qtts_bench.runner import run_suite
    from qtts_bench.suite import load_suite, validate_suite

    folder, _ = tiny_checkpoint
    if "qdac" not in SYSTEMS:
        SYSTEMS.register("qdac", "qtts_bench.systems.qdac:QdacCodec", "QDAC")
    suite = tmp_path / "suite.yaml"
    suite.write_text(yaml.safe_dump({
        "name": "qdac_tiny", "output": str(tmp_path / "results"), "warmup": 0,
        "datasets": {"syn": {"dataset": "synthetic", "params": {"n": 2, "seconds": 1.0,
                                                               "folder": str(tmp_path / "syn")}}},
        "systems": {"qdac": {"params": {"checkpoint": str(folder), "n_codebooks": [1, 4]}}},
        "metrics": {"si_sdr": {}, "stoi": {}},
    }))
    outcomes = run_suite(validate_suite(load_suite(suite)), progress=False, device="cpu")
    assert len(outcomes) == 2
    for run_dir in (tmp_path / "results" / "qdac_tiny" / "syn").iterdir():
        rows = [json.loads(line) for line in (run_dir / "items.jsonl").read_text().splitlines()]
        assert [r["status"] for r in rows] == ["ok", "ok"]
        assert rows[0]["system"]["n_codebooks"] in (1, 4)
        run = json.loads((run_dir / "run.json").read_text())
        assert run["system"]["provenance"]["weights_sha256"] == sha256_file(folder / "model.safetensors")

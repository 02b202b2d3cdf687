"""EnCodec / DAC / Mimi loaders on tiny random-initialised models saved to tmp_path.

No codec weights install offline; these tests check the local-folder loading path, the
n_codebooks parameter, shapes, bitrates and the errors, not the quality of any codec.
"""

import json

import numpy as np
import pytest

from qtts_bench.errors import ConfigError

pytest.importorskip("torch", reason="neural codecs need the 'neural-codecs' extra (torch)")
transformers = pytest.importorskip("transformers", reason="neural codecs need the 'neural-codecs' extra")

import torch  # noqa: E402

from qtts_bench.systems.neural_codecs import DacCodec, EncodecCodec, MimiCodec  # noqa: E402


def _tiny(name):
    if name == "encodec":
        cfg = transformers.EncodecConfig(
            sampling_rate=16000, target_bandwidths=[0.4, 0.8, 1.6], codebook_size=16, num_filters=4, hidden_size=8,
            codebook_dim=8, upsampling_ratios=[8, 5, 4], num_residual_layers=1, num_lstm_layers=1,
            audio_channels=1, chunk_length_s=None, overlap=None)
        return transformers.EncodecModel(cfg), EncodecCodec
    if name == "dac":
        cfg = transformers.DacConfig(
            sampling_rate=16000, encoder_hidden_size=4, downsampling_ratios=[2, 4, 5, 8], decoder_hidden_size=16,
            n_codebooks=4, codebook_size=16, codebook_dim=4, hidden_size=16)
        return transformers.DacModel(cfg), DacCodec
    cfg = transformers.MimiConfig(
        sampling_rate=16000, frame_rate=50.0, upsample_groups=16, upsampling_ratios=[8, 5, 4], num_filters=4,
        hidden_size=16, num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2, head_dim=8,
        intermediate_size=32, codebook_size=16, codebook_dim=8, vector_quantization_hidden_dimension=8,
        num_quantizers=4, num_semantic_quantizers=1, sliding_window=20, use_cache=False)
    return transformers.MimiModel(cfg), MimiCodec


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("neural")
    out = {}
    for name in ("encodec", "dac", "mimi"):
        torch.manual_seed(0)
        model, cls = _tiny(name)
        model.save_pretrained(root / name)
        out[name] = (str(root / name), cls)
    return out


# frame rates of the tiny models: EnCodec 16000/160, DAC 16000/320, Mimi 50 Hz
EXPECTED = {"encodec": (100.0, 4), "dac": (50.0, 4), "mimi": (50.0, 4)}


@pytest.mark.parametrize("name", ["encodec", "dac", "mimi"])
def test_round_trip_with_codebook_prefix(folders, name):
    path, cls = folders[name]
    frame_rate, total = EXPECTED[name]
    codec = cls(path, n_codebooks=2)
    assert codec.frame_rate == frame_rate and codec.total_codebooks == total
    assert codec.nominal_bitrate == frame_rate * 2 * 4  # 16-entry codebooks: 4 bits
    codec.load("cpu")
    audio = (np.random.default_rng(0).standard_normal(4000) * 0.1).astype(np.float32)
    codes = codec.encode(audio)
    assert codes.shape[0] == 2 and codes.dtype == np.int64
    assert abs(codes.shape[1] - 4000 / 16000 * frame_rate) <= 1
    assert codes.min() >= 0 and codes.max() < 16
    out = codec.decode(codes)
    assert out.dtype == np.float32 and abs(len(out) - 4000) <= 16000 / frame_rate
    assert np.all(np.isfinite(out))
    prov = codec.provenance()
    assert prov["weights_sha256"] and prov["n_codebooks"] == 2


def test_errors_name_the_problem(folders, tmp_path):
    path, _ = folders["encodec"]
    with pytest.raises(ConfigError, match=r"n_codebooks=3 matches none of the model's target bandwidths.*\[1, 2, 4\]"):
        EncodecCodec(path, n_codebooks=3)
    with pytest.raises(ConfigError, match="no config.json"):
        DacCodec(str(tmp_path / "missing"))
    with pytest.raises(ConfigError, match="model_type is 'encodec', expected 'dac'"):
        DacCodec(path)
    dac_path, _ = folders["dac"]
    with pytest.raises(ConfigError, match=r"n_codebooks must be an integer in 1..4"):
        DacCodec(dac_path, n_codebooks=5)
    codec = DacCodec(dac_path)
    codec.load()
    with pytest.raises(ConfigError, match="codes out of range"):
        codec.decode(np.array([[0, 16]]))
    broken = tmp_path / "broken"
    broken.mkdir()
    meta = json.loads(open(dac_path + "/config.json").read())
    (broken / "config.json").write_text(json.dumps(meta))
    with pytest.raises(ConfigError, match="cannot load checkpoint"):
        DacCodec(str(broken)).load()

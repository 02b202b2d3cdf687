"""Predicted MOS: equality with speechmos' own code path, ordering on real speech (clean >
degraded), one DNSMOS inference for four metrics, and bad input as missing values."""

import numpy as np
import pytest

pytest.importorskip("speechmos", reason="extra 'mos' (speechmos) not installed")

from qtts_bench.audio import Audio, read_audio, resample
from qtts_bench.errors import ConfigError, MetricFailure, QttsBenchError
from qtts_bench.metrics import mos
from qtts_bench.metrics.base import Inputs

SR = 16000


def _speech(n=1, speaker="allison"):
    from qtts_bench.data.bundled import load_bundled

    items = [it for it in load_bundled().items if it.speaker == speaker and it.language in ("en", None)]
    return [read_audio(it.audio) for it in items[:n]]


def _codec2(samples: np.ndarray, mode: int = 1200) -> np.ndarray:
    """Codec2 round trip through pycodec2 at 8 kHz, back at 16 kHz."""
    pycodec2 = pytest.importorskip("pycodec2")
    codec = pycodec2.Codec2(mode)
    spf = codec.samples_per_frame()
    x = resample(samples, SR, 8000)
    n = -(-len(x) // spf) * spf
    pcm = np.zeros(n, np.int16)
    pcm[:len(x)] = np.clip(np.round(x * 32767), -32768, 32767)
    out = np.concatenate([codec.decode(codec.encode(pcm[i:i + spf])) for i in range(0, n, spf)])
    return resample(out.astype(np.float32) / 32768.0, 8000, SR)


def _inputs(samples):
    return Inputs("u", estimate=Audio(np.asarray(samples, np.float32), SR))


@pytest.fixture(autouse=True)
def _fresh_memo():
    mos._MEMO.clear()


def test_dnsmos_equals_speechmos_reference_path():
    from speechmos import dnsmos as reference

    x = _speech()[0].samples
    ref = reference.run(x, SR)
    got = mos.dnsmos(x)
    for key, ref_key in [("sig", "sig_mos"), ("bak", "bak_mos"), ("ovrl", "ovrl_mos"), ("p808", "p808_mos")]:
        assert got[key] == pytest.approx(float(ref[ref_key]), abs=1e-5)


def test_dnsmos_orders_clean_speech_above_noise_and_codec2_1200():
    clean = _speech()[0].samples
    rng = np.random.default_rng(0)
    noise = rng.normal(0, 1, len(clean)).astype(np.float32)
    noisy = clean + noise * np.sqrt(np.mean(clean ** 2) / np.mean(noise ** 2))  # 0 dB SNR
    coded = _codec2(clean)
    a, b, c = (mos.dnsmos(np.clip(s, -1, 1)) for s in (clean, noisy, coded))
    assert a["p808"] > b["p808"] and a["ovrl"] > b["ovrl"] and a["bak"] > b["bak"] + 1.0
    assert a["p808"] > c["p808"]


def test_four_dnsmos_metrics_share_one_inference(monkeypatch):
    calls = []
    real = mos.dnsmos
    monkeypatch.setattr(mos, "dnsmos", lambda s, **k: calls.append(1) or real(s, **k))
    inputs = _inputs(_speech()[0].samples)
    values = {}
    for cls in (mos.DnsmosSig, mos.DnsmosBak, mos.DnsmosOvrl, mos.DnsmosP808):
        metric = cls(cache=False)
        metric.load("cpu")
        values[cls.name] = metric.score(inputs).value
    assert len(calls) == 1
    assert len(set(values.values())) == 4 and all(1.0 <= v <= 5.0 for v in values.values())


def test_dnsmos_values_come_back_from_the_disk_cache(tmp_path, monkeypatch):
    inputs = _inputs(_speech()[0].samples)
    first = mos.DnsmosP808().score(inputs).value
    mos._MEMO.clear()
    monkeypatch.setattr(mos, "dnsmos", lambda *a, **k: pytest.fail("cache miss"))
    assert mos.DnsmosP808().score(inputs).value == first


def test_plcmos_equals_speechmos_with_the_same_seed():
    from speechmos.plcmos import PLCMOS

    x = _speech()[0].samples
    np.random.seed(3)
    reference = PLCMOS().get_mos(x)
    assert mos.plcmos(x, seed=3) == pytest.approx(reference, abs=1e-5)
    assert mos.plcmos(x, seed=3) == mos.plcmos(x, seed=3)  # repeatable, unlike the global RNG


def test_plcmos_orders_clean_above_codec2_1200():
    clean = _speech()[0].samples
    assert mos.plcmos(clean) > mos.plcmos(np.clip(_codec2(clean), -1, 1))


@pytest.mark.parametrize("metric", [mos.DnsmosP808, mos.Plcmos])
def test_bad_input_is_a_missing_value_with_reason(metric):
    with pytest.raises(MetricFailure, match="silence"):
        metric(cache=False).score(_inputs(np.zeros(SR)))
    with pytest.raises(MetricFailure, match="shorter than min_seconds"):
        metric(cache=False).score(_inputs(_speech()[0].samples[:3200]))


def test_clip_the_model_rejects_is_a_missing_value_not_a_crash():
    with pytest.raises(MetricFailure, match="could not score"):
        mos.Plcmos(min_seconds=0, cache=False).score(_inputs(_speech()[0].samples[4000:4600]))


def test_out_of_range_samples_are_clipped_and_counted():
    x = _speech()[0].samples
    loud = x * (1.5 / np.max(np.abs(x)))
    score = mos.DnsmosP808(cache=False).score(_inputs(loud))
    assert score.extra["clipped_samples"] == int(np.sum(np.abs(loud) > 1))
    assert score.value == pytest.approx(mos.dnsmos(np.clip(loud, -1, 1))["p808"], abs=1e-6)


def test_settings_carry_model_hashes_and_versions():
    settings = mos.DnsmosOvrl().settings()
    assert len(settings["sig_bak_ovr_sha256"]) == 64 and len(settings["p808_sha256"]) == 64
    assert settings["speechmos"] and settings["onnxruntime"]
    assert len(mos.Plcmos().settings()["sha256"]) == 64


def test_distillmos_orders_clean_above_noisy():
    try:
        mos._import_distillmos()
    except (ImportError, QttsBenchError) as exc:  # MissingExtraError: extra 'distillmos' absent
        pytest.skip(f"distillmos unavailable: {exc}")
    clean = _speech()[0].samples
    noisy = clean + np.random.default_rng(1).normal(0, 0.05, len(clean)).astype(np.float32)
    metric = mos.DistillMos(cache=False)
    metric.load("cpu")
    a, b = metric.score(_inputs(clean)).value, metric.score(_inputs(np.clip(noisy, -1, 1))).value
    assert 1.0 <= b < a <= 5.0
    assert len(metric.settings()["sha256"]) == 64


def test_utmos_needs_local_repo_and_checkpoint(tmp_path):
    with pytest.raises(ConfigError, match="never downloads"):
        mos.Utmos().load("cpu")
    ckpt = tmp_path / "utmos22_strong_step7459_v1.pt"
    ckpt.write_bytes(b"x")
    with pytest.raises(ConfigError, match="hubconf.py"):
        mos.Utmos(repo=str(tmp_path), checkpoint=str(ckpt)).load("cpu")

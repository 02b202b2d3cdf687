"""QDAC model on tiny random-initialised configs: shapes, round trip, prefixes, dropout, causality."""

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="QDAC needs the 'torch' extra")

from qtts_bench.qdac.asr_head import AsrHead, decode_tokens, encode_text, pad_tokens  # noqa: E402
from qtts_bench.qdac.config import TINY_MODEL, QdacConfig  # noqa: E402
from qtts_bench.qdac.losses import MultiScaleMelLoss, mel_filterbank, si_sdr  # noqa: E402
from qtts_bench.qdac.model import Qdac, istft_frames, stft_frames  # noqa: E402

VARIANTS = [
    dict(frame_rate=50),
    dict(frame_rate=25),
    dict(frame_rate=50, decoder_output="complex"),
    dict(frame_rate=50, encoder="waveform", decoder="waveform", encoder_strides=(2, 4, 5, 8)),
    dict(frame_rate=25, encoder="waveform", decoder="waveform", encoder_strides=(2, 4, 8, 10)),
]


def tiny(**changes) -> Qdac:
    torch.manual_seed(0)
    return Qdac(QdacConfig(**{**TINY_MODEL, **changes})).eval()


def _variant_id(c):
    return f"{c['frame_rate']}Hz-{c.get('encoder', 'stft')}-{c.get('decoder_output', 'polar')}"


@pytest.mark.parametrize("changes", VARIANTS, ids=_variant_id)
def test_round_trip_shapes_and_code_range(changes):
    model = tiny(**changes)
    n = 5000  # not a multiple of the hop
    audio = torch.randn(2, n) * 0.1
    codes = model.encode(audio)
    frames = math.ceil(n / model.cfg.hop)
    assert codes.shape == (2, 4, frames) and codes.dtype == torch.int64
    assert int(codes.min()) >= 0 and int(codes.max()) < model.cfg.codebook_size
    out = model.decode(codes)
    assert out.shape == (2, frames * model.cfg.hop)
    assert torch.isfinite(out).all()
    train_out = model(audio)
    assert train_out["audio"].shape == out.shape
    assert torch.equal(train_out["codes"], codes)


def test_prefix_encoding_is_residual_prefix():
    model = tiny()
    audio = torch.randn(1, 3200) * 0.1
    full = model.encode(audio)
    for k in (1, 2, 3):
        assert torch.equal(model.encode(audio, k), full[:, :k])
        assert model.decode(full[:, :k]).shape == (1, 3200)


def test_quantizer_dropout_masks_later_codebooks():
    model = tiny()
    z = torch.randn(3, model.cfg.latent_dim, 7)
    n_active = torch.tensor([1, 3, 4])
    out = model.quantizer(z, n_active)
    for item, k in enumerate(n_active.tolist()):
        expected = model.quantizer.decode(out["codes"][item: item + 1, :k])
        assert torch.allclose(out["z_q"][item: item + 1], expected, atol=1e-5)
    # the commitment loss counts only active codebooks: item with 1 active < item with 4 active
    assert out["commitment"][0] < out["commitment"][2]


def test_asr_gradient_flows_only_through_codebook_one():
    model = tiny()
    model.train()
    head = AsrHead(model.cfg.latent_dim, dim=16, layers=1, heads=2)
    audio = torch.randn(2, 3200) * 0.1
    z = model.encoder(model.pad(audio))
    first, _, _, _ = model.quantizer.quantizers[0](z)
    tokens = pad_tokens([encode_text("ab", 16), encode_text("abc", 16)])
    ce, _ = head.loss(first, tokens)
    ce.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.encoder.parameters())
    assert model.quantizer.quantizers[0].out_proj.weight.grad.abs().sum() > 0
    for q in model.quantizer.quantizers[1:]:
        assert all(p.grad is None for p in q.parameters())
    assert all(p.grad is None for p in model.decoder.parameters())


def test_asr_head_overfits_one_transcript():
    torch.manual_seed(0)
    head = AsrHead(8, dim=32, layers=1, heads=2)
    head.eval()  # no dropout: a deterministic fit
    memory = torch.randn(1, 8, 10)
    tokens = pad_tokens([encode_text("да, hi", 32)])
    opt = torch.optim.Adam(head.parameters(), lr=3e-3)
    first_loss = None
    for _ in range(150):
        ce, _ = head.loss(memory, tokens)
        first_loss = first_loss if first_loss is not None else ce.item()
        opt.zero_grad()
        ce.backward()
        opt.step()
    assert ce.item() < 0.1 * first_loss
    assert head.transcribe(memory, max_tokens=20) == ["да, hi"]


def test_byte_tokens_round_trip():
    ids = encode_text("Вы ввели ПИН-код.", 64)
    assert decode_tokens(ids[1:]) == "Вы ввели ПИН-код."
    assert encode_text("x" * 100, 20) is None


@pytest.mark.parametrize("changes", [dict(), dict(decoder="waveform", encoder="waveform", encoder_strides=(2, 4, 5, 8))],
                         ids=["istft", "waveform"])
def test_causal_model_does_not_look_ahead(changes):
    model = tiny(causal=True, **changes)
    hop = model.cfg.hop
    audio = torch.randn(1, 10 * hop) * 0.1
    changed = audio.clone()
    changed[:, 6 * hop:] += torch.randn(1, 4 * hop) * 0.1
    with torch.no_grad():
        za, zb = model.encoder(audio), model.encoder(changed)
    assert torch.allclose(za[..., :6], zb[..., :6], atol=1e-6)  # frames 0..5 end at sample 6*hop
    assert not torch.allclose(za[..., 6:], zb[..., 6:], atol=1e-6)
    a, b = model.encode(audio), model.encode(changed)
    assert torch.equal(a[..., :6], b[..., :6])
    codes = a.clone()
    codes[..., 6:] = (codes[..., 6:] + 1) % model.cfg.codebook_size
    out_a, out_b = model.decode(a), model.decode(codes)
    safe = 6 * hop - model.lookahead_samples
    assert torch.allclose(out_a[:, :safe], out_b[:, :safe], atol=1e-6)
    assert not torch.allclose(out_a[:, 6 * hop:], out_b[:, 6 * hop:])


def test_non_causal_model_uses_future_context():
    model = tiny(causal=False)
    hop = model.cfg.hop
    audio = torch.randn(1, 10 * hop) * 0.1
    changed = audio.clone()
    changed[:, 6 * hop:] += torch.randn(1, 4 * hop)
    with torch.no_grad():
        assert not torch.allclose(model.encoder(audio)[..., 5], model.encoder(changed)[..., 5], atol=1e-6)


@pytest.mark.parametrize("causal", [False, True])
def test_stft_istft_perfect_reconstruction_in_interior(causal):
    """Analytic check of the overlap-add: an unmodified STFT inverts exactly away from the edges."""
    x = torch.randn(2, 160 * 40, dtype=torch.float64)
    y = istft_frames(stft_frames(x, 640, 160, causal).to(torch.complex64), 640, 160, causal)
    assert y.shape == x.shape
    assert torch.allclose(y[:, 640:-640].double(), x[:, 640:-640], atol=1e-4)


def test_si_sdr_analytic():
    rng = np.random.default_rng(0)
    ref = torch.from_numpy(rng.standard_normal(16000))
    ref = ref - ref.mean()
    noise = torch.from_numpy(rng.standard_normal(16000))
    noise = noise - noise.mean()
    noise = noise - (noise @ ref) / (ref @ ref) * ref  # orthogonal to the reference
    noise = noise * (ref.norm() / noise.norm()) * 10 ** (-12 / 20)  # 12 dB below
    value = si_sdr((3.0 * (ref + noise))[None], ref[None])
    assert float(value) == pytest.approx(12.0, abs=1e-6)


def test_mel_filterbank_and_loss():
    fb = mel_filterbank(512, 40)
    assert fb.shape == (40, 257) and float(fb.min()) >= 0
    peaks = fb.argmax(dim=1)
    assert bool((peaks[1:] >= peaks[:-1]).all())  # filters ordered by frequency
    loss = MultiScaleMelLoss()
    x = torch.randn(1, 8000) * 0.1
    assert float(loss(x, x)) == 0.0
    assert float(loss(x * 0.5, x)) == pytest.approx(4 * np.log10(2), rel=0.02)  # log10 gain, 4 scales

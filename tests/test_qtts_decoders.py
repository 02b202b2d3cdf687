"""QTTS decoders on tiny random models: delay pattern, KV cache, depth passes, seeds, stop and limits."""

import pytest

torch = pytest.importorskip("torch", reason="QTTS needs the 'torch' extra")

from qtts_bench.qtts.config import QttsConfig, count_parameters  # noqa: E402
from qtts_bench.qtts.decoders import (build_delay_pattern, delay_targets, frame_targets,  # noqa: E402
                                      revert_delay_pattern)
from qtts_bench.qtts.model import QttsModel  # noqa: E402
from qtts_bench.qtts.sampling import SamplingConfig, sample  # noqa: E402
from qtts_bench.qtts.testing import tiny_model_config  # noqa: E402

TOL = 1e-5  # float32 logits: KV-cached vs one uncached pass
C = 16


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def model_of(decoder, seed=0, **changes):
    torch.manual_seed(seed)
    return QttsModel(tiny_model_config(decoder, **changes)).eval()


def generate(model, text, prompt=None, seed=0, max_frames=30, **sampling):
    info = {}
    sampling = SamplingConfig(**{"temperature": 1.0, "top_k": 0, **sampling})
    gen = torch.Generator().manual_seed(seed)
    frames = list(model.generate(text, prompt, sampling=sampling, generator=gen, max_frames=max_frames, info=info))
    codes = torch.stack(frames, dim=1) if frames else torch.zeros(model.cfg.n_codebooks, 0, dtype=torch.long)
    return codes, info


def set_eos_bias(model, value):
    with torch.no_grad():
        model.decoder.heads.bias[0, model.cfg.codebook_size] = value


TEXT = torch.tensor([[5, 9, 12, 1, 30, 31, 7]])


# --- delay pattern -----------------------------------------------------------------------------
@pytest.mark.parametrize("K,T", [(1, 5), (2, 1), (4, 9), (8, 3)])
def test_delay_build_then_revert_is_the_identity(K, T):
    codes = torch.randint(0, C, (K, T))
    pattern = build_delay_pattern(codes, pad=C)
    assert pattern.shape == (K, T + K - 1)
    for k in range(K):  # codebook k delayed by k steps, padding elsewhere
        assert (pattern[k, :k] == C).all() and (pattern[k, k + T:] == C).all()
        assert torch.equal(pattern[k, k:k + T], codes[k])
    assert torch.equal(revert_delay_pattern(pattern, T), codes)
    batched = torch.randint(0, C, (3, K, T))
    assert torch.equal(revert_delay_pattern(build_delay_pattern(batched, C), T), batched)


def test_delay_targets_mark_pads_invalid_and_put_eos_on_codebook_one():
    cfg = tiny_model_config("multihead")
    codes = torch.randint(0, C, (2, 4, 6))
    frames = torch.tensor([6, 3])
    tgt, valid = delay_targets(codes, frames, cfg)
    assert tgt.shape == (2, 4, 6 + 3)
    for b, T in enumerate(frames.tolist()):
        assert tgt[b, 0, T] == cfg.eos_id and valid[b, 0, T]
        for k in range(4):
            real = valid[b, k].nonzero().flatten().tolist()
            assert real == list(range(k, k + T)) + ([T] if k == 0 else [])
            assert torch.equal(tgt[b, k, k:k + T], codes[b, k, :T])
            assert (tgt[b, k][~valid[b, k]] == cfg.pad_id).all()  # every non-target is the pad token
    # pads never reach a head's target: heads have C + 1 columns (codes + EOS), pad id C is never a target
    assert not ((tgt == cfg.pad_id) & valid).any()
    ftgt, fvalid = frame_targets(codes, frames, tiny_model_config("hierarchical"))
    assert ftgt.shape == (2, 4, 7) and ftgt[1, 0, 3] == cfg.eos_id and not fvalid[1, 1:, 3].any()


def test_prompt_is_placed_once_and_the_full_pattern_reverts_to_prompt_plus_output():
    model = model_of("multihead")
    K = model.cfg.n_codebooks
    prompt = torch.randint(0, C, (K, 6))
    codes, info = generate(model, TEXT, prompt, seed=1, max_frames=12)
    pattern, end = info["pattern"], info["end_frame"]
    assert end == 6 + codes.shape[1]
    assert torch.equal(revert_delay_pattern(pattern, end), torch.cat([prompt, codes], dim=1))
    # the returned codes exclude the prompt and hold no pad / EOS
    assert codes.shape[1] >= 1 and codes.max() < C and codes.min() >= 0


@pytest.mark.parametrize("decoder", ["multihead", "hierarchical", "single"])
def test_no_special_token_in_returned_codes(decoder):
    model = model_of(decoder, seed=3)
    for seed in range(4):
        codes, info = generate(model, TEXT, seed=seed, max_frames=25)
        assert codes.shape[0] == model.cfg.n_codebooks
        assert codes.shape[1] == info["frames"] and (codes < C).all() and (codes >= 0).all()


# --- KV cache ------------------------------------------------------------------------------------
def test_multihead_kv_cached_logits_equal_one_uncached_pass():
    model = model_of("multihead", seed=4)
    cfg = model.cfg
    codes = torch.randint(0, C, (1, 4, 10))
    tgt, _ = delay_targets(codes, torch.tensor([10]), cfg)
    full = model.decoder.heads.all(model.backbone(TEXT, torch.ones_like(TEXT, dtype=torch.bool), tgt[:, :, :-1]))
    for P in (0, 5):  # prefill with the first P known steps (a prompt), then one step at a time
        cache = model.backbone.new_cache(1, 64)
        with torch.no_grad():
            h = model.backbone.prefill(TEXT, tgt[:, :, :P], cache)
            cached = [model.decoder.heads.all(h)]
            for s in range(P, tgt.shape[2] - 1):
                cached.append(model.decoder.heads.all(model.backbone.step(tgt[:, :, s], s, cache)))
        cached = torch.stack(cached, dim=1)
        assert torch.allclose(cached, full[:, P:], atol=TOL, rtol=0), (cached - full[:, P:]).abs().max()


def test_hierarchical_backbone_and_depth_cached_logits_equal_uncached():
    model = model_of("hierarchical", seed=5)
    cfg, dec = model.cfg, model.decoder
    codes = torch.randint(0, C, (1, 4, 8))
    tgt, _ = frame_targets(codes, torch.tensor([8]), cfg)
    hidden = model.backbone(TEXT, torch.ones_like(TEXT, dtype=torch.bool), tgt[:, :, :-1])  # (1, 9, d)
    cache = model.backbone.new_cache(1, 64)
    with torch.no_grad():
        hs = [model.backbone.prefill(TEXT, None, cache)]
        for t in range(8):
            hs.append(model.backbone.step(tgt[:, :, t], t, cache))
    assert torch.allclose(torch.cat(hs), hidden[0], atol=TOL, rtol=0)
    rows = tgt[0, :, :8].T  # (8 frames, K)
    full = dec.depth_forward(hidden[0, :8], rows)  # whole depth sequence, one causal pass
    depth_cache = dec.new_depth_cache("cpu", torch.float32)
    with torch.no_grad():
        for t in range(8):
            depth_cache.reset()
            x0 = dec.proj(hidden[0, t:t + 1])
            for k in range(4):
                x = x0 + dec.pos[k] if k == 0 else x0 + dec.emb[k - 1](rows[t, k - 1:k]) + dec.pos[k]
                assert torch.allclose(dec.depth_step(x, k, depth_cache)[0], full[t, k], atol=TOL, rtol=0)


@pytest.mark.parametrize("decoder", ["multihead", "hierarchical"])
def test_greedy_generation_agrees_with_the_uncached_forward(decoder):
    """Every greedily generated token is the argmax of one uncached teacher-forced pass over the output."""
    model = model_of(decoder, seed=6)
    set_eos_bias(model, -1e4)
    codes, info = generate(model, TEXT, max_frames=12, temperature=0.0)
    T = codes.shape[1]
    sums, counts = model.loss({"text_ids": TEXT, "text_mask": torch.ones_like(TEXT, dtype=torch.bool),
                               "codes": codes[None], "frames": torch.tensor([T])})
    if decoder == "multihead":
        tgt, valid = delay_targets(codes[None], torch.tensor([T]), model.cfg)
        logits = model.decoder.heads.all(model.backbone(TEXT, torch.ones_like(TEXT, dtype=torch.bool), tgt[:, :, :-1]))
        best = logits[0].argmax(-1).T  # (K, S)
        assert torch.equal(best[valid[0] & (tgt[0] < C)], tgt[0][valid[0] & (tgt[0] < C)])
    else:
        tgt, _ = frame_targets(codes[None], torch.tensor([T]), model.cfg)
        hidden = model.backbone(TEXT, torch.ones_like(TEXT, dtype=torch.bool), tgt[:, :, :-1])
        best = model.decoder.depth_forward(hidden[0, :T], codes.T).argmax(-1)  # (T, K)
        assert torch.equal(best, codes.T)


# --- depth passes, seeds, stop, limits -----------------------------------------------------------
def test_hierarchical_generation_makes_exactly_n_depth_passes_per_frame():
    model = model_of("hierarchical", seed=7)
    set_eos_bias(model, -1e4)  # never ends: every frame runs all codebooks
    calls, positions = [], []

    def count(module, args, output):  # returns None: the output is unchanged
        calls.append(1)
        positions.append(args[0].shape[1])

    hook = model.decoder.layers[0].register_forward_hook(count)
    try:
        codes, info = generate(model, TEXT, max_frames=9)
    finally:
        hook.remove()
    K = model.cfg.n_codebooks
    assert codes.shape == (K, 9) and info["max_length_hit"]
    assert len(calls) == K * 9 == info["depth_steps"]  # N passes per frame, not N(N+1)/2
    assert set(positions) == {1}  # each pass sees one new depth position (the rest is cached)
    # a frame whose codebook 1 is end-of-speech costs one depth pass
    set_eos_bias(model, 1e4)
    calls.clear()
    hook = model.decoder.layers[0].register_forward_hook(count)
    try:
        codes, info = generate(model, TEXT, max_frames=9, min_frames=2)
    finally:
        hook.remove()
    assert codes.shape == (K, 2) and info["eos"] and len(calls) == K * 2 + 1


@pytest.mark.parametrize("decoder", ["multihead", "hierarchical", "single"])
def test_generation_is_deterministic_under_a_seed(decoder):
    model = model_of(decoder, seed=8)
    set_eos_bias(model, -1e4)
    a, _ = generate(model, TEXT, seed=11, max_frames=15)
    b, _ = generate(model, TEXT, seed=11, max_frames=15)
    c, _ = generate(model, TEXT, seed=12, max_frames=15)
    assert torch.equal(a, b) and not torch.equal(a, c)


@pytest.mark.parametrize("K", [1, 2, 4])
def test_multihead_stop_cascades_in_delay_order(K):
    model = model_of("multihead" if K > 1 else "single", seed=9, n_codebooks=K)
    set_eos_bias(model, 1e4)  # end of speech as soon as allowed
    codes, info = generate(model, TEXT, max_frames=20, min_frames=3)
    assert codes.shape == (K, 3) and info["eos"] and not info["max_length_hit"]
    E, pattern = info["end_frame"], info["pattern"]
    assert E == 3 and info["steps"] == 3 + max(K - 1, 1)  # the EOS step, then K - 2 more for the cascade
    for k in range(K):
        assert pattern[k, E - 1 + k] < C  # codebook k's last frame, k steps after codebook 1's last
        assert (pattern[k, E + k:] >= C).all()  # then nothing but pad / EOS
    assert pattern[0, E] == model.cfg.eos_id


@pytest.mark.parametrize("decoder", ["multihead", "hierarchical", "single"])
def test_a_model_that_never_ends_stops_at_max_length(decoder):
    model = model_of(decoder, seed=10)
    set_eos_bias(model, float("-inf"))
    codes, info = generate(model, TEXT, max_frames=17)
    assert codes.shape[1] == 17 and info["max_length_hit"] and not info["eos"]
    assert (codes < C).all()


# --- sizes and sampling --------------------------------------------------------------------------
@pytest.mark.parametrize("decoder", ["multihead", "hierarchical", "single"])
def test_analytic_parameter_count_matches_the_model(decoder):
    cfg = tiny_model_config(decoder)
    assert sum(p.numel() for p in QttsModel(cfg).parameters()) == count_parameters(cfg)["total"]


def test_pilot_configs_have_equal_parameter_counts():
    from pathlib import Path

    import yaml

    root = Path(__file__).resolve().parents[1] / "configs" / "qtts"
    counts = {}
    for name in ("pilot_hierarchical", "pilot_multihead"):
        raw = yaml.safe_load((root / f"{name}.yaml").read_text())
        model = {"frame_rate": 50, "codebook_size": 2048, **raw["model"]}
        counts[name] = count_parameters(QttsConfig(**model))["total"]
    a, b = counts.values()
    assert abs(a - b) / max(a, b) < 0.01, counts


def test_sampling_filters_and_penalty():
    logits = torch.tensor([[0.0, 5.0, 4.0, -1.0]])
    gen = torch.Generator().manual_seed(0)
    greedy = SamplingConfig(temperature=0)
    assert sample(logits, greedy).item() == 1
    top1 = SamplingConfig(temperature=1.0, top_k=1)
    assert {sample(logits, top1, gen).item() for _ in range(20)} == {1}
    nucleus = SamplingConfig(temperature=1.0, top_k=0, top_p=0.5)  # token 1 alone holds > 50 %
    assert {sample(logits, nucleus, gen).item() for _ in range(20)} == {1}
    penalised = SamplingConfig(temperature=0, repetition_penalty=3.0)
    assert sample(logits, penalised, history=torch.tensor([[1, -1]])).item() == 2
    with pytest.raises(Exception, match="top_p"):
        SamplingConfig(top_p=0)

"""The qtts system on tiny random checkpoints: harness runs, codes to the codebook metrics, streaming,
length limits and bad input (clear per-utterance failures, never a hang)."""

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="QTTS needs the 'torch' extra")
pytest.importorskip("safetensors", reason="QTTS checkpoints need the 'torch' extra")

from qtts_bench.errors import SystemFailure  # noqa: E402
from qtts_bench.qtts.testing import tiny_qdac, tiny_qtts  # noqa: E402
from qtts_bench.runner import run_suite  # noqa: E402
from qtts_bench.suite import load_suite, validate_suite  # noqa: E402
from qtts_bench.systems.base import Request  # noqa: E402
from qtts_bench.systems.qtts import QttsTTS  # noqa: E402
from qtts_bench.testing import speech_like  # noqa: E402


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory):
    root = tmp_path_factory.mktemp("qtts")
    codec = tiny_qdac(root / "qdac")
    out = {"codec": codec}
    for decoder in ("hierarchical", "multihead", "single"):
        out[decoder] = tiny_qtts(root / decoder, codec, decoder)
        out[f"{decoder}_endless"] = tiny_qtts(root / f"{decoder}_endless", codec, decoder, eos_bias=-1e4)
    return out


def system(path, **params):
    s = QttsTTS(checkpoint=str(path), **params)
    s.load("cpu")
    return s


@pytest.mark.parametrize("decoder", ["hierarchical", "multihead", "single"])
def test_runs_through_the_harness_and_its_codes_reach_the_codebook_metric(write_suite, tmp_path, ckpts, decoder):
    path = write_suite(f"""
name: qtts_e2e
datasets:
  syn: {{dataset: synthetic, params: {{n: 2}}}}
systems:
  q: {{system: qtts, params: {{checkpoint: "{ckpts[decoder]}", decoder: {decoder}, max_seconds: 1.0}}}}
metrics:
  codebook_perplexity: {{}}
  rtf: {{}}
  ttft: {{}}
""")
    (outcome,) = run_suite(validate_suite(load_suite(path)), progress=False, command=["test"], out=tmp_path / "out")
    records = [json.loads(line) for line in (outcome.folder / "items.jsonl").read_text().splitlines()]
    K = 1 if decoder == "single" else 4
    for r in records:
        assert r["status"] == "ok", r
        assert r["metrics"]["codebook_perplexity"]["value"] is not None
        assert r["system"]["n_codebooks"] == K and r["system"]["codebook_size"] == 16
        assert r["system"]["frame_rate"] == 50.0 and "max_length_hit" in r["system"]
        assert r["metrics"]["ttft"]["value"] is not None and r["metrics"]["rtf"]["value"] > 0
    pooled = outcome.summary["metrics"]["codebook_perplexity"]["pooled"]
    assert pooled["frames"] == sum(r["system"]["generated_frames"] for r in records)


@pytest.mark.parametrize("decoder", ["hierarchical", "multihead"])
def test_streamed_chunks_equal_one_whole_decode_and_ttft_is_the_first_chunk(ckpts, decoder):
    streamed = system(ckpts[f"{decoder}_endless"], stream_chunk_frames=4, max_seconds=1.0)
    whole = system(ckpts[f"{decoder}_endless"], stream_chunk_frames=0, max_seconds=1.0)
    request = Request("u", text="hello there", seed=5)
    a, b = streamed.generate(request), whole.generate(request)
    assert np.array_equal(a.codes, b.codes) and a.codes.shape[1] == 50  # 1 s at 50 Hz
    assert a.audio.shape == b.audio.shape == (50 * 320,)
    assert np.allclose(a.audio, b.audio, atol=1e-5)
    assert a.ttft is not None and 0 < a.ttft < a.seconds and b.ttft is None


@pytest.mark.parametrize("decoder", ["hierarchical", "multihead", "single"])
def test_max_length_from_the_text_is_enforced_and_recorded(ckpts, decoder):
    s = system(ckpts[f"{decoder}_endless"], max_seconds=60.0)
    g = s.generate(Request("u", text="hi", seed=1))  # 50 Hz * (1 s + 0.2 s/token * 2 tokens) = 70 frames
    assert g.extra["max_length_hit"] is True and g.extra["eos"] is False
    assert g.codes.shape[1] == g.extra["max_frames"] == 70 and g.audio.shape == (70 * 320,)
    assert (g.codes >= 0).all() and (g.codes < 16).all()


def test_prompt_codes_precede_the_output_and_are_not_returned(ckpts):
    s = system(ckpts["multihead_endless"], max_seconds=0.4)
    prompt = speech_like(1.0, 16000, seed=3)
    g = s.generate(Request("u", text="hello", prompt_audio=prompt, prompt_text="a prompt", seed=2))
    assert g.extra["prompt_used"] and g.extra["prompt_frames"] == 50 and g.codes.shape[1] == 20
    no_text = s.generate(Request("u", text="hello", prompt_audio=prompt, prompt_text=None, seed=2))
    assert not no_text.extra["prompt_used"] and no_text.extra["prompt_frames"] == 0


def test_bad_input_fails_the_utterance_with_a_reason(ckpts):
    s = system(ckpts["hierarchical"])
    with pytest.raises(SystemFailure, match="no text"):
        s.generate(Request("u", text="   "))
    with pytest.raises(SystemFailure, match="outside the vocabulary: '你'"):
        s.generate(Request("u", text="hello 你"))
    with pytest.raises(SystemFailure, match="text context is 96"):
        s.generate(Request("u", text="word " * 40))
    long_prompt = speech_like(5.0, 16000, seed=1)  # 250 frames > the tiny model's 200-frame audio context
    with pytest.raises(SystemFailure, match="fills the model's audio context of 200 frames"):
        s.generate(Request("u", text="hello", prompt_audio=long_prompt, prompt_text="a long prompt"))
    with pytest.raises(SystemFailure, match="silent"):
        s.generate(Request("u", text="hello", prompt_audio=np.zeros(8000, np.float32), prompt_text="silence"))
    assert s.unavailable() is None
    provenance = s.provenance()
    assert provenance["decoder"] == "hierarchical" and provenance["weights_sha256"]


@pytest.mark.parametrize("name", ["qdac16-50hz-asr", "qdac16-25hz-asr"])
def test_chunked_decoding_of_the_shipped_qdac_equals_one_whole_decode(name):
    from qtts_bench.qtts.inference import ChunkedDecoder, measure_reach
    from qtts_bench.systems.qdac import QdacCodec

    codec = QdacCodec(name, n_codebooks=4)
    codec.load("cpu")
    reach = measure_reach(codec.decode, 4, codec.codebook_size, codec.cfg.hop)
    assert reach is not None and 1 <= reach <= 16
    codes = np.random.default_rng(0).integers(0, codec.codebook_size, (4, 47))
    chunker = ChunkedDecoder(codec.decode, codec.cfg.hop, left=reach, right=reach, chunk=5)
    pieces = [c for c in (chunker.push(codes[:, t]) for t in range(codes.shape[1])) if c is not None]
    pieces.append(chunker.flush())
    whole = codec.decode(codes)
    assert len(pieces) > 3 and np.allclose(np.concatenate(pieces), whole, atol=1e-5)


@pytest.mark.parametrize("decoder", ["hierarchical", "multihead"])
def test_conforms_to_the_system_contract(tmp_path, ckpts, decoder):
    from qtts_bench.conformance import check_constructor, check_system, make_request

    folder = tiny_qtts(tmp_path / decoder, ckpts["codec"], decoder, max_text_tokens=320, max_audio_frames=1000)
    system = check_constructor(QttsTTS, checkpoint=str(folder), max_seconds=1.0)
    generation = check_system(system, make_request(system))
    assert generation.extra["prompt_used"] and generation.codes.shape[0] == 4

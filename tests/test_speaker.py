"""Speaker similarity: cosine and EER against analytic cases and scikit-learn, resemblyzer against
its own per-utterance API, and speaker separation on the bundled real speech."""

import itertools

import numpy as np
import pytest

from qtts_bench.audio import Audio, read_audio
from qtts_bench.errors import ConfigError, MetricFailure
from qtts_bench.metrics.base import Inputs
from qtts_bench.metrics.speaker import (
    SimO,
    SimR,
    SpeakerEmbedder,
    cosine_similarity,
    equal_error_rate,
    shared_backend,
)
from qtts_bench.metrics.speaker_backends import (
    SpeechBrainEcapaBackend,
    WavLmEcapaBackend,
    build_ecapa_head,
    make_backend,
)

SR = 16000


# --- cosine and EER (analytic) ---------------------------------------------------------------
def test_cosine_on_known_vectors():
    assert cosine_similarity(np.array([1.0, 0.0]), np.array([1.0, 1.0])) == pytest.approx(2 ** -0.5, abs=1e-12)
    assert cosine_similarity(np.array([1.0, 0.0, 0.0]), np.array([0.0, 3.0, 0.0])) == pytest.approx(0.0, abs=1e-12)
    assert cosine_similarity(np.array([1.0, 2.0]), np.array([-2.0, -4.0])) == pytest.approx(-1.0, abs=1e-12)
    a, b = np.array([3.0, 4.0, 0.0]), np.array([4.0, 3.0, 5.0])
    assert cosine_similarity(7 * a, 0.1 * b) == pytest.approx(24 / (5 * np.sqrt(50)), abs=1e-12)


def test_cosine_of_zero_vector_is_missing():
    with pytest.raises(MetricFailure, match="zero vector"):
        cosine_similarity(np.zeros(4), np.ones(4))


def test_eer_analytic_cases():
    assert equal_error_rate([0.9, 0.8, 0.3, 0.2], [True, True, False, False])[0] == 0.0
    # targets 1..4, impostors 0, 1.5, 2.5, 5: at threshold 2.5 half of each side is wrong
    eer, thr = equal_error_rate([1, 2, 3, 4, 0, 1.5, 2.5, 5], [True] * 4 + [False] * 4)
    assert eer == pytest.approx(0.5) and thr == pytest.approx(2.5)
    with pytest.raises(ValueError):
        equal_error_rate([0.1, 0.2], [True, True])


def test_eer_matches_sklearn_roc_crossing():
    metrics = pytest.importorskip("sklearn.metrics")
    from scipy.interpolate import interp1d
    from scipy.optimize import brentq

    rng = np.random.default_rng(1)
    scores = np.concatenate([rng.normal(1.0, 1.0, 400), rng.normal(0.0, 1.0, 1200)])
    labels = np.r_[np.ones(400, bool), np.zeros(1200, bool)]
    fpr, tpr, _ = metrics.roc_curve(labels, scores)
    reference = brentq(lambda x: 1.0 - x - interp1d(fpr, tpr)(x), 0.0, 1.0)
    assert equal_error_rate(scores, labels)[0] == pytest.approx(reference, abs=1e-6)


# --- configuration errors (no weights needed) ------------------------------------------------
def test_unknown_backend_and_parameters_are_config_errors():
    with pytest.raises(ConfigError, match="unknown speaker backend"):
        make_backend("titanet")
    with pytest.raises(ConfigError, match="speechbrain_ecapa"):
        SimO(backend="speechbrain_ecapa", no_such_param=1)


def test_speechbrain_ecapa_needs_a_local_folder_with_its_files(tmp_path):
    with pytest.raises(ConfigError, match="needs 'checkpoint'"):
        SpeechBrainEcapaBackend().identity()
    with pytest.raises(ConfigError, match="not found"):
        SpeechBrainEcapaBackend(checkpoint=str(tmp_path / "absent")).load()
    (tmp_path / "hyperparams.yaml").write_text("x: 1\n")
    with pytest.raises(ConfigError, match="embedding_model.ckpt"):
        SpeechBrainEcapaBackend(checkpoint=str(tmp_path)).load()


def test_wavlm_ecapa_needs_checkpoint_and_s3prl_hub(tmp_path):
    with pytest.raises(ConfigError, match="wavlm_large_finetune"):
        WavLmEcapaBackend().load()
    ckpt = tmp_path / "wavlm_large_finetune.pth"
    ckpt.write_bytes(b"not a checkpoint")
    with pytest.raises(ConfigError, match="s3prl_hub"):
        WavLmEcapaBackend(checkpoint=str(ckpt)).load()
    with pytest.raises(ConfigError, match="hubconf.py"):
        WavLmEcapaBackend(checkpoint=str(ckpt), s3prl_hub=str(tmp_path)).load()


def test_wavlm_ecapa_head_loads_unispeech_style_state_and_rejects_incomplete_ones():
    torch = pytest.importorskip("torch")

    class TinyUpstream(torch.nn.Module):
        """Stand-in for the s3prl upstream: 3 'hidden states' of 16 features per 20 ms."""

        def __init__(self):
            super().__init__()
            self.proj = torch.nn.Linear(320, 16)

        def forward(self, waves):
            frames = torch.stack([w[: len(w) // 320 * 320].reshape(-1, 320) for w in waves])
            h = self.proj(frames)
            return {"hidden_states": [h, torch.tanh(h), h * 0.5]}

    torch.manual_seed(0)
    head = build_ecapa_head(feat_dim=16, n_layers=3).eval()
    upstream = TinyUpstream()
    state = {**head.state_dict(), **{f"feature_extract.{k}": v for k, v in upstream.state_dict().items()}}
    backend = WavLmEcapaBackend(checkpoint="unused", s3prl_hub="unused")
    backend.attach(TinyUpstream(), state)  # fresh upstream gets the checkpoint's weights
    assert backend.upstream_keys_loaded == 2
    wave = np.random.default_rng(0).normal(0, 0.1, SR).astype(np.float32)
    emb = backend.embed_batch([wave])[0]
    with torch.no_grad():
        x = torch.from_numpy(wave)
        expected = head(torch.stack(upstream([x])["hidden_states"]))[0].numpy()
    assert emb.shape == (256,)
    np.testing.assert_allclose(emb, expected, rtol=1e-5, atol=1e-6)
    with pytest.raises(ConfigError, match="lacks head parameters"):
        WavLmEcapaBackend().attach(TinyUpstream(), {k: v for k, v in state.items() if not k.startswith("layer4")})


# --- resemblyzer on real speech -------------------------------------------------------------
def _bundled(speakers=("allison", "june", "carlo"), per_speaker=3, language=None):
    """First utterances of each speaker; ``language`` restricts allison (who speaks en and es)."""
    from qtts_bench.data.bundled import load_bundled

    chosen = []
    for spk in speakers:
        items = [it for it in load_bundled().items if it.speaker == spk
                 and not (language and spk == "allison" and it.language != language)]
        chosen += items[:per_speaker]
    return chosen


@pytest.fixture(scope="module")
def resemblyzer_backend():
    pytest.importorskip("resemblyzer", reason="extra 'speaker' (resemblyzer) not installed")
    return shared_backend("resemblyzer")


def test_batched_resemblyzer_equals_its_per_utterance_api(resemblyzer_backend):
    from resemblyzer import preprocess_wav

    waves = [read_audio(it.audio).samples for it in _bundled(per_speaker=1)]
    batched = resemblyzer_backend.embed_batch(waves, batch_size=8)
    for wave, emb in zip(waves, batched):
        reference = resemblyzer_backend._encoder.embed_utterance(preprocess_wav(wave))
        np.testing.assert_allclose(emb, reference, atol=1e-5)


def test_same_speaker_cosine_above_different_speaker_on_bundled_speech(resemblyzer_backend):
    items = _bundled(language="en")
    embedder = SpeakerEmbedder(resemblyzer_backend, batch_size=16)
    emb = embedder.embed([read_audio(it.audio) for it in items])
    speakers = [it.speaker for it in items]
    sims = {(i, j): cosine_similarity(emb[i], emb[j]) for i, j in itertools.combinations(range(len(items)), 2)}
    for a, b in itertools.combinations(sorted(set(speakers)), 2):
        same = [s for (i, j), s in sims.items() if speakers[i] == speakers[j] and speakers[i] in (a, b)]
        cross = [s for (i, j), s in sims.items() if {speakers[i], speakers[j]} == {a, b}]
        assert np.mean(same) > np.mean(cross) + 0.05, (a, b, np.mean(same), np.mean(cross))


def test_sim_o_and_sim_r_share_one_model_and_report_it(resemblyzer_backend):
    items = _bundled(speakers=("allison", "june"), per_speaker=2, language="en")
    a0, a1, j0 = (read_audio(items[i].audio) for i in (0, 1, 2))
    sim_o, sim_r = SimO(), SimR()
    sim_o.load("cpu")
    sim_r.load("cpu")
    assert sim_o._embedder.backend is sim_r._embedder.backend is resemblyzer_backend
    same = sim_o.score(Inputs("x", estimate=a0, prompt=a1))
    other = sim_r.score(Inputs("x", estimate=a0, reference=j0))
    assert same.value > other.value
    assert same.extra["model"] == "resemblyzer-ge2e" and len(same.extra["sha256"]) == 16
    settings = sim_o.settings()
    assert settings["model"]["sha256"].startswith(same.extra["sha256"])


def test_bad_inputs_are_missing_values_with_reasons_never_zero(resemblyzer_backend):
    speech = read_audio(_bundled(speakers=("allison",), per_speaker=1)[0].audio)
    silence = Audio(np.zeros(SR, np.float32), SR)
    short = Audio(speech.samples[8000:8000 + 3200], SR)  # 0.2 s
    metric = SimO()
    results = metric.score_batch([
        Inputs("no-prompt", estimate=speech),
        Inputs("silent", estimate=silence, prompt=speech),
        Inputs("short-prompt", estimate=speech, prompt=short),
        Inputs("ok", estimate=speech, prompt=speech),
    ])
    assert isinstance(results[0], MetricFailure) and "no speaker prompt" in str(results[0])
    assert isinstance(results[1], MetricFailure) and "silence" in str(results[1])
    assert isinstance(results[2], MetricFailure) and "at least" in str(results[2])
    assert str(results[2]).startswith("speaker prompt:")
    assert results[3].value == pytest.approx(1.0, abs=1e-6)
    with pytest.raises(MetricFailure):
        metric.score(Inputs("no-prompt", estimate=speech))


def test_embeddings_are_cached_by_audio_hash_and_model(resemblyzer_backend, tmp_path):
    from qtts_bench.cache import ResultCache

    audio = read_audio(_bundled(speakers=("june",), per_speaker=1)[0].audio)
    embedder = SpeakerEmbedder(resemblyzer_backend, cache=True)
    embedder.cache = ResultCache("speaker-test", embedder.identity, root=tmp_path)
    first = embedder.embed([audio])[0]

    class Refuses:
        def embed_batch(self, *a, **k):
            raise AssertionError("cache miss")

    embedder.backend = Refuses()
    np.testing.assert_array_equal(embedder.embed([audio])[0], first)
    assert list(tmp_path.rglob("*.npy"))

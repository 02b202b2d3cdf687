"""Deterministic synthetic signals and dummy systems, for tests and seconds-long smoke runs.

Nothing here is a benchmark result: the synthetic dataset only exercises the plumbing.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import numpy as np

from .audio import Audio, write_audio
from .cache import cache_root
from .data.manifest import Dataset, Item
from .errors import ConfigError, MetricFailure, SystemFailure
from .metrics.base import Inputs, Metric, Score
from .systems.base import TTS, Codec, Generation, Request, TokenCodec

WORDS = ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel")


def speech_like(seconds: float, sample_rate: int = 16000, seed: int = 0) -> np.ndarray:
    """Voiced harmonic signal with a gliding pitch, formant-like weighting and syllabic
    amplitude modulation (4 Hz), plus pauses. float32 (n,) in [-0.5, 0.5]."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sample_rate)
    t = np.arange(n) / sample_rate
    f0 = 110 + 40 * rng.random() + 20 * np.sin(2 * np.pi * 0.7 * t + rng.random() * 6)
    phase = 2 * np.pi * np.cumsum(f0) / sample_rate
    formants = (500 + 300 * rng.random(), 1500 + 500 * rng.random(), 2500 + 500 * rng.random())
    signal = np.zeros(n)
    for harmonic in range(1, 30):
        freq = harmonic * f0
        gain = sum(np.exp(-((freq - f) / 150.0) ** 2) for f in formants) + 0.02
        signal += gain * np.sin(harmonic * phase) * (freq < sample_rate / 2)
    envelope = np.clip(np.sin(2 * np.pi * 4 * t + rng.random() * 6), 0, None) ** 0.5
    envelope *= (np.sin(2 * np.pi * 0.5 * t) > -0.8)  # short pauses
    signal = signal * envelope + 0.003 * rng.standard_normal(n)
    return (0.5 * signal / np.max(np.abs(signal))).astype(np.float32)


def load_synthetic(n: int = 4, seconds: float = 1.5, sample_rate: int = 16000, seed: int = 0,
                   folder: str | None = None, with_prompt: bool = False,
                   name: str = "synthetic") -> Dataset:
    """``n`` speech-like clips written once to ``folder`` (default: the cache), with dummy texts."""
    if n < 1 or seconds <= 0:
        raise ConfigError("synthetic dataset: n must be >= 1 and seconds > 0")
    key = hashlib.sha256(f"{n}:{seconds}:{sample_rate}:{seed}".encode()).hexdigest()[:12]
    root = Path(folder) if folder else cache_root() / "synthetic" / key
    items = []
    for i in range(n):
        path = root / f"syn{i:03d}.wav"
        if not path.is_file():
            write_audio(path, Audio(speech_like(seconds, sample_rate, seed + i), sample_rate))
        prompt = None
        if with_prompt:
            prompt = root / f"prompt{i:03d}.wav"
            if not prompt.is_file():
                write_audio(prompt, Audio(speech_like(seconds, sample_rate, seed + 1000 + i), sample_rate))
        text = " ".join(WORDS[(i + k) % len(WORDS)] for k in range(3))
        items.append(Item(id=f"syn{i:03d}", audio=str(path), text=text, language="en",
                          speaker=f"spk{i % 2}", prompt_audio=str(prompt) if prompt else None,
                          prompt_text="prompt text" if prompt else None))
    return Dataset(name, items, f"synthetic(n={n}, seconds={seconds}, sr={sample_rate}, seed={seed})",
                   {"n": n, "seconds": seconds, "sample_rate": sample_rate, "seed": seed})


class DummyCodec(Codec):
    """Uniform scalar quantiser to ``bits`` bits per sample; ``sleep`` seconds per call.

    Failure injection for tests, keyed by the 0-based decode call index (the runner passes only
    audio): ``fail_calls`` raise, ``nan_calls`` return NaN, ``short_calls`` return half length.
    Deterministic otherwise (an injected failure is never cached: it is not an output).
    """

    deterministic = True

    def __init__(self, bits: int = 8, sample_rate: int = 16000, sleep: float = 0.0,
                 fail_calls: tuple = (), nan_calls: tuple = (), short_calls: tuple = ()):
        if not 1 <= bits <= 16:
            raise ConfigError(f"bits must be in 1..16, got {bits}")
        self.bits, self.sample_rate, self.sleep = bits, sample_rate, sleep
        self.fail_calls, self.nan_calls, self.short_calls = set(fail_calls), set(nan_calls), set(short_calls)
        self.calls = 0

    @property
    def nominal_bitrate(self) -> float:
        return float(self.bits * self.sample_rate)

    def encode(self, audio: np.ndarray) -> np.ndarray:
        levels = 2 ** (self.bits - 1)
        return np.clip(np.round(audio * levels), -levels, levels - 1).astype(np.int32)

    def decode(self, encoded: np.ndarray) -> np.ndarray:
        call, self.calls = self.calls, self.calls + 1
        if self.sleep:
            time.sleep(self.sleep)
        if call in self.fail_calls:
            raise RuntimeError(f"injected failure on call {call}")
        out = (encoded / 2 ** (self.bits - 1)).astype(np.float32)
        if call in self.nan_calls:
            out[:] = np.nan
        if call in self.short_calls:
            out = out[: len(out) // 2]
        return out

    def encoded_bits(self, encoded: np.ndarray) -> int:
        return int(encoded.size * self.bits)

    def provenance(self) -> dict:
        return {"bits": self.bits}


class DummyTokenCodec(TokenCodec):
    """Token codec with analytic code usage, for codebook-metric tests (not a real codec).

    ``frame_rate`` 50 Hz (320 samples a frame at 16 kHz). Codebook 0 holds the frame index
    modulo ``codebook_size``; every later codebook holds 0. Decoding ignores the codes and
    returns a 200 Hz tone at amplitude 0.1, ``frames * 320`` samples long.
    """

    frame_rate = 50.0
    hop = 320
    deterministic = True

    def __init__(self, n_codebooks: int = 2, codebook_size: int = 16):
        if n_codebooks < 1 or codebook_size < 2:
            raise ConfigError(f"need n_codebooks >= 1 and codebook_size >= 2 (got {n_codebooks}, {codebook_size})")
        self.n_codebooks, self.codebook_size = n_codebooks, codebook_size

    def encode(self, audio: np.ndarray) -> np.ndarray:
        frames = -(-len(audio) // self.hop)
        codes = np.zeros((self.n_codebooks, frames), dtype=np.int64)
        codes[0] = np.arange(frames) % self.codebook_size
        return codes

    def decode(self, codes: np.ndarray) -> np.ndarray:
        t = np.arange(np.shape(codes)[1] * self.hop) / self.sample_rate
        return (0.1 * np.sin(2 * np.pi * 200.0 * t)).astype(np.float32)


class DummyTTS(TTS):
    """Speech-like signal seeded by the text; sleeps ``sleep`` seconds (for speed tests).

    With ``chunks`` > 1 it streams: the first chunk after ``first_chunk_delay`` seconds. With
    ``require_prompt`` it needs a speaker prompt on every item and fails without one. With
    ``noise`` > 0 it adds unseeded white noise of that amplitude: not deterministic (the output
    cache then leaves it alone).
    """

    def __init__(self, sleep: float = 0.0, seconds_per_word: float = 0.3, chunks: int = 1,
                 first_chunk_delay: float = 0.0, sample_rate: int = 16000, require_prompt: bool = False,
                 noise: float = 0.0):
        self.sleep, self.seconds_per_word, self.sample_rate = sleep, seconds_per_word, sample_rate
        self.chunks, self.first_chunk_delay = chunks, first_chunk_delay
        self.streaming = chunks > 1
        if require_prompt:
            self.needs = ("text", "prompt")
        if not 0.0 <= noise <= 1.0:
            raise ConfigError(f"noise must be in [0, 1], got {noise}")
        self.noise = float(noise)
        self.deterministic = self.noise == 0.0

    def synthesize(self, text, *, prompt_audio=None, prompt_text=None, language=None, seed=None):
        if "prompt" in self.needs and (prompt_audio is None or not prompt_text):
            raise SystemFailure("no speaker prompt (audio and text) reached the system")
        if self.sleep:
            time.sleep(self.sleep)
        seconds = max(1, len(text.split())) * self.seconds_per_word
        text_seed = int(hashlib.sha256(text.encode()).hexdigest()[:8], 16)
        audio = speech_like(seconds, self.sample_rate, text_seed)
        if self.noise:
            audio = audio + self.noise * np.random.default_rng().standard_normal(len(audio)).astype(np.float32)
        return audio

    def stream(self, text, **kwargs):
        audio = self.synthesize(text, **kwargs)
        for i, part in enumerate(np.array_split(audio, self.chunks)):
            if i == 0 and self.first_chunk_delay:
                time.sleep(self.first_chunk_delay)
            yield part


class DummyCodecLmTTS(TTS):
    """Test TTS that speaks through codec tokens (as QTTS does), with analytic code usage.

    For a text of w words it makes ``frames_per_word * w`` frames at 50 Hz; codebook k of frame t
    holds (t + k) mod ``codebook_size``, so with frames <= codebook_size every codebook uses each
    of its codes at most once (perplexity = frames). Audio: a 200 Hz tone, 320 samples a frame.
    """

    frame_rate = 50.0
    hop = 320
    deterministic = True

    def __init__(self, n_codebooks: int = 2, codebook_size: int = 16, frames_per_word: int = 4):
        if n_codebooks < 1 or codebook_size < 2 or frames_per_word < 1:
            raise ConfigError("need n_codebooks >= 1, codebook_size >= 2, frames_per_word >= 1")
        self.n_codebooks, self.codebook_size, self.frames_per_word = n_codebooks, codebook_size, frames_per_word

    def code_info(self) -> dict:
        return {"codebook_size": self.codebook_size, "frame_rate": self.frame_rate, "n_codebooks": self.n_codebooks}

    def generate(self, request: Request) -> Generation:
        from .timing import measure

        frames = self.frames_per_word * max(1, len((request.text or "").split()))
        codes = (np.arange(frames)[None, :] + np.arange(self.n_codebooks)[:, None]) % self.codebook_size
        t = np.arange(frames * self.hop) / self.sample_rate
        audio, seconds, peak = measure(lambda: (0.1 * np.sin(2 * np.pi * 200.0 * t)).astype(np.float32))
        return Generation(audio, seconds=seconds, peak_memory=peak, codes=codes, code_info=self.code_info())


class SlowMetric(Metric):
    """Test metric: the output's RMS level, after sleeping ``sleep`` seconds on the items listed
    in ``slow_items`` (ids); for per-metric timeouts. ``fail_items`` fail (a transient fault)
    while the file ``fail_while_missing`` does not exist. Not a quality measure."""

    name = "slow_metric"
    direction = "higher"
    cpu_bound = True
    defaults = {"sleep": 0.0, "slow_items": [], "fail_items": [], "fail_while_missing": ""}

    def score(self, inputs: Inputs) -> Score:
        if inputs.item_id in self.params["fail_items"] and not Path(self.params["fail_while_missing"]).exists():
            raise MetricFailure(f"injected transient failure on {inputs.item_id}")
        if inputs.item_id in self.params["slow_items"]:
            time.sleep(float(self.params["sleep"]))
        x = inputs.estimate.samples
        return Score(float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if len(x) else 0.0)

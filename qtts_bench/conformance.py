"""Conformance checks for systems and metrics, built in or from a plugin (pure asserts).

A plugin's own tests can reuse them::

    from qtts_bench.conformance import check_constructor, check_metric, check_system, make_inputs, make_request

    def test_my_codec_conforms():
        codec = check_constructor(MyCodec, bitrate=6000)   # light constructor
        check_system(codec, make_request(codec))           # loads it and generates once

    def test_my_metric_conforms():
        metric = check_constructor(MyMetric)
        check_metric(metric, make_inputs())

Each function raises ``AssertionError`` with what is wrong and what the contract is
(docs/extending.md). They check the contract the runner relies on, not the quality of the output.
``check_constructor`` can only see a heavy import that has not happened yet in this process: run
it first, or in a fresh interpreter (``python -c``), as tests/test_conformance.py does.
"""

from __future__ import annotations

import json
import math
import sys

import numpy as np

from .errors import MetricFailure
from .metrics.base import REQUIREMENTS, Inputs, Score
from .systems.base import SYSTEM_NEEDS, Generation, Request, emits_codes

# Imports that belong in load(), never in a constructor (seconds of start-up, hundreds of MB).
HEAVY_MODULES = ("torch", "torchaudio", "tensorflow", "jax", "onnxruntime", "transformers", "faster_whisper",
                 "ctranslate2", "speechbrain", "resemblyzer", "whisper")
DESCRIBE_KEYS = {"direction", "unit", "aggregation", "ratio", "requires", "sample_rate", "version", "percentiles"}
AGGREGATE_KEYS = {"aggregation", "value", "mean", "std", "n_scored", "n_failed", "failure_reasons",
                  "n_not_applicable", "not_applicable_reasons", "direction", "unit"}
# Bundled English utterances of one speaker: a short reference with its text, and a prompt.
SAMPLE_ITEM, SAMPLE_PROMPT_ITEM = "en-allison-0003-conf-extended", "en-allison-0006-conf-lockednow"


def _json(obj, what: str) -> None:
    try:
        json.dumps(obj, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise AssertionError(f"{what} is not JSON-serialisable: {exc} ({obj!r:.200})") from None


def check_constructor(factory, *args, heavy: tuple[str, ...] = HEAVY_MODULES, **kwargs):
    """``factory(*args, **kwargs)``, asserting that it imported none of ``heavy``; returns the object.

    Constructors store parameters only; libraries and weights load in ``load(device)``, so that
    ``qtts-bench list`` and ``validate`` stay fast. A module imported before the call cannot be seen.
    """
    before = set(sys.modules)
    obj = factory(*args, **kwargs)
    new = sorted({m.split(".")[0] for m in set(sys.modules) - before} & set(heavy))
    name = getattr(factory, "__name__", repr(factory))
    assert not new, f"{name}(): the constructor imported {', '.join(new)}; import it in load() instead"
    return obj


def _check_unavailable(obj, what: str) -> None:
    method = getattr(obj, "unavailable", None)
    assert callable(method), f"{what} has no unavailable() method (subclass System / Metric)"
    why = method()
    assert why is None or isinstance(why, str), f"{what}.unavailable() returned {why!r}; expected str or None"
    assert why is None, f"{what} cannot run here: {why} (skip it instead of checking it)"


# ------------------------------------------------------------------------------- systems
def sample_audio():
    """(reference, prompt, text) from the bundled set: real English speech of one speaker, 16 kHz."""
    from .audio import read_audio
    from .data.bundled import load_bundled

    items = {item.id: item for item in load_bundled().items}
    item, prompt = items[SAMPLE_ITEM], items[SAMPLE_PROMPT_ITEM]
    return read_audio(item.audio), read_audio(prompt.audio), item.text, prompt.text


def make_request(system, seed: int = 0) -> Request:
    """A request for ``system`` as the runner builds it: a bundled utterance (text, reference audio)
    and a prompt of the same speaker (audio and text), at the system's sample rate."""
    reference, prompt, text, prompt_text = sample_audio()
    rate = int(system.sample_rate)
    return Request("conformance", text=text, language="en", reference=reference.at(rate).samples,
                   prompt_audio=prompt.at(rate).samples, prompt_text=prompt_text, seed=seed)


def check_system(system, request: Request, device: str = "cpu") -> Generation:
    """Assert that ``system`` honours the System contract; loads it on ``device`` and generates once.

    Checks: ``kind``/``needs``/``sample_rate`` declared, ``unavailable()`` -> str | None (None here),
    ``provenance()`` JSON-serialisable, ``generate`` -> Generation with float32 1-D finite audio
    (a codec: about the input's length), timing fields consistent, codes in range for a system
    that emits codec tokens, ``extra`` JSON-serialisable. Returns the Generation.
    """
    what = type(system).__name__
    assert isinstance(getattr(system, "kind", None), str), f"{what}: 'kind' must be a string (codec, tts, ...)"
    needs = tuple(getattr(system, "needs", ()))
    assert set(needs) <= set(SYSTEM_NEEDS), f"{what}: needs {needs}; each must be one of {SYSTEM_NEEDS}"
    rate = system.sample_rate
    assert isinstance(rate, (int, np.integer)) and not isinstance(rate, bool) and rate > 0, (
        f"{what}: sample_rate must be a positive int, got {rate!r}")
    _check_unavailable(system, what)
    _json(system.provenance(), f"{what}.provenance() before load()")
    system.load(device)
    _json(system.provenance(), f"{what}.provenance()")
    generation = system.generate(request)
    assert isinstance(generation, Generation), f"{what}.generate() returned {type(generation).__name__}, not Generation"
    audio = generation.audio
    assert isinstance(audio, np.ndarray), f"{what}: Generation.audio is {type(audio).__name__}, not a numpy array"
    assert audio.dtype == np.float32, f"{what}: Generation.audio is {audio.dtype}; expected float32"
    assert audio.ndim == 1, f"{what}: Generation.audio has shape {audio.shape}; expected mono (n,)"
    assert audio.size > 0, f"{what}: Generation.audio is empty"
    assert np.isfinite(audio).all(), f"{what}: Generation.audio holds NaN or inf"
    if "reference" in needs and request.reference is not None:
        n_in = len(request.reference)
        fraction, seconds = getattr(system, "LENGTH_TOLERANCE", (0.02, 0.04))
        tolerance = max(fraction * n_in, seconds * rate)
        assert abs(audio.size - n_in) <= tolerance, (
            f"{what}: output has {audio.size} samples for {n_in} in (at {rate} Hz); a codec returns about "
            f"the input's length")
    for name in ("seconds", "ttft"):
        value = getattr(generation, name)
        assert value is None or (math.isfinite(value) and value >= 0), f"{what}: Generation.{name} = {value!r}"
    if generation.ttft is not None and generation.seconds is not None:
        assert generation.ttft <= generation.seconds + 1e-6, f"{what}: ttft {generation.ttft} > seconds"
    if getattr(system, "streaming", False):
        assert generation.ttft is not None, f"{what}: streaming is set but Generation.ttft is None"
    if generation.encoded_bits is not None:
        assert int(generation.encoded_bits) >= 0, f"{what}: encoded_bits = {generation.encoded_bits!r}"
    _json(generation.extra, f"{what}: Generation.extra")
    if emits_codes(system):
        _check_codes(what, system, generation)
    return generation


def _check_codes(what: str, system, generation: Generation) -> None:
    info = generation.code_info
    for key in ("codebook_size", "frame_rate", "n_codebooks"):
        assert key in info, f"{what}: Generation.code_info lacks '{key}' (codebook metrics read it)"
    _json(info, f"{what}: Generation.code_info")
    codes = np.asarray(generation.codes)
    assert generation.codes is not None and codes.ndim == 2, (
        f"{what}: a system with code_info() must return codes of shape (n_codebooks, frames), got "
        f"{None if generation.codes is None else codes.shape}")
    assert np.issubdtype(codes.dtype, np.integer), f"{what}: codes are {codes.dtype}; expected integers"
    assert codes.shape[0] <= int(info["n_codebooks"]), f"{what}: {codes.shape[0]} codebooks > n_codebooks"
    assert codes.size and 0 <= codes.min() and codes.max() < int(info["codebook_size"]), (
        f"{what}: codes outside [0, codebook_size={info['codebook_size']})")


# ------------------------------------------------------------------------------- metrics
def make_inputs(estimate=None, codes: np.ndarray | None = None) -> Inputs:
    """Inputs as the runner builds them: a bundled utterance as reference, its text, a prompt of
    the same speaker, ``estimate`` (default: the reference itself) and a ``system_info`` with the
    timing, bitrate and codebook fields the speed, bitrate and codebook metrics read."""
    from .audio import Audio

    reference, prompt, text, _ = sample_audio()
    estimate = estimate if estimate is not None else Audio(reference.samples.copy(), reference.sample_rate)
    if codes is None:
        codes = (np.arange(2 * 50, dtype=np.int64).reshape(2, 50) * 7) % 16
    seconds = estimate.duration
    info = {"seconds": 0.25 * seconds, "ttft_seconds": 0.05, "peak_memory_bytes": 200 * 2**20,
            "audio_seconds": seconds, "input_seconds": reference.duration, "encoded_bits": int(6000 * seconds),
            "nominal_bitrate": 6000.0, "codebook_size": 16, "frame_rate": 50.0, "n_codebooks": 2,
            "device": "cpu", "sample_rate": estimate.sample_rate}
    return Inputs("conformance", estimate, reference, prompt, text, "en", info, codes)


def check_metric(metric, inputs: Inputs, device: str = "cpu"):
    """Assert that ``metric`` honours the Metric contract; loads it and scores ``inputs`` once.

    Checks: declarations (direction, aggregation, ratio, requires) and ``describe()`` keys,
    ``unavailable()`` -> str | None (None here), ``settings()`` JSON-serialisable, ``score`` returns
    a Score with a finite value and JSON-serialisable stats/extra (ratio metrics: both ratio
    statistics) or raises MetricFailure (any other exception is a bug), ``score_batch`` when
    defined, and ``aggregate`` over the stored entry. Returns the Score or the MetricFailure.
    """
    what = type(metric).__name__
    cls = type(metric)
    assert isinstance(getattr(cls, "name", None), str), f"{what}: class attribute 'name' must be a string"
    assert getattr(cls, "direction", None) in ("higher", "lower"), f"{what}: direction must be 'higher' or 'lower'"
    assert cls.aggregation in ("mean", "ratio"), f"{what}: aggregation {cls.aggregation!r}; expected mean or ratio"
    if cls.aggregation == "ratio":
        assert cls.ratio and len(cls.ratio) == 3, f"{what}: a ratio metric declares ratio = (num, den, scale)"
    assert set(cls.requires) <= set(REQUIREMENTS), f"{what}: requires {cls.requires}; each one of {REQUIREMENTS}"
    described = metric.describe()
    assert set(described) >= DESCRIBE_KEYS, f"{what}.describe() lacks {sorted(DESCRIBE_KEYS - set(described))}"
    _json(described, f"{what}.describe()")
    _check_unavailable(metric, what)
    metric.load(device)
    _json(metric.settings(), f"{what}.settings()")
    try:
        result = metric.score(inputs)
    except MetricFailure as exc:
        assert str(exc).strip(), f"{what}: MetricFailure without a reason"
        result = exc
    except Exception as exc:
        raise AssertionError(f"{what}.score() raised {type(exc).__name__}: {exc}; a metric that cannot score "
                             "an utterance raises MetricFailure (or NotApplicable) with the reason") from exc
    entry = _entry(what, cls, result)
    if hasattr(metric, "score_batch"):
        batch = metric.score_batch([inputs])
        assert isinstance(batch, list) and len(batch) == 1, f"{what}.score_batch([x]) must return one result"
        assert isinstance(batch[0], (Score, MetricFailure)), (
            f"{what}.score_batch returned {type(batch[0]).__name__}; expected Score or MetricFailure")
    block = metric.aggregate([entry, {"value": None, "reason": "conformance: a failed utterance"}])
    assert isinstance(block, dict) and set(block) >= AGGREGATE_KEYS, (
        f"{what}.aggregate() lacks {sorted(AGGREGATE_KEYS - set(block or {}))} (call super().aggregate())")
    assert block["n_failed"] == 1 and block["n_scored"] == (1 if isinstance(result, Score) else 0), (
        f"{what}.aggregate() counts: {block['n_scored']} scored, {block['n_failed']} failed")
    _json(block, f"{what}.aggregate()")
    return result


def _entry(what: str, cls, result) -> dict:
    """The entry the runner stores for ``result`` (checked on the way)."""
    if isinstance(result, MetricFailure):
        return {"value": None, "reason": str(result)}
    assert isinstance(result, Score), f"{what}.score() returned {type(result).__name__}, not Score"
    value = float(result.value)
    assert math.isfinite(value), f"{what}.score() value {value}; a metric raises MetricFailure instead"
    _json(result.stats, f"{what}: Score.stats")
    _json(result.extra, f"{what}: Score.extra")
    if cls.aggregation == "ratio":
        for stat in cls.ratio[:2]:
            assert isinstance(result.stats.get(stat), (int, float)), (
                f"{what}: a ratio metric's Score.stats needs '{stat}' for the corpus aggregate")
    return {"value": value, "stats": result.stats, "extra": result.extra}

"""Shared pieces of the offline TTS baselines (``kokoro``, ``piper``, ``espeak_ng``, ``flite``, ``festival``).

Parameter validation (raising :class:`ConfigError` at construction), per-utterance input checks
(raising :class:`SystemFailure`), optional imports that name their extra, onnxruntime sessions
with a recorded thread count and provider, and the provenance fields every engine records.

These systems speak with one fixed voice: a speaker prompt is ignored (recorded in provenance),
and ``seed`` is ignored because every engine here is run deterministically.
"""

from __future__ import annotations

import math
import os
import signal
import re

import numpy as np

from ..errors import ConfigError, SystemFailure, require

DEFAULT_MAX_CHARS = 5000
PROMPT_NOTE = "ignored: fixed-voice system (no speaker prompting)"
# ISO 639-3 / engine-specific primary tags that mean the same language as an ISO 639-1 item tag.
_LANGUAGE_ALIASES = {"cmn": "zh", "yue": "zh", "eng": "en", "jpn": "ja", "fra": "fr", "deu": "de", "spa": "es"}


# --- parameters (ConfigError) ------------------------------------------------------------------
def check_number(name: str, value, low: float, high: float, what: str, *, integer: bool = False,
                 low_inclusive: bool = True) -> float | int:
    """``value`` as float (or int) within [low, high] (``(low, high]`` unless ``low_inclusive``)."""
    ok = not isinstance(value, bool) and isinstance(value, (int, float, np.integer, np.floating)) \
        and math.isfinite(float(value)) and (float(value) == int(value) if integer else True)
    if ok:
        v = float(value)
        ok = (low <= v if low_inclusive else low < v) and v <= high
    if not ok:
        bracket = "[" if low_inclusive else "("
        kind = "an integer" if integer else "a number"
        raise ConfigError(f"{what}: invalid {name}={value!r}; expected {kind} in {bracket}{low:g}, {high:g}]")
    return int(value) if integer else float(value)


def check_optional_threads(threads, what: str) -> int | None:
    """``None`` (the runtime's default) or a thread count 1..256."""
    return None if threads is None else check_number("threads", threads, 1, 256, what, integer=True)


def check_name(name: str, value, pattern: str, what: str, hint: str = "") -> str:
    """A voice / language name matching ``pattern`` (keeps names out of options and expressions)."""
    if not isinstance(value, str) or not re.fullmatch(pattern, value):
        raise ConfigError(f"{what}: invalid {name}={value!r}{'; ' + hint if hint else ''}")
    return value


def check_common(timeout, max_chars, what: str) -> tuple[float | None, int]:
    """The ``timeout`` (seconds, or None for engines run in-process) and ``max_chars`` parameters."""
    t = None if timeout is None else check_number("timeout", timeout, 0, 86400, what, low_inclusive=False)
    return t, check_number("max_chars", max_chars, 1, 10**7, what, integer=True)


# --- per utterance (SystemFailure) -------------------------------------------------------------
def check_text(text, max_chars: int, what: str) -> str:
    """The text to speak, or SystemFailure: not a string, empty, NUL bytes, longer than ``max_chars``."""
    if not isinstance(text, str):
        raise SystemFailure(f"{what}: text must be a string, got {type(text).__name__}")
    if not text.strip():
        raise SystemFailure(f"{what}: empty text, nothing to synthesize")
    if "\x00" in text:
        raise SystemFailure(f"{what}: text contains a NUL character")
    if len(text) > max_chars:
        raise SystemFailure(f"{what}: text has {len(text)} characters, over the limit max_chars={max_chars} "
                            "(raise max_chars to allow it)")
    return text


def primary_language(tag: str) -> str:
    """``"en-US"`` / ``"en_us"`` / ``"cmn"`` -> ``"en"`` / ``"en"`` / ``"zh"``."""
    head = re.split(r"[-_+/]", tag.strip().lower(), maxsplit=1)[0]
    return _LANGUAGE_ALIASES.get(head, head)


def check_language(language: str | None, system_language: str, what: str) -> None:
    """SystemFailure when the item's language differs from the one this voice speaks.

    An English voice reading French text yields audio whose WER and MOS mean nothing, so such an
    item fails with this reason instead of being scored.
    """
    if language and primary_language(language) != primary_language(system_language):
        raise SystemFailure(f"{what}: the item's language is {language!r} but this voice speaks "
                            f"{system_language!r}")


def as_audio(audio, what: str) -> np.ndarray:
    """Engine output -> float32 (n,); SystemFailure when empty or not finite."""
    x = np.asarray(audio, dtype=np.float32).reshape(-1)
    if x.size == 0:
        raise SystemFailure(f"{what}: the engine produced no audio for this text")
    if not np.all(np.isfinite(x)):
        raise SystemFailure(f"{what}: the engine produced NaN or infinite samples")
    return x


def kill_group(proc) -> None:
    """SIGKILL a subprocess started with ``start_new_session=True`` and everything it spawned."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:  # the group is gone: nothing left to kill
        pass
    except PermissionError:
        proc.kill()


def tail(text: str | bytes | None, n: int = 400) -> str:
    """The last ``n`` characters of an engine's stderr, one line, for failure messages."""
    if not text:
        return "(no stderr output)"
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    text = " | ".join(line.strip() for line in text.strip().splitlines() if line.strip())
    return text if len(text) <= n else "..." + text[-n:]


# --- libraries -----------------------------------------------------------------------------------
def onnx_session(model_path: str, threads: int | None, device: str, extra: str, purpose: str):
    """An onnxruntime session for ``model_path`` -> ``(session, settings for provenance)``.

    CUDA is used when ``device`` asks for it and this onnxruntime build has the provider; the
    providers actually in use are recorded. ``threads`` pins intra-op threads (None: ORT default).
    """
    ort = require("onnxruntime", extra, purpose)
    options = ort.SessionOptions()
    if threads is not None:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    providers = ["CPUExecutionProvider"]
    if str(device).startswith("cuda") and "CUDAExecutionProvider" in ort.get_available_providers():
        providers.insert(0, "CUDAExecutionProvider")
    try:
        session = ort.InferenceSession(str(model_path), sess_options=options, providers=providers)
    except Exception as exc:  # noqa: BLE001 -- onnxruntime raises its own exception types
        raise ConfigError(f"{purpose}: cannot load ONNX model {model_path}: {exc}") from None
    settings = {"onnxruntime_providers": session.get_providers(),
                "intra_op_num_threads": threads if threads is not None else "onnxruntime default"}
    return session, settings

"""Speaker similarity: cosine between speaker embeddings of the output and another recording.

- ``sim_o``: output vs the speaker prompt (seed-tts-eval's SIM-o). Requires ``prompt``.
- ``sim_r``: output vs the ground-truth recording of the same utterance. Requires ``reference``.

Parameters: ``backend`` (``resemblyzer`` default, ``speechbrain_ecapa``, ``wavlm_ecapa``; see
:mod:`.speaker_backends`), its ``checkpoint`` etc., ``batch_size`` (utterances per forward pass),
``cache`` (embeddings cached on disk by audio hash + model identity). Every value carries the
model name and checkpoint sha256 in ``extra``: SIM from different models is not comparable.

One model is loaded per process and backend configuration, shared by ``sim_o`` and ``sim_r``.
Audio is resampled to 16 kHz before embedding.
"""

from __future__ import annotations

import json
from typing import ClassVar

import numpy as np

from ..audio import Audio
from ..cache import ResultCache, audio_key
from ..errors import MetricFailure
from .base import Inputs, Metric, Score
from .speaker_backends import SAMPLE_RATE, SpeakerBackend, make_backend

_LOADED: dict[tuple, SpeakerBackend] = {}


def cosine_similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine of the angle between two vectors (float64), in [-1, 1].

    Raises MetricFailure for a zero or non-finite vector (the cosine is undefined there).

    >>> cosine_similarity(np.array([1.0, 0.0]), np.array([1.0, 1.0]))  # doctest: +ELLIPSIS
    0.7071...
    """
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise ValueError(f"embeddings differ in size: {a.shape} vs {b.shape}")
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        raise MetricFailure("speaker embedding is not finite")
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na == 0 or nb == 0:
        raise MetricFailure("speaker embedding is the zero vector; cosine undefined")
    return float(np.clip(np.dot(a, b) / (na * nb), -1.0, 1.0))


def shared_backend(name: str, device: str = "cpu", **params) -> SpeakerBackend:
    """The loaded backend for (name, device, params), loading it on first use in this process."""
    key = (name, str(device), json.dumps(params, sort_keys=True, default=str))
    if key not in _LOADED:
        backend = make_backend(name, **params)
        backend.load(device)
        _LOADED[key] = backend
    return _LOADED[key]


class SpeakerEmbedder:
    """Batched, cached embeddings of :class:`Audio` with one backend."""

    def __init__(self, backend: SpeakerBackend, batch_size: int = 16, cache: bool = True):
        self.backend = backend
        self.batch_size = int(batch_size)
        self.identity = backend.identity()
        self.cache = ResultCache(f"speaker-{backend.name}", self.identity, enabled=cache)

    def embed(self, audios: list[Audio]) -> list:
        """One float32 vector, or a MetricFailure, per audio (same order)."""
        waves = [a.at(SAMPLE_RATE).samples for a in audios]
        keys = [audio_key(w, SAMPLE_RATE) for w in waves]
        out: dict[str, object] = {}
        todo: dict[str, np.ndarray] = {}
        for key, wave in zip(keys, waves):
            if key in out or key in todo:
                continue
            cached = self.cache.get_array(key)
            if cached is not None:
                out[key] = cached
            else:
                todo[key] = wave
        if todo:
            embedded = self.backend.embed_batch(list(todo.values()), batch_size=self.batch_size)
            for key, emb in zip(todo, embedded):
                out[key] = emb
                if isinstance(emb, np.ndarray):
                    self.cache.put_array(key, emb)
        return [out[k] for k in keys]


class _SpeakerSimilarity(Metric):
    direction = "higher"
    unit = "cosine"
    sample_rate = SAMPLE_RATE
    version = "1"
    other: ClassVar[str]  # Inputs field compared with the estimate
    other_label: ClassVar[str]

    def __init__(self, backend: str = "resemblyzer", batch_size: int = 16, cache: bool = True, **backend_params):
        super().__init__(backend=backend, batch_size=batch_size, cache=cache, **backend_params)
        self._backend_name, self._backend_params = backend, backend_params
        self._spec = make_backend(backend, **backend_params)  # validates name and parameters; loads nothing
        self._embedder: SpeakerEmbedder | None = None

    def unavailable(self) -> str | None:
        """Why this metric cannot run here (its speaker backend's packages not installed), or None."""
        from importlib.util import find_spec

        from ..errors import MissingExtraError, not_installed

        if self._backend_name == "resemblyzer":
            return not_installed({"resemblyzer": "resemblyzer", "torch": "torch"}, "speaker",
                                 "speaker similarity (resemblyzer)")
        missing = not_installed({"torch": "torch"}, "torch", f"speaker similarity ({self._backend_name})")
        if missing is None and self._backend_name == "speechbrain_ecapa" and find_spec("speechbrain") is None:
            missing = str(MissingExtraError("speechbrain", "torch", "speaker similarity (SpeechBrain ECAPA-TDNN)",
                                            install="pip install speechbrain (with a torchaudio matching "
                                                    "torch 2.13)"))
        return missing

    def load(self, device: str = "cpu") -> None:
        if self._embedder is None:
            backend = shared_backend(self._backend_name, device, **self._backend_params)
            self._embedder = SpeakerEmbedder(backend, self.params["batch_size"], self.params["cache"])

    def settings(self) -> dict:
        identity = self._embedder.identity if self._embedder is not None else self._spec.identity()
        return {"version": self.version, "backend": self._backend_name, "model": identity,
                "batch_size": self.params["batch_size"], "resampled_to": SAMPLE_RATE}

    def score(self, inputs: Inputs) -> Score:
        result = self.score_batch([inputs])[0]
        if isinstance(result, MetricFailure):
            raise result
        return result

    def score_batch(self, batch: list[Inputs]) -> list:
        """One Score or MetricFailure per item; all embeddings of the batch computed together."""
        self.load()
        audios, slots = [], []
        for inputs in batch:
            other = getattr(inputs, self.other)
            if other is None:
                slots.append(MetricFailure(f"no {self.other_label} audio for this utterance"))
                continue
            slots.append((len(audios), len(audios) + 1))
            audios += [inputs.estimate, other]
        embeddings = self._embedder.embed(audios) if audios else []
        identity = self._embedder.identity
        extra = {"model": identity["model"], "sha256": identity["sha256"][:16]}
        results = []
        for slot in slots:
            if isinstance(slot, MetricFailure):
                results.append(slot)
                continue
            est, oth = embeddings[slot[0]], embeddings[slot[1]]
            if isinstance(est, MetricFailure):
                results.append(MetricFailure(f"output: {est}"))
            elif isinstance(oth, MetricFailure):
                results.append(MetricFailure(f"{self.other_label}: {oth}"))
            else:
                try:
                    results.append(Score(cosine_similarity(est, oth), extra=dict(extra)))
                except MetricFailure as exc:
                    results.append(exc)
        return results


class SimO(_SpeakerSimilarity):
    """Speaker similarity of the output to the speaker prompt (SIM-o)."""

    name = "sim_o"
    requires = ("prompt",)
    other = "prompt"
    other_label = "speaker prompt"


class SimR(_SpeakerSimilarity):
    """Speaker similarity of the output to the ground-truth recording (SIM-r)."""

    name = "sim_r"
    requires = ("reference",)
    other = "reference"
    other_label = "reference"


def equal_error_rate(scores, same) -> tuple[float, float]:
    """Equal error rate of a verification score: ``(eer, threshold)``.

    ``scores``: similarity per trial (higher = more likely the same speaker); ``same``: True for
    target trials. A trial is accepted when score >= threshold. The false-accept rate (impostors
    accepted) and false-reject rate (targets rejected) are evaluated at every distinct score and
    the EER is read where they cross, interpolating linearly between the two bracketing thresholds.
    """
    scores = np.asarray(scores, dtype=np.float64)
    same = np.asarray(same, dtype=bool)
    if scores.shape != same.shape or scores.ndim != 1:
        raise ValueError("scores and labels must be 1-D and of equal length")
    n_target, n_impostor = int(same.sum()), int((~same).sum())
    if n_target == 0 or n_impostor == 0:
        raise ValueError("EER needs both target and impostor trials")
    thresholds = np.unique(scores)
    thresholds = np.concatenate([thresholds, [np.inf]])
    target, impostor = np.sort(scores[same]), np.sort(scores[~same])
    frr = np.searchsorted(target, thresholds, side="left") / n_target  # targets below threshold
    far = 1.0 - np.searchsorted(impostor, thresholds, side="left") / n_impostor  # impostors at/above
    diff = frr - far  # rises from -1 (threshold at the lowest score: all accepted) to +1
    i = int(np.argmax(diff >= 0))
    if i == 0 or diff[i] == 0:
        return float((frr[i] + far[i]) / 2), float(thresholds[i])
    # interpolate between i-1 (diff < 0) and i (diff > 0)
    w = -diff[i - 1] / (diff[i] - diff[i - 1])
    eer = far[i - 1] + w * (far[i] - far[i - 1])
    hi = thresholds[i] if np.isfinite(thresholds[i]) else thresholds[i - 1]
    return float(eer), float(thresholds[i - 1] + w * (hi - thresholds[i - 1]))

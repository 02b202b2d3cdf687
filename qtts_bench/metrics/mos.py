"""Predicted MOS without a reference: DNSMOS (SIG, BAK, OVRL, P.808), PLCMOS, DistillMOS, UTMOS.

All score the output at 16 kHz. Input checks shared by all: silent audio and clips shorter than
``min_seconds`` (default 0.5 s; DNSMOS would otherwise tile a 20 ms clip to 9 s) are missing values
with their reason; samples outside [-1, 1] are clipped, as writing a 16-bit file would (the count
is kept in ``extra``).

- DNSMOS (extra ``mos``: speechmos' ONNX models, Microsoft DNS Challenge): the clip is tiled to at
  least 9.01 s and scored on 9.01 s windows hopped by 1 s; SIG/BAK/OVRL come from
  ``sig_bak_ovr.onnx`` through the non-personalised polynomial fit, P.808 from ``model_v8.onnx``.
  One inference serves all four metrics (a per-process memo keyed by audio hash and settings,
  plus the on-disk cache), and the models load once per process.
- PLCMOS v2 (extra ``mos``): averages 15 rounds with random "rater" embeddings. speechmos draws
  them from numpy's global RNG; here they come from ``RandomState(seed)``, so values repeat
  (equal to speechmos after ``np.random.seed(seed)``).
- DistillMOS (extra ``distillmos``): the distilled XLS-R SQA model, weights inside the wheel.
  The package imports torchaudio only for its command-line file loading; when torchaudio cannot
  be imported the model is imported without it (nothing of torchaudio is used for scoring).
- UTMOS22 strong (``utmos``): only from a local checkout of tarepan/SpeechMOS (``repo``) and its
  checkpoint file (``checkpoint``); nothing is downloaded.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from functools import cache
from pathlib import Path

import numpy as np

from ..audio import AudioError, check_usable
from ..cache import ResultCache, audio_key
from ..errors import ConfigError, MetricFailure, require
from ..hashing import sha256_file
from ..provenance import package_version
from .base import Inputs, Metric, Score

MOS_RATE = 16000
DNSMOS_KEYS = ("sig", "bak", "ovrl", "p808")




def _ort_session(path: str, threads: int):
    ort = require("onnxruntime", "mos", "DNSMOS / PLCMOS")
    options = ort.SessionOptions()
    options.intra_op_num_threads = int(threads)
    options.inter_op_num_threads = 1
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def _speechmos_dir() -> Path:
    speechmos = require("speechmos", "mos", "DNSMOS / PLCMOS")
    return Path(speechmos.__file__).resolve().parent


def prepare(samples: np.ndarray, min_seconds: float, what: str = "output") -> tuple[np.ndarray, int]:
    """Checks shared by the MOS predictors; returns (float32 samples clipped to [-1, 1], n clipped).

    Raises MetricFailure for empty, non-finite, silent or too short audio.
    """
    samples = np.asarray(samples, dtype=np.float32)
    try:
        check_usable(samples, what)
    except AudioError as exc:
        raise MetricFailure(str(exc)) from None
    seconds = len(samples) / MOS_RATE
    if seconds < min_seconds:
        raise MetricFailure(f"{what} is {seconds:.3f} s long; shorter than min_seconds={min_seconds:g} s")
    clipped = int(np.count_nonzero(np.abs(samples) > 1.0))
    return (np.clip(samples, -1.0, 1.0) if clipped else samples), clipped


# --- DNSMOS --------------------------------------------------------------------------------
@cache
def dnsmos_model(personalized: bool = False, threads: int = 1):
    """speechmos' DNSMOS scorer with its ONNX sessions built here (thread count set), once."""
    from speechmos.dnsmos import DNSMOS

    folder = _speechmos_dir()
    primary = folder / ("pdnsmos_models" if personalized else "dnsmos_models") / "sig_bak_ovr.onnx"
    model = DNSMOS.__new__(DNSMOS)  # speechmos' __init__ would build sessions with default threads
    model.primary_model_path = str(primary)
    model.onnx_sess = _ort_session(str(primary), threads)
    model.p808_onnx_sess = _ort_session(str(folder / "dnsmos_models" / "model_v8.onnx"), threads)
    return model


def dnsmos_identity(personalized: bool = False) -> dict:
    folder = _speechmos_dir()
    primary = folder / ("pdnsmos_models" if personalized else "dnsmos_models") / "sig_bak_ovr.onnx"
    return {"model": "DNSMOS P.835 sig_bak_ovr + P.808 model_v8", "personalized": personalized,
            "sig_bak_ovr_sha256": sha256_file(str(primary)),
            "p808_sha256": sha256_file(str(folder / "dnsmos_models" / "model_v8.onnx")),
            "speechmos": package_version("speechmos"), "onnxruntime": package_version("onnxruntime"),
            "librosa": package_version("librosa"), "window_seconds": 9.01, "hop_seconds": 1.0,
            "short_clips": "tiled to 9.01 s (as the reference implementation)"}


def dnsmos(samples: np.ndarray, *, personalized: bool = False, threads: int = 1) -> dict:
    """DNSMOS of a 16 kHz waveform in [-1, 1]: ``{"sig", "bak", "ovrl", "p808"}`` (MOS, 1..5)."""
    result = dnsmos_model(personalized, threads)(np.asarray(samples, dtype=np.float32), MOS_RATE, personalized)
    return {"sig": float(result["sig_mos"]), "bak": float(result["bak_mos"]),
            "ovrl": float(result["ovrl_mos"]), "p808": float(result["p808_mos"])}


# --- PLCMOS --------------------------------------------------------------------------------
@cache
def plcmos_model(threads: int = 1):
    from speechmos.plcmos import PLCMOS

    model = PLCMOS.__new__(PLCMOS)  # as PLCMOS.__init__, with our session options
    model.model_name, model.onnx_name = "plcmos_v2", "plcmos_v2.onnx"
    model.max_lens, model.embed_rounds = 999999999999, 15
    model.model_path = str(_speechmos_dir() / "plcmos_models" / "plcmos_v2.onnx")
    model.session = _ort_session(model.model_path, threads)
    return model


def plcmos(samples: np.ndarray, *, seed: int = 0, rounds: int = 15, threads: int = 1) -> float:
    """PLCMOS v2 of a 16 kHz waveform: mean over ``rounds`` rater embeddings drawn from
    ``RandomState(seed)`` (speechmos draws the same values after ``np.random.seed(seed)``)."""
    model = plcmos_model(threads)
    features = np.float32(model.stft_transform(np.asarray(samples)))[np.newaxis, np.newaxis, ...]
    rng = np.random.RandomState(seed)
    total = 0.0
    for _ in range(rounds):
        rater = np.asarray(rng.normal(size=(1, 64)), dtype=np.float32).reshape(1, -1)
        out = model.session.run(None, {"degraded_audio": features, "rater_embed": rater})[0]
        total += float(np.asarray(out).reshape(-1)[0])
    return total / rounds


# --- DistillMOS ----------------------------------------------------------------------------
def _import_distillmos():
    """Import distillmos; if torchaudio is unusable, import it with an empty placeholder module
    (distillmos uses torchaudio only in its CLI file loader, never in the model)."""
    try:
        import distillmos

        return distillmos
    except ImportError as exc:
        if "distillmos" in str(exc) and "torchaudio" not in str(exc):
            raise _missing_distillmos() from exc
    except OSError:  # a torchaudio build that does not match torch
        pass
    import sys
    import types

    require("torch", "torch", "DistillMOS")
    saved = {k: sys.modules.pop(k) for k in list(sys.modules) if k == "torchaudio" or k.startswith("torchaudio.")}
    sys.modules["torchaudio"] = types.ModuleType("torchaudio")
    try:
        for name in [k for k in sys.modules if k.startswith("distillmos")]:
            del sys.modules[name]
        import distillmos
    except ImportError as exc:
        raise _missing_distillmos() from exc
    finally:
        del sys.modules["torchaudio"]
        sys.modules.update(saved)
    return distillmos


def _missing_distillmos():
    from ..errors import MissingExtraError

    # Its torchaudio pin does not match torch 2.13: installed without dependencies, not as an extra.
    return MissingExtraError("distillmos", "torch", "DistillMOS",
                             install="pip install 'qtts-bench[torch]' && pip install --no-deps distillmos==0.9.1 "
                                     "xls-r-sqa==0.1.0")


@cache
def distillmos_model(device: str = "cpu"):
    distillmos = _import_distillmos()
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):  # it prints where the weights came from
        model = distillmos.ConvTransformerSQAModel()
    return model.to(device).eval()


def distillmos_identity() -> dict:
    distillmos = _import_distillmos()
    weights = Path(distillmos.__file__).resolve().parent / "weights" / "distill_mos_v7.pt"
    return {"model": "DistillMOS v7 (ConvTransformerSQAModel)", "sha256": sha256_file(str(weights)),
            "distillmos": package_version("distillmos"), "xls_r_sqa": package_version("xls-r-sqa"),
            "torch": package_version("torch")}


def distill_mos(samples: np.ndarray, *, device: str = "cpu") -> float:
    """DistillMOS of a 16 kHz waveform (1..5)."""
    import torch

    model = distillmos_model(device)
    with torch.no_grad():
        x = torch.from_numpy(np.asarray(samples, dtype=np.float32))[None].to(device)
        return float(model(x).reshape(-1)[0])


# --- metrics -------------------------------------------------------------------------------
_MEMO: OrderedDict = OrderedDict()  # (namespace, settings, audio key) -> result, for this process
_MEMO_SIZE = 512


class _MosMetric(Metric):
    direction = "higher"
    unit = "MOS"
    sample_rate = MOS_RATE
    requires = ()
    namespace = ""
    packages: dict = {"speechmos": "speechmos", "onnxruntime": "onnxruntime", "librosa": "librosa"}
    extra = "mos"

    def __init__(self, min_seconds: float = 0.5, cache: bool = True, **params):
        super().__init__(min_seconds=min_seconds, cache=cache, **params)
        self.device = "cpu"
        self._cache = None
        self._settings = None  # result settings, computed once (versions, model hashes)

    def identity(self) -> dict:
        raise NotImplementedError

    def unavailable(self) -> str | None:
        """Why this metric cannot run here (its packages not installed), or None; imports nothing."""
        from ..errors import not_installed

        return not_installed(self.packages, self.extra, self.name)

    def compute(self, samples: np.ndarray):
        """JSON-able result for one prepared 16 kHz waveform."""
        raise NotImplementedError

    def load(self, device: str = "cpu") -> None:
        self.device = device
        self.identity()  # fails early (MissingExtraError) when the package is absent

    def settings(self) -> dict:
        return {"version": self.version, **self.params, **self.identity()}

    def _result_settings(self) -> dict:
        """Settings that change the model output (the cache key); min_seconds/cache do not."""
        return {k: v for k, v in self.settings().items() if k not in ("min_seconds", "cache")}

    def result(self, inputs: Inputs) -> tuple[object, int]:
        samples, clipped = prepare(inputs.estimate.at(MOS_RATE).samples, self.params["min_seconds"])
        if self._settings is None:
            self._settings = self._result_settings()
        settings = self._settings
        key = audio_key(samples, MOS_RATE)
        memo_key = (self.namespace, json.dumps(settings, sort_keys=True, default=str), key)
        if memo_key in _MEMO:
            _MEMO.move_to_end(memo_key)
            return _MEMO[memo_key], clipped
        if self._cache is None:
            self._cache = ResultCache(self.namespace, settings, enabled=self.params["cache"])
        value = self._cache.get_json(key)
        if value is None:
            try:
                value = self.compute(samples)
            except MetricFailure:
                raise
            except Exception as exc:  # the model rejected the input (e.g. ONNX shape error)
                raise MetricFailure(f"{self.name} could not score {len(samples) / MOS_RATE:.3f} s of audio: "
                                    f"{str(exc).splitlines()[0][:200]}") from exc
            self._cache.put_json(key, value)
        _MEMO[memo_key] = value
        if len(_MEMO) > _MEMO_SIZE:
            _MEMO.popitem(last=False)
        return value, clipped

    def score(self, inputs: Inputs) -> Score:
        """One MOS value per utterance (DNSMOS overrides: one inference, four values)."""
        value, clipped = self.result(inputs)
        return Score(float(value), extra=self._extra(clipped))

    @staticmethod
    def _extra(clipped: int) -> dict:
        return {"clipped_samples": clipped} if clipped else {}


class _Dnsmos(_MosMetric):
    namespace = "mos-dnsmos"
    key: str

    def __init__(self, personalized: bool = False, threads: int = 1, min_seconds: float = 0.5, cache: bool = True):
        super().__init__(min_seconds=min_seconds, cache=cache, personalized=bool(personalized), threads=int(threads))

    def identity(self) -> dict:
        return dnsmos_identity(self.params["personalized"])

    def load(self, device: str = "cpu") -> None:
        super().load(device)
        dnsmos_model(self.params["personalized"], self.params["threads"])

    def _result_settings(self) -> dict:
        return {k: v for k, v in super()._result_settings().items() if k != "threads"}

    def compute(self, samples):
        return dnsmos(samples, personalized=self.params["personalized"], threads=self.params["threads"])

    def score(self, inputs: Inputs) -> Score:
        values, clipped = self.result(inputs)
        return Score(values[self.key], extra=self._extra(clipped))


class DnsmosSig(_Dnsmos):
    """DNSMOS P.835 speech signal quality (SIG)."""

    name, key = "dnsmos_sig", "sig"


class DnsmosBak(_Dnsmos):
    """DNSMOS P.835 background noise quality (BAK)."""

    name, key = "dnsmos_bak", "bak"


class DnsmosOvrl(_Dnsmos):
    """DNSMOS P.835 overall quality (OVRL)."""

    name, key = "dnsmos_ovrl", "ovrl"


class DnsmosP808(_Dnsmos):
    """DNSMOS P.808 overall MOS."""

    name, key = "dnsmos_p808", "p808"


class Plcmos(_MosMetric):
    """PLCMOS v2 (packet-loss concealment quality), seeded rater embeddings."""

    name = "plcmos"
    namespace = "mos-plcmos"

    def __init__(self, seed: int = 0, rounds: int = 15, threads: int = 1, min_seconds: float = 0.5, cache: bool = True):
        super().__init__(min_seconds=min_seconds, cache=cache, seed=int(seed), rounds=int(rounds), threads=int(threads))

    def identity(self) -> dict:
        return {"model": "PLCMOS v2", "sha256": sha256_file(str(_speechmos_dir() / "plcmos_models" / "plcmos_v2.onnx")),
                "speechmos": package_version("speechmos"), "onnxruntime": package_version("onnxruntime"),
                "rater_embeddings": "numpy RandomState(seed).normal(size=(1, 64)) per round"}

    def load(self, device: str = "cpu") -> None:
        super().load(device)
        plcmos_model(self.params["threads"])

    def _result_settings(self) -> dict:
        return {k: v for k, v in super()._result_settings().items() if k != "threads"}

    def compute(self, samples):
        return plcmos(samples, seed=self.params["seed"], rounds=self.params["rounds"], threads=self.params["threads"])


class DistillMos(_MosMetric):
    """DistillMOS (distilled XLS-R speech quality model), weights from the distillmos wheel."""

    name = "distillmos"
    namespace = "mos-distillmos"
    packages = {"torch": "torch"}
    extra = "torch"

    def unavailable(self) -> str | None:
        from importlib.util import find_spec

        return super().unavailable() or (str(_missing_distillmos()) if find_spec("distillmos") is None else None)

    def identity(self) -> dict:
        return distillmos_identity()

    def load(self, device: str = "cpu") -> None:
        super().load(device)
        distillmos_model(device)

    def compute(self, samples):
        return distill_mos(samples, device=self.device)


class Utmos(_MosMetric):
    """UTMOS22 strong learner from a local tarepan/SpeechMOS checkout and checkpoint (no download)."""

    name = "utmos"
    namespace = "mos-utmos"
    packages = {"torch": "torch"}
    extra = "torch"

    def __init__(self, repo: str | None = None, checkpoint: str | None = None, min_seconds: float = 0.5,
                 cache: bool = True):
        super().__init__(min_seconds=min_seconds, cache=cache, repo=repo, checkpoint=checkpoint)
        self._model = None

    def unavailable(self) -> str | None:
        """Also: the local SpeechMOS checkout and checkpoint must exist (they are never downloaded)."""
        missing = super().unavailable()
        if missing:
            return missing
        try:
            self._paths()
        except ConfigError as exc:
            return str(exc)
        return None

    def _paths(self) -> tuple[Path, Path]:
        repo, ckpt = self.params["repo"], self.params["checkpoint"]
        if not repo or not ckpt:
            raise ConfigError("utmos needs 'repo' (a local checkout of tarepan/SpeechMOS with hubconf.py) and "
                              "'checkpoint' (utmos22_strong_step7459_v1.pt); it never downloads them")
        repo, ckpt = Path(repo).expanduser().resolve(), Path(ckpt).expanduser().resolve()
        if not (repo / "hubconf.py").is_file():
            raise ConfigError(f"utmos repo has no hubconf.py: {repo}")
        if not ckpt.is_file():
            raise ConfigError(f"utmos checkpoint not found: {ckpt}")
        return repo, ckpt

    def identity(self) -> dict:
        repo, ckpt = self._paths()
        return {"model": "UTMOS22 strong (tarepan/SpeechMOS)", "checkpoint": str(ckpt),
                "sha256": sha256_file(str(ckpt)), "hubconf_sha256": sha256_file(str(repo / "hubconf.py")),
                "torch": package_version("torch")}

    def load(self, device: str = "cpu") -> None:
        if self._model is not None:
            return
        repo, ckpt = self._paths()
        torch = require("torch", "torch", "UTMOS")
        self.device = device
        try:
            model = torch.hub.load(str(repo), "utmos22_strong", source="local", pretrained=False)
        except TypeError as exc:
            raise ConfigError(f"utmos: {repo}/hubconf.py has no utmos22_strong(pretrained=...): {exc}") from exc
        model.load_state_dict(torch.load(str(ckpt), map_location="cpu", weights_only=True))
        self._model = model.to(device).eval()

    def compute(self, samples):
        import inspect

        import torch

        self.load(self.device)
        x = torch.from_numpy(np.asarray(samples, dtype=np.float32))[None].to(self.device)
        takes_rate = len(inspect.signature(self._model.forward).parameters) >= 2
        with torch.no_grad():
            out = self._model(x, MOS_RATE) if takes_rate else self._model(x)
        return float(out.reshape(-1)[0])


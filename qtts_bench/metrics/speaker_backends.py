"""Speaker-embedding models behind ``sim_o`` / ``sim_r``. Each maps 16 kHz waveforms to vectors.

Backends (all offline; none downloads anything):

- ``resemblyzer``: GE2E d-vector (256-d), weights inside the ``resemblyzer`` wheel (extra
  ``speaker``). Audio is volume-normalised and long silences are trimmed (webrtcvad), then cut
  into 1.6 s partials whose embeddings are averaged, exactly as ``VoiceEncoder.embed_utterance``;
  here the partials of ``batch_size`` utterances go through the LSTM in one batch.
- ``speechbrain_ecapa``: SpeechBrain ECAPA-TDNN (192-d) from a local folder holding
  ``hyperparams.yaml`` and ``embedding_model.ckpt`` (the ``spkrec-ecapa-voxceleb`` layout);
  extra ``speechbrain``. Batched with relative lengths (SpeechBrain masks the padding).
- ``wavlm_ecapa``: seed-tts-eval's scorer, WavLM-Large + ECAPA-TDNN (256-d) from UniSpeech.
  Needs the fine-tuned checkpoint (``wavlm_large_finetune.pth``) and a local s3prl hub checkout
  (with its WavLM-Large weights cached) that builds the WavLM upstream, as seed-tts-eval does.
  Utterances run one at a time, unpadded, so values match seed-tts-eval's ``verification.py``.

Every backend reports ``identity()``: model name, checkpoint path and sha256, library versions and
every setting that changes the numbers. SIM values from different identities are not comparable.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..audio import AudioError, check_usable
from ..errors import ConfigError, MetricFailure, MissingExtraError, require
from ..hashing import sha256_file
from ..provenance import package_version

SAMPLE_RATE = 16000


class SpeakerBackend:
    """Base: ``embed_batch(waves)`` -> one vector or one MetricFailure per wave (16 kHz float32)."""

    name: str = ""
    embedding_dim: int = 0

    def __init__(self, min_seconds: float = 0.5, **params):
        self.min_seconds = float(min_seconds)
        self.params = params
        self.device = "cpu"

    def load(self, device: str = "cpu") -> None:
        raise NotImplementedError

    def identity(self) -> dict:
        """Model, checkpoint sha256, versions and settings: everything that changes an embedding."""
        raise NotImplementedError

    def embed_batch(self, waves: list[np.ndarray], batch_size: int = 16) -> list:
        raise NotImplementedError

    def _check(self, wave: np.ndarray, what: str = "audio") -> None:
        try:
            check_usable(wave, what)
        except AudioError as exc:
            raise MetricFailure(str(exc)) from None
        seconds = len(wave) / SAMPLE_RATE
        if seconds < self.min_seconds:
            raise MetricFailure(f"{what} is {seconds:.3f} s long; {self.name} needs at least "
                                f"{self.min_seconds:g} s")


# --- resemblyzer ---------------------------------------------------------------------------
def _import_resemblyzer():
    """Import resemblyzer without its dependency webrtcvad's pkg_resources deprecation warning."""
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="pkg_resources is deprecated", category=UserWarning)
        return require("resemblyzer", "speaker", "speaker similarity (resemblyzer)")


class ResemblyzerBackend(SpeakerBackend):
    """GE2E d-vector. ``min_seconds`` applies to the speech left after VAD trimming."""

    name = "resemblyzer"
    embedding_dim = 256

    def __init__(self, min_seconds: float = 0.5, weights: str | None = None, rate: float = 1.3,
                 min_coverage: float = 0.75):
        super().__init__(min_seconds)
        self.weights = weights
        self.rate, self.min_coverage = float(rate), float(min_coverage)
        self._encoder = None

    def _weights_path(self) -> Path:
        if self.weights:
            path = Path(self.weights).expanduser()
            if not path.is_file():
                raise ConfigError(f"resemblyzer weights not found: {path}")
            return path
        resemblyzer = _import_resemblyzer()
        return Path(resemblyzer.__file__).resolve().parent / "pretrained.pt"

    def load(self, device: str = "cpu") -> None:
        if self._encoder is not None:
            return
        VoiceEncoder = _import_resemblyzer().VoiceEncoder

        self.device = device
        self._encoder = VoiceEncoder(device=device, verbose=False, weights_fpath=self._weights_path())
        self._encoder.eval()

    def identity(self) -> dict:
        path = self._weights_path()
        return {"model": "resemblyzer-ge2e", "checkpoint": str(path), "sha256": sha256_file(str(path)),
                "resemblyzer": package_version("resemblyzer"), "webrtcvad": package_version("webrtcvad"),
                "librosa": package_version("librosa"), "torch": package_version("torch"),
                "preprocess": "normalize_volume(-30 dBFS, increase only) + webrtcvad mode 3 trimming",
                "rate": self.rate, "min_coverage": self.min_coverage, "min_speech_seconds": self.min_seconds}

    def _partials(self, wave: np.ndarray) -> np.ndarray:
        """Preprocessed wave -> mel partials (n_partials, 160, 40), as embed_utterance cuts them."""
        from resemblyzer import audio as ra

        wav_slices, mel_slices = self._encoder.compute_partial_slices(len(wave), self.rate, self.min_coverage)
        stop = wav_slices[-1].stop
        if stop >= len(wave):
            wave = np.pad(wave, (0, stop - len(wave)), "constant")
        mel = ra.wav_to_mel_spectrogram(wave)
        return np.array([mel[s] for s in mel_slices])

    def embed_batch(self, waves: list[np.ndarray], batch_size: int = 16) -> list:
        import torch
        from resemblyzer import preprocess_wav

        self.load(self.device)
        results: list = [None] * len(waves)
        pending: list[tuple[int, np.ndarray]] = []
        for i, wave in enumerate(waves):
            try:
                self._check(wave)
                # clipped as a 16-bit file would be: the VAD converts to int16, where overflow wraps
                speech = preprocess_wav(np.clip(np.asarray(wave, dtype=np.float32), -1.0, 1.0))
                seconds = len(speech) / SAMPLE_RATE
                if seconds < self.min_seconds:
                    raise MetricFailure(f"only {seconds:.2f} s of speech after VAD trimming; resemblyzer "
                                        f"needs at least {self.min_seconds:g} s")
                pending.append((i, self._partials(speech)))
            except MetricFailure as exc:
                results[i] = exc
        for start in range(0, len(pending), max(1, int(batch_size))):
            group = pending[start:start + max(1, int(batch_size))]
            mels = np.concatenate([p for _, p in group])
            with torch.no_grad():
                partial = self._encoder(torch.from_numpy(mels).to(self.device)).cpu().numpy()
            offset = 0
            for i, p in group:
                raw = partial[offset:offset + len(p)].mean(axis=0)
                offset += len(p)
                results[i] = (raw / np.linalg.norm(raw)).astype(np.float32)
        return results


# --- SpeechBrain ECAPA-TDNN ----------------------------------------------------------------
class SpeechBrainEcapaBackend(SpeakerBackend):
    """SpeechBrain ``EncoderClassifier`` from a local folder (no hub access)."""

    name = "speechbrain_ecapa"
    embedding_dim = 192
    REQUIRED_FILES = ("hyperparams.yaml", "embedding_model.ckpt")

    def __init__(self, checkpoint: str | None = None, min_seconds: float = 0.5):
        super().__init__(min_seconds)
        self.checkpoint = checkpoint
        self._model = None

    def _folder(self) -> Path:
        if not self.checkpoint:
            raise ConfigError("speechbrain_ecapa needs 'checkpoint': a local folder with "
                              f"{', '.join(self.REQUIRED_FILES)} (e.g. a copy of spkrec-ecapa-voxceleb)")
        folder = Path(self.checkpoint).expanduser().resolve()
        if not folder.is_dir():
            raise ConfigError(f"speechbrain_ecapa checkpoint folder not found: {folder}")
        missing = [f for f in self.REQUIRED_FILES if not (folder / f).is_file()]
        if missing:
            raise ConfigError(f"speechbrain_ecapa checkpoint folder {folder} lacks {', '.join(missing)}")
        return folder

    def load(self, device: str = "cpu") -> None:
        if self._model is not None:
            return
        folder = self._folder()
        try:
            import speechbrain  # noqa: F401
        except ImportError as exc:  # not an extra: it pulls a torchaudio that must match torch
            raise MissingExtraError("speechbrain", "torch", "speaker similarity (SpeechBrain ECAPA-TDNN)",
                                    install="pip install speechbrain (with a torchaudio matching torch 2.13)"
                                    ) from exc
        from speechbrain.inference.speaker import EncoderClassifier

        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        self.device = device
        self._model = EncoderClassifier.from_hparams(
            source=str(folder), savedir=str(folder), run_opts={"device": device},
            overrides={"pretrained_path": str(folder)})
        self._model.eval()

    def identity(self) -> dict:
        folder = self._folder()
        return {"model": "speechbrain-ecapa-tdnn", "checkpoint": str(folder),
                "sha256": sha256_file(str(folder / "embedding_model.ckpt")),
                "hyperparams_sha256": sha256_file(str(folder / "hyperparams.yaml")),
                "speechbrain": package_version("speechbrain"), "torch": package_version("torch"),
                "min_seconds": self.min_seconds}

    def embed_batch(self, waves: list[np.ndarray], batch_size: int = 16) -> list:
        import torch

        self.load(self.device)
        results: list = [None] * len(waves)
        ok = []
        for i, wave in enumerate(waves):
            try:
                self._check(wave)
                ok.append(i)
            except MetricFailure as exc:
                results[i] = exc
        step = max(1, int(batch_size))
        for start in range(0, len(ok), step):
            idx = ok[start:start + step]
            longest = max(len(waves[i]) for i in idx)
            batch = torch.zeros(len(idx), longest)
            for row, i in enumerate(idx):
                batch[row, :len(waves[i])] = torch.from_numpy(np.asarray(waves[i], dtype=np.float32))
            lens = torch.tensor([len(waves[i]) / longest for i in idx])
            with torch.no_grad():
                emb = self._model.encode_batch(batch.to(self.device), lens.to(self.device))
            emb = emb.reshape(len(idx), -1).cpu().numpy()
            for row, i in enumerate(idx):
                results[i] = emb[row].astype(np.float32)
        return results


# --- WavLM-Large + ECAPA-TDNN (seed-tts-eval) ----------------------------------------------
def build_ecapa_head(feat_dim: int = 1024, n_layers: int = 25, emb_dim: int = 256):
    """UniSpeech ``ECAPA_TDNN_SMALL`` head over a weighted sum of SSL hidden states.

    Parameter names follow UniSpeech's module so its checkpoints load. Input to ``forward``:
    hidden states stacked (n_layers, batch, frames, feat_dim); output (batch, emb_dim).
    """
    import torch
    import torch.nn.functional as F
    from torch import nn

    class Conv1dReluBn(nn.Module):
        def __init__(self, cin, cout, kernel_size=1, padding=0, dilation=1):
            super().__init__()
            self.conv = nn.Conv1d(cin, cout, kernel_size, 1, padding, dilation)
            self.bn = nn.BatchNorm1d(cout)

        def forward(self, x):
            return self.bn(F.relu(self.conv(x)))

    class Res2Conv1dReluBn(nn.Module):
        def __init__(self, channels, kernel_size, padding, dilation, scale):
            super().__init__()
            self.width, self.nums = channels // scale, scale - 1
            self.convs = nn.ModuleList(nn.Conv1d(self.width, self.width, kernel_size, 1, padding, dilation)
                                       for _ in range(self.nums))
            self.bns = nn.ModuleList(nn.BatchNorm1d(self.width) for _ in range(self.nums))

        def forward(self, x):
            splits = torch.split(x, self.width, 1)
            out, sp = [], None
            for i in range(self.nums):
                sp = splits[i] if i == 0 else sp + splits[i]
                sp = self.bns[i](F.relu(self.convs[i](sp)))
                out.append(sp)
            out.append(splits[self.nums])
            return torch.cat(out, dim=1)

    class SEConnect(nn.Module):
        def __init__(self, channels, bottleneck=128):
            super().__init__()
            self.linear1 = nn.Linear(channels, bottleneck)
            self.linear2 = nn.Linear(bottleneck, channels)

        def forward(self, x):
            gate = torch.sigmoid(self.linear2(F.relu(self.linear1(x.mean(dim=2)))))
            return x * gate.unsqueeze(2)

    class SERes2Block(nn.Module):
        def __init__(self, channels, padding, dilation):
            super().__init__()
            self.Conv1dReluBn1 = Conv1dReluBn(channels, channels)
            self.Res2Conv1dReluBn = Res2Conv1dReluBn(channels, 3, padding, dilation, scale=8)
            self.Conv1dReluBn2 = Conv1dReluBn(channels, channels)
            self.SE_Connect = SEConnect(channels)

        def forward(self, x):
            return self.SE_Connect(self.Conv1dReluBn2(self.Res2Conv1dReluBn(self.Conv1dReluBn1(x)))) + x

    class AttentiveStatsPool(nn.Module):
        def __init__(self, dim, attention=128):
            super().__init__()
            self.linear1 = nn.Conv1d(dim, attention, kernel_size=1)
            self.linear2 = nn.Conv1d(attention, dim, kernel_size=1)

        def forward(self, x):
            alpha = torch.softmax(self.linear2(torch.tanh(self.linear1(x))), dim=2)
            mean = torch.sum(alpha * x, dim=2)
            var = torch.sum(alpha * x ** 2, dim=2) - mean ** 2
            return torch.cat([mean, torch.sqrt(var.clamp(min=1e-9))], dim=1)

    class EcapaHead(nn.Module):
        def __init__(self):
            super().__init__()
            self.feature_weight = nn.Parameter(torch.zeros(n_layers))
            self.instance_norm = nn.InstanceNorm1d(feat_dim)
            self.layer1 = Conv1dReluBn(feat_dim, 512, kernel_size=5, padding=2)
            self.layer2 = SERes2Block(512, padding=2, dilation=2)
            self.layer3 = SERes2Block(512, padding=3, dilation=3)
            self.layer4 = SERes2Block(512, padding=4, dilation=4)
            self.conv = nn.Conv1d(512 * 3, 1536, kernel_size=1)
            self.pooling = AttentiveStatsPool(1536)
            self.bn = nn.BatchNorm1d(1536 * 2)
            self.linear = nn.Linear(1536 * 2, emb_dim)

        def forward(self, hidden):
            weights = F.softmax(self.feature_weight, dim=-1).view(-1, 1, 1, 1)
            x = (weights * hidden).sum(dim=0).transpose(1, 2) + 1e-6
            out1 = self.layer1(self.instance_norm(x))
            out2 = self.layer2(out1)
            out3 = self.layer3(out2)
            out4 = self.layer4(out3)
            out = F.relu(self.conv(torch.cat([out2, out3, out4], dim=1)))
            return self.linear(self.bn(self.pooling(out)))

    return EcapaHead()


class WavLmEcapaBackend(SpeakerBackend):
    """seed-tts-eval SIM model: s3prl ``wavlm_large`` upstream + UniSpeech ECAPA head."""

    name = "wavlm_ecapa"
    embedding_dim = 256

    def __init__(self, checkpoint: str | None = None, s3prl_hub: str | None = None, min_seconds: float = 0.5,
                 trust_checkpoint: bool = False):
        super().__init__(min_seconds)
        self.checkpoint, self.s3prl_hub = checkpoint, s3prl_hub
        self.trust_checkpoint = bool(trust_checkpoint)  # allow full unpickling of the checkpoint
        self._upstream = self._head = None

    def _paths(self) -> tuple[Path, Path]:
        if not self.checkpoint:
            raise ConfigError("wavlm_ecapa needs 'checkpoint': the fine-tuned wavlm_large_finetune.pth "
                              "(UniSpeech speaker verification, used by seed-tts-eval)")
        ckpt = Path(self.checkpoint).expanduser().resolve()
        if not ckpt.is_file():
            raise ConfigError(f"wavlm_ecapa checkpoint not found: {ckpt}")
        if not self.s3prl_hub:
            raise ConfigError("wavlm_ecapa needs 's3prl_hub': a local checkout of s3prl (with hubconf.py) "
                              "whose wavlm_large weights are already cached")
        hub = Path(self.s3prl_hub).expanduser().resolve()
        if not (hub / "hubconf.py").is_file():
            raise ConfigError(f"wavlm_ecapa s3prl_hub has no hubconf.py: {hub}")
        return ckpt, hub

    def load(self, device: str = "cpu") -> None:
        if self._head is not None:
            return
        ckpt, hub = self._paths()
        torch = require("torch", "torch", "speaker similarity (WavLM + ECAPA-TDNN)")
        upstream = torch.hub.load(str(hub), "wavlm_large", source="local")
        layers = upstream.model.encoder.layers
        for i in (11, 23):  # as UniSpeech: attention in fp32 off for these layers of WavLM-Large
            if len(layers) == 24 and hasattr(layers[i].self_attn, "fp32_attention"):
                layers[i].self_attn.fp32_attention = False
        try:
            state = torch.load(str(ckpt), map_location="cpu", weights_only=not self.trust_checkpoint)
        except Exception as exc:
            raise ConfigError(f"cannot load wavlm_ecapa checkpoint {ckpt} with weights_only="
                              f"{not self.trust_checkpoint}: {exc} (set trust_checkpoint: true only for a "
                              "file from a source you trust)") from exc
        self.attach(upstream, state.get("model", state), device)

    def attach(self, upstream, state_dict: dict, device: str = "cpu") -> None:
        """Combine an s3prl-style upstream (returns {"hidden_states": [...]}) with the head and
        load ``state_dict`` (keys ``feature_extract.*`` and head keys, as UniSpeech saves them).
        Raises ConfigError when a head parameter is absent from the checkpoint."""
        import torch

        upstream.eval()
        with torch.no_grad():
            n_layers = len(upstream([torch.zeros(SAMPLE_RATE)])["hidden_states"])
        feat_dim = int(state_dict["layer1.conv.weight"].shape[1]) if "layer1.conv.weight" in state_dict else 1024
        head = build_ecapa_head(feat_dim=feat_dim, n_layers=n_layers)
        head_keys = set(head.state_dict())
        missing = sorted(head_keys - set(state_dict))
        if missing:
            raise ConfigError(f"wavlm_ecapa checkpoint lacks head parameters: {missing[:5]}"
                              f"{' ...' if len(missing) > 5 else ''}")
        head.load_state_dict({k: v for k, v in state_dict.items() if k in head_keys})
        upstream_state = {k[len("feature_extract."):]: v for k, v in state_dict.items()
                          if k.startswith("feature_extract.")}
        if upstream_state:
            result = upstream.load_state_dict(upstream_state, strict=False)
            self.upstream_keys_loaded = len(upstream_state) - len(result.unexpected_keys)
        else:
            self.upstream_keys_loaded = 0
        self.device = device
        self._upstream, self._head = upstream.to(device).eval(), head.to(device).eval()

    def identity(self) -> dict:
        ckpt, hub = self._paths()
        return {"model": "wavlm-large-ecapa-tdnn (seed-tts-eval)", "checkpoint": str(ckpt),
                "sha256": sha256_file(str(ckpt)), "s3prl_hub": str(hub), "torch": package_version("torch"),
                "batching": "one utterance per forward, unpadded", "min_seconds": self.min_seconds}

    def embed_batch(self, waves: list[np.ndarray], batch_size: int = 16) -> list:
        import torch

        self.load(self.device)
        results: list = []
        for wave in waves:
            try:
                self._check(wave)
            except MetricFailure as exc:
                results.append(exc)
                continue
            x = torch.from_numpy(np.asarray(wave, dtype=np.float32)).to(self.device)
            with torch.no_grad():
                hidden = torch.stack(self._upstream([x])["hidden_states"], dim=0)
                results.append(self._head(hidden)[0].cpu().numpy().astype(np.float32))
        return results


BACKENDS = {b.name: b for b in (ResemblyzerBackend, SpeechBrainEcapaBackend, WavLmEcapaBackend)}


def make_backend(name: str, **params) -> SpeakerBackend:
    """Instantiate a backend by name; unknown names and parameters raise ConfigError."""
    if name not in BACKENDS:
        raise ConfigError(f"unknown speaker backend '{name}'; available: {', '.join(BACKENDS)}")
    try:
        return BACKENDS[name](**params)
    except TypeError as exc:
        raise ConfigError(f"speaker backend '{name}': {exc}") from None

"""QTTS as a harness system: autoregressive TTS over QDAC tokens, three decoders, streamed.

``QttsTTS(checkpoint=FOLDER, decoder="hierarchical")`` loads a QTTS checkpoint (a folder from
``qtts-bench train qtts`` -- ``<run>/export`` -- or a shipped name) and the QDAC checkpoint it
was trained on (recorded in its config.json; ``codec`` overrides the location, and a QDAC whose
frame rate, codebook size, codebook count or weights differ is refused). The constructor reads
config.json only; torch loads in ``load()``.

Each generation returns the audio, its codes (n_codebooks, frames) and ``code_info`` (so the
codebook metrics see them) and ``extra``: ``max_length_hit`` (the length limit stopped it, not
end-of-speech), ``eos``, ``generated_frames``, ``prompt_frames``, ``prompt_used``,
``text_tokens``, ``max_frames``. With ``stream_chunk_frames`` > 0 (default 10) the audio is
decoded in chunks while frames are generated (method in :mod:`qtts_bench.qtts.inference`),
so TTFT is the real time to the first chunk.

Speaker prompt: used when the item has both prompt audio and its transcript (``use_prompt``);
the transcript is prepended to the text and the prompt's codes precede the generated frames
(continuation, as in VALL-E); otherwise the model speaks unprompted.
"""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError, SystemFailure, not_installed, require
from ..provenance import package_versions
from .base import TTS, Generation, Request


def _number(name: str, value, low: float, high: float, integer: bool = False):
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if integer:
        ok = ok and float(value).is_integer()
    if not ok or not low <= value <= high:
        kind = "an integer" if integer else "a number"
        raise ConfigError(f"qtts: {name} must be {kind} in [{low}, {high}], got {value!r}")
    return int(value) if integer else float(value)


class QttsTTS(TTS):
    """QTTS (hierarchical | multihead | single decoder) over QDAC tokens, 16 kHz."""

    sample_rate = 16000
    needs = ("text",)

    def __init__(self, checkpoint: str | None = None, decoder: str | None = None, codec: str | None = None,
                 temperature: float = 0.8, top_k: int = 50, top_p: float = 1.0, repetition_penalty: float = 1.0,
                 repetition_window: int = 0, max_seconds: float = 30.0, stream_chunk_frames: int = 10,
                 use_prompt: bool = True, threads: int | None = None):
        from ..qtts.checkpoint import read_config, resolve_checkpoint
        from ..qtts.sampling import SamplingConfig

        if not checkpoint or not isinstance(checkpoint, str):
            raise ConfigError("qtts: 'checkpoint' is required: a folder written by `qtts-bench train qtts` "
                              "(its export/ folder) or a shipped checkpoint name")
        self.checkpoint = checkpoint
        self.folder = resolve_checkpoint(checkpoint)
        self.cfg, self.meta = read_config(self.folder)
        if decoder is not None and decoder != self.cfg.decoder:
            raise ConfigError(f"qtts: decoder={decoder!r} but checkpoint {self.folder} holds a "
                              f"'{self.cfg.decoder}' model")
        self.decoder = self.cfg.decoder
        try:
            self.sampling = SamplingConfig(temperature=temperature, top_k=top_k, top_p=top_p,
                                           repetition_penalty=repetition_penalty, repetition_window=repetition_window)
        except ConfigError as exc:
            raise ConfigError(f"qtts: {exc}") from None
        self.max_seconds = _number("max_seconds", max_seconds, 0.1, 600.0)
        self.stream_chunk_frames = _number("stream_chunk_frames", stream_chunk_frames, 0, 10_000, integer=True)
        self.streaming = self.stream_chunk_frames > 0
        self.use_prompt = bool(use_prompt)
        self.threads = None if threads is None else _number("threads", threads, 1, 256, integer=True)
        self.codec_checkpoint = codec or self.meta["codec"].get("checkpoint")
        self.frame_rate = float(self.cfg.frame_rate)
        self.codebook_size = self.cfg.codebook_size
        self.n_codebooks = self.cfg.n_codebooks
        self._check_codec_light()
        self._synth = None
        self._info: dict = {}

    def _check_codec_light(self) -> None:
        """Frame rate / codebook size / count against the QDAC's config.json (the weights hash waits for load)."""
        from ..qdac.checkpoint import read_config as read_qdac
        from ..qdac.checkpoint import resolve_checkpoint as resolve_qdac
        from ..qtts.checkpoint import check_codec

        try:
            folder = resolve_qdac(self.codec_checkpoint)
        except ConfigError as exc:
            raise ConfigError(f"qtts: the QDAC checkpoint of {self.folder} is not available: {exc} "
                              "(pass codec=FOLDER)") from None
        qcfg, _ = read_qdac(folder)
        check_codec(self.meta, qcfg, self.meta["codec"].get("weights_sha256") or "", folder, "qtts")

    def code_info(self) -> dict:
        return {"codebook_size": self.codebook_size, "frame_rate": self.frame_rate, "n_codebooks": self.n_codebooks}

    def unavailable(self) -> str | None:
        return not_installed({"torch": "torch", "safetensors": "safetensors"}, "torch", "the qtts TTS system")

    def load(self, device: str = "cpu") -> None:
        if self._synth is not None and device == self.device:
            return
        torch = require("torch", "torch", "the qtts TTS system")
        require("safetensors", "torch", "QTTS checkpoints")
        from ..qtts.checkpoint import check_codec, load_checkpoint
        from ..qtts.inference import Synthesizer
        from .qdac import QdacCodec

        if self.threads:
            torch.set_num_threads(self.threads)
        model, tokenizer, info = load_checkpoint(self.checkpoint, device)
        codec = QdacCodec(self.codec_checkpoint, n_codebooks=self.cfg.n_codebooks, threads=self.threads)
        codec.load(device)
        check_codec(info["config"], codec.cfg, codec._info["weights_sha256"], codec._info["path"], "qtts")
        self._synth = Synthesizer(model, tokenizer, codec, device, self.max_seconds)
        self._info = {**info, "codec": codec.provenance()}
        self.device = device

    def _kwargs(self, request: Request) -> dict:
        use = self.use_prompt and request.prompt_audio is not None and bool(request.prompt_text)
        return {"prompt_audio": request.prompt_audio if use else None, "prompt_text": request.prompt_text if use else None,
                "sampling": self.sampling, "seed": request.seed}

    def synthesize(self, text, *, prompt_audio=None, prompt_text=None, language=None, seed=None) -> np.ndarray:
        if self._synth is None:
            raise SystemFailure("qtts: call load() before synthesize()")
        use = self.use_prompt and prompt_audio is not None and bool(prompt_text)
        return self._synth.synthesize(text, prompt_audio=prompt_audio if use else None,
                                      prompt_text=prompt_text if use else None, sampling=self.sampling, seed=seed)

    def stream(self, text, **kwargs):
        if self._synth is None:
            raise SystemFailure("qtts: call load() before stream()")
        return self._synth.stream(text, chunk_frames=max(1, self.stream_chunk_frames), **kwargs)

    def generate(self, request: Request) -> Generation:
        from ..timing import measure, stream_timing

        if self._synth is None:
            raise SystemFailure("qtts: call load() before generate()")
        if request.text is None or not request.text.strip():
            raise SystemFailure("the item has no text to synthesize")
        info: dict = {}
        kwargs = self._kwargs(request)
        ttft = None
        if self.streaming:
            (chunks, ttft, seconds), _, peak = measure(
                lambda: stream_timing(lambda: self._synth.stream(request.text, chunk_frames=self.stream_chunk_frames,
                                                                 info=info, **kwargs), self.device), self.device)
            audio = np.concatenate([np.asarray(c, np.float32) for c in chunks]) if chunks else np.zeros(0, np.float32)
        else:
            audio, seconds, peak = measure(lambda: self._synth.synthesize(request.text, info=info, **kwargs), self.device)
        codes = info["codes"]
        extra = {"max_length_hit": bool(info.get("max_length_hit")), "eos": bool(info.get("eos")),
                 "generated_frames": int(codes.shape[1]), "prompt_frames": int(info.get("prompt_frames", 0)),
                 "prompt_used": bool(info.get("prompt_used")), "text_tokens": int(info.get("text_tokens", 0)),
                 "max_frames": int(info.get("max_frames", 0))}
        return Generation(audio, seconds=seconds, ttft=ttft, peak_memory=peak, codes=codes, code_info=self.code_info(),
                          extra=extra)

    def provenance(self) -> dict:
        out = {"checkpoint": self.checkpoint, "folder": str(self.folder), "decoder": self.decoder,
               "model": self.cfg.to_dict(), "codec_checkpoint": self.codec_checkpoint,
               "sampling": dict(self.sampling.__dict__), "max_seconds": self.max_seconds,
               "stream_chunk_frames": self.stream_chunk_frames, "use_prompt": self.use_prompt, "threads": self.threads,
               "card": self.meta.get("card"), "training_step": (self.meta.get("training") or {}).get("step"),
               "n_parameters": self.meta.get("n_parameters"),
               "streaming_method": "windowed QDAC decoding with left context and held-back look-ahead "
                                   "(both = the decoder's measured reach); exact vs one whole decode"}
        if self._info:
            out.update(weights_sha256=self._info["weights_sha256"], config_sha256=self._info["config_sha256"],
                       codec=self._info["codec"], decoder_reach_frames=self._synth.reach if self._synth else None)
        out.update({f"{name}_version": v for name, v in package_versions(("torch", "safetensors")).items()})
        return out

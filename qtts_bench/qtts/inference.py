"""Text -> QTTS frames -> audio, whole or streamed in chunks as the frames come.

**Streaming method** (:class:`ChunkedDecoder`): QDAC's decoder is convolutional with a finite
reach: an input frame changes the output only within ``reach`` frames on each side (measured
once at load by perturbing one frame, :func:`measure_reach`). Each time ``chunk`` new frames
have become final, the decoder runs on a window of the frames so far, starting ``left`` frames
before the first frame not yet emitted, and emits the audio of every frame that is at least
``right`` frames from the newest one; the end of the utterance flushes the rest. With
``left``, ``right`` >= the reach, the concatenated chunks equal one decode of the whole
utterance (tested to 1e-5); no crossfade is needed. The price is latency: the first chunk needs
``chunk + right`` frames, and each decode re-runs ``left + right`` frames of context.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import numpy as np
import torch

from ..errors import SystemFailure
from .sampling import SamplingConfig
from .tokenizer import CharTokenizer, TokenizerError


def measure_reach(decode: Callable[[np.ndarray], np.ndarray], n_codebooks: int, codebook_size: int, hop: int,
                  seed: int = 0, max_frames: int = 512) -> int | None:
    """Frames on either side that one frame's codes influence in ``decode``; None when > max_frames // 4."""
    rng = np.random.default_rng(seed)
    width = 16
    while 4 * width <= max_frames:
        n = 2 * width + 1
        codes = rng.integers(0, codebook_size, (n_codebooks, n))
        other = codes.copy()
        other[:, width] = (codes[:, width] + 1 + rng.integers(0, codebook_size - 1, n_codebooks)) % codebook_size
        a, b = decode(codes), decode(other)
        changed = np.nonzero(np.abs(a - b) > 1e-6 * max(1e-3, float(np.abs(a).max())))[0]
        if changed.size == 0:
            return 0
        left = math.ceil((width * hop - changed[0]) / hop)
        right = math.ceil((changed[-1] + 1 - (width + 1) * hop) / hop)
        reach = max(left, right, 0)
        if reach < width - 1:
            return reach
        width *= 2
    return None


class ChunkedDecoder:
    """Push frames (K,), get audio chunks of final samples; ``flush`` at the end (see module doc)."""

    def __init__(self, decode: Callable[[np.ndarray], np.ndarray], hop: int, left: int, right: int, chunk: int):
        if chunk < 1:
            raise ValueError("chunk must be >= 1 frame")
        self.decode, self.hop, self.left, self.right, self.chunk = decode, hop, left, right, chunk
        self.frames: list[np.ndarray] = []
        self.emitted = 0
        self.decodes = 0

    def push(self, frame: np.ndarray) -> np.ndarray | None:
        self.frames.append(np.asarray(frame))
        final = len(self.frames) - self.right
        if final - self.emitted >= self.chunk:
            return self._emit(final)
        return None

    def flush(self) -> np.ndarray | None:
        if self.emitted < len(self.frames):
            return self._emit(len(self.frames))
        return None

    def _emit(self, upto: int) -> np.ndarray:
        start = max(0, self.emitted - self.left)
        audio = self.decode(np.stack(self.frames[start:], axis=1))
        self.decodes += 1
        out = audio[(self.emitted - start) * self.hop:(upto - start) * self.hop]
        self.emitted = upto
        return np.asarray(out, dtype=np.float32)


class Synthesizer:
    """A loaded QTTS model + tokenizer + loaded QDAC codec (``QdacCodec``): frames, audio, streams.

    ``max_seconds`` caps every output; the per-utterance limit is
    ``frame_rate * (1 s + seconds_per_token * target tokens)`` (model config), never more than
    the audio context left after the prompt. Generation stops on end-of-speech or at the limit
    (``info["max_length_hit"]``).
    """

    def __init__(self, model, tokenizer: CharTokenizer, codec, device: str = "cpu", max_seconds: float | None = 30.0,
                 reach: int | None = None):
        self.model, self.tokenizer, self.codec, self.device = model, tokenizer, codec, device
        self.cfg = model.cfg
        self.max_seconds = max_seconds
        self.hop = int(round(codec.sample_rate / self.cfg.frame_rate))
        if reach is None:
            reach = measure_reach(self.decode, self.cfg.n_codebooks, self.cfg.codebook_size, self.hop)
        self.reach = reach  # None: unbounded -> streaming re-decodes the whole prefix

    def decode(self, codes: np.ndarray) -> np.ndarray:
        return np.asarray(self.codec.decode(np.asarray(codes, dtype=np.int64)), dtype=np.float32)

    # --- inputs ----------------------------------------------------------------------------------
    def prepare(self, text: str, prompt_audio: np.ndarray | None = None, prompt_text: str | None = None) -> dict:
        """-> {text_ids (1, L) tensor, prompt (K, P) tensor or None, max_frames, target_tokens}; SystemFailure on bad input."""
        cfg = self.cfg
        if text is None or not str(text).strip():
            raise SystemFailure("qtts: the text is empty")
        with_prompt = prompt_audio is not None
        if with_prompt and (not isinstance(prompt_text, str) or not prompt_text.strip()):
            raise SystemFailure("qtts: a speaker prompt needs its transcript (prompt_text)")
        try:
            target = self.tokenizer.encode(text)
            ids = self.tokenizer.encode(f"{prompt_text} {text}") if with_prompt else target
        except TokenizerError as exc:
            raise SystemFailure(f"qtts: {exc}") from None
        if len(ids) > cfg.max_text_tokens:
            raise SystemFailure(f"qtts: the text{' with the prompt transcript' if with_prompt else ''} has {len(ids)} "
                                f"tokens; the model's text context is {cfg.max_text_tokens}")
        prompt = None
        if prompt_audio is not None:
            x = np.asarray(prompt_audio, dtype=np.float32).reshape(-1)
            if x.size == 0 or not np.any(np.abs(x) > 1e-4):
                raise SystemFailure("qtts: the speaker prompt is empty or silent")
            prompt = torch.from_numpy(self.codec.encode(x)[: cfg.n_codebooks].astype(np.int64))
        P = 0 if prompt is None else prompt.shape[1]
        room = cfg.max_audio_frames - P
        if room < 1:
            raise SystemFailure(f"qtts: the speaker prompt ({P} frames, {P / cfg.frame_rate:.1f} s) fills the model's "
                                f"audio context of {cfg.max_audio_frames} frames ({cfg.max_audio_frames / cfg.frame_rate:.1f} s)")
        by_text = math.ceil(cfg.frame_rate * (1.0 + cfg.seconds_per_token * len(target)))
        cap = math.ceil(cfg.frame_rate * self.max_seconds) if self.max_seconds else by_text
        return {"text_ids": torch.tensor([ids], dtype=torch.long, device=self.device), "prompt": prompt,
                "max_frames": max(1, min(by_text, cap, room)), "target_tokens": len(target), "text_tokens": len(ids)}

    def _generator(self, seed: int | None) -> torch.Generator:
        gen = torch.Generator(device=self.device)
        gen.manual_seed(int(seed if seed is not None else 0) % (2 ** 63))
        return gen

    # --- outputs ---------------------------------------------------------------------------------
    def frames(self, text: str, *, prompt_audio=None, prompt_text=None, sampling: SamplingConfig | None = None,
               seed: int | None = None, info: dict | None = None, max_frames: int | None = None) -> Iterator[np.ndarray]:
        """Yield frames (K,) int64 as they are generated; ``info`` gets the counters and ``codes``."""
        info = {} if info is None else info
        inputs = self.prepare(text, prompt_audio, prompt_text)
        limit = inputs["max_frames"] if max_frames is None else max(1, min(max_frames, inputs["max_frames"]))
        info.update(text_tokens=inputs["text_tokens"], max_frames=limit, prompt_used=inputs["prompt"] is not None)
        collected = []
        for frame in self.model.generate(inputs["text_ids"], inputs["prompt"], sampling=sampling,
                                         generator=self._generator(seed), max_frames=limit, info=info):
            f = frame.cpu().numpy()
            collected.append(f)
            yield f
        codes = (np.stack(collected, axis=1) if collected
                 else np.zeros((self.cfg.n_codebooks, 0), dtype=np.int64))
        if codes.size and (codes.min() < 0 or codes.max() >= self.cfg.codebook_size):
            raise SystemFailure(f"qtts: generated codes out of range [{codes.min()}, {codes.max()}] (a special token "
                                "leaked into the frames)")
        info["codes"] = codes

    def synthesize(self, text: str, *, info: dict | None = None, **kwargs) -> np.ndarray:
        """Whole utterance: generate every frame, then decode once."""
        info = {} if info is None else info
        for _ in self.frames(text, info=info, **kwargs):
            pass
        if info["codes"].shape[1] == 0:
            raise SystemFailure("qtts: no frame was generated")
        return self.decode(info["codes"])

    def stream(self, text: str, *, chunk_frames: int = 25, info: dict | None = None, **kwargs) -> Iterator[np.ndarray]:
        """Audio chunks decoded as frames arrive (see module doc); equals ``synthesize`` to float precision."""
        info = {} if info is None else info
        reach = self.reach if self.reach is not None else 10 ** 9
        chunker = ChunkedDecoder(self.decode, self.hop, left=reach, right=min(reach, 10 ** 6), chunk=chunk_frames)
        if self.reach is None:  # unbounded reach: decode the growing prefix, emit only the end
            chunker.right = 0
        for frame in self.frames(text, info=info, **kwargs):
            chunk = chunker.push(frame)
            if chunk is not None and chunk.size:
                yield chunk
        last = chunker.flush()
        if info["codes"].shape[1] == 0:
            raise SystemFailure("qtts: no frame was generated")
        info["decodes"] = chunker.decodes
        if last is not None and last.size:
            yield last

"""The three QTTS decoders, the delay pattern and the generation loops.

Tokens (C = codebook size): 0..C-1 codes, ``PAD = C`` (delay padding, input only), ``EOS = C + 1``
(end of speech, codebook 1 only). Every output head has C + 1 columns: the codes and, in column
C, the end-of-speech logit, which is masked (-inf) for codebooks 2..N, so no head can emit PAD
and only codebook 1 can end an utterance. A sampled column C becomes the token EOS.

**Delay Multihead** (``multihead``; ``single`` is the same with one codebook): codebook k
(0-based) is delayed by k steps (MusicGen): step s holds frame s - k of codebook k, PAD where
s - k < 0 or s - k >= T, and EOS on codebook 0 at step T. An utterance of T frames occupies
T + max(K - 1, 1) steps. Generation forces every position whose value is known before sampling
(the leading PADs and the speaker prompt's frames, applied once from one "known" pattern), and
cascades the stop: once codebook 0 emits EOS at step E, codebook k still emits its frames up to
E - 1 (its last at step E - 1 + k) and is then finished, so generation ends at step E + K - 2
with no PAD inside the returned frames; the pattern is reverted exactly (no trimming).

**Hierarchical Parallel** (``hierarchical``, dual AR / RQ-Transformer): the backbone runs over
frames; its hidden state h_t conditions a depth transformer over K positions: position 0 gets
``proj(h_t) + pos[0]``, position k gets ``proj(h_t) + emb[k-1](code_{k-1}) + pos[k]``; head k
reads position k. Training runs the whole depth sequence of every frame in one causal pass;
generation runs one depth position per codebook with a per-frame KV cache (K depth passes per
frame, plus one for the frame whose codebook 1 is EOS).
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
import torch.nn as nn
import torch.nn.functional as F

from .config import QttsConfig
from .model import Backbone, Block, KVCache, init_weights
from .sampling import SamplingConfig, sample

NEG_INF = float("-inf")


# --- delay pattern ----------------------------------------------------------------------------
def build_delay_pattern(codes: torch.Tensor, pad: int, extra: int = 0) -> torch.Tensor:
    """codes (..., K, T) -> pattern (..., K, T + K - 1 + extra): pattern[k, s] = codes[k, s - k], else ``pad``."""
    K, T = codes.shape[-2:]
    out = codes.new_full((*codes.shape[:-1], T + K - 1 + extra), pad)
    for k in range(K):
        out[..., k, k:k + T] = codes[..., k, :]
    return out


def revert_delay_pattern(pattern: torch.Tensor, frames: int) -> torch.Tensor:
    """pattern (..., K, S) -> codes (..., K, frames) with codes[k, t] = pattern[k, t + k] (exact inverse)."""
    K, S = pattern.shape[-2:]
    if frames + K - 1 > S:
        raise ValueError(f"a pattern of {S} steps holds at most {S - K + 1} frames of {K} codebooks, not {frames}")
    return torch.stack([pattern[..., k, k:k + frames] for k in range(K)], dim=-2)


def _eos_target(tgt: torch.Tensor, valid: torch.Tensor, frames: torch.Tensor, eos: int) -> None:
    rows = torch.arange(tgt.shape[0], device=tgt.device)
    tgt[rows, 0, frames] = eos
    valid[rows, 0, frames] = True


def delay_targets(codes: torch.Tensor, frames: torch.Tensor, cfg: QttsConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """codes (B, K, T) right-padded, frames (B,) -> (pattern (B, K, T + delay_steps), valid (B, K, S))."""
    B, K, T = codes.shape
    S = T + cfg.delay_steps
    tgt = build_delay_pattern(codes, cfg.pad_id, S - (T + K - 1))
    steps = torch.arange(S, device=codes.device)
    delays = torch.arange(K, device=codes.device)[:, None]
    valid = (steps[None, None] >= delays[None]) & (steps[None, None] < delays[None] + frames[:, None, None])
    tgt = torch.where(valid, tgt, torch.full_like(tgt, cfg.pad_id))
    _eos_target(tgt, valid, frames, cfg.eos_id)
    return tgt, valid


def frame_targets(codes: torch.Tensor, frames: torch.Tensor, cfg: QttsConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """Hierarchical: codes (B, K, T), frames (B,) -> (steps (B, K, T + 1), valid): frames then the EOS frame."""
    B, K, T = codes.shape
    tgt = torch.cat([codes, codes.new_full((B, K, 1), cfg.pad_id)], dim=2)
    valid = (torch.arange(T + 1, device=codes.device)[None, None] < frames[:, None, None]).expand(B, K, T + 1).clone()
    tgt = torch.where(valid, tgt, torch.full_like(tgt, cfg.pad_id))
    _eos_target(tgt, valid, frames, cfg.eos_id)
    return tgt, valid


# --- heads ------------------------------------------------------------------------------------
class Heads(nn.Module):
    """K output heads of C + 1 columns (codes + end of speech), stored as one (K, C+1, dim) tensor."""

    def __init__(self, dim: int, n_codebooks: int, codebook_size: int):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(n_codebooks, codebook_size + 1, dim) * 0.02)
        self.bias = nn.Parameter(torch.zeros(n_codebooks, codebook_size + 1))
        eos_mask = torch.zeros(n_codebooks, codebook_size + 1)
        eos_mask[1:, codebook_size] = NEG_INF  # only codebook 1 may end the utterance
        self.register_buffer("eos_mask", eos_mask, persistent=False)

    def all(self, h: torch.Tensor) -> torch.Tensor:
        """h (..., dim) -> logits (..., K, C+1): every head on the same state (multihead)."""
        K, V, d = self.weight.shape
        out = F.linear(h, self.weight.reshape(K * V, d), self.bias.reshape(K * V))  # one GEMM for all heads
        return out.view(*h.shape[:-1], K, V) + self.eos_mask

    def each(self, h: torch.Tensor) -> torch.Tensor:
        """h (..., K, dim) -> logits (..., K, C+1): head k on state k (hierarchical)."""
        return torch.einsum("...kd,kvd->...kv", h, self.weight) + self.bias + self.eos_mask

    def one(self, h: torch.Tensor, k: int) -> torch.Tensor:
        """h (B, dim) -> logits (B, C+1) of head k."""
        return F.linear(h, self.weight[k], self.bias[k]) + self.eos_mask[k]


def _per_codebook_ce(logits: torch.Tensor, tgt: torch.Tensor, valid: torch.Tensor, cfg: QttsConfig):
    """logits (..., K, C+1), tgt/valid (..., K) -> (sum of CE per codebook (K,), count per codebook (K,))."""
    C = cfg.codebook_size
    columns = torch.where(tgt == cfg.eos_id, torch.full_like(tgt, C), tgt.clamp(max=C))
    columns = torch.where(valid, columns, torch.zeros_like(columns))
    ce = F.cross_entropy(logits.reshape(-1, C + 1).float(), columns.reshape(-1), reduction="none").view(columns.shape)
    ce = torch.where(valid, ce, torch.zeros_like(ce))
    K = cfg.n_codebooks
    return ce.reshape(-1, K).sum(0), valid.reshape(-1, K).sum(0)


def _to_token(columns: torch.Tensor, cfg: QttsConfig) -> torch.Tensor:
    """Sampled head columns -> tokens (column C -> EOS)."""
    return torch.where(columns == cfg.codebook_size, torch.full_like(columns, cfg.eos_id), columns)


def _history(rows: torch.Tensor, cfg: QttsConfig) -> torch.Tensor:
    """Recent tokens (K, W) -> codes only (PAD / EOS / unknown -> -1, ignored by the penalty)."""
    return torch.where((rows >= 0) & (rows < cfg.codebook_size), rows, torch.full_like(rows, -1))


# --- Delay Multihead / Single -----------------------------------------------------------------
class MultiheadDecoder(nn.Module):
    def __init__(self, cfg: QttsConfig):
        super().__init__()
        self.cfg = cfg
        self.heads = Heads(cfg.d_model, cfg.n_codebooks, cfg.codebook_size)

    def targets(self, codes, frames):
        return delay_targets(codes, frames, self.cfg)

    def loss(self, backbone: Backbone, batch: dict):
        tgt, valid = self.targets(batch["codes"], batch["frames"])
        hidden = backbone(batch["text_ids"], batch["text_mask"], tgt[:, :, :-1])  # (B, S, d)
        logits = self.heads.all(hidden)  # (B, S, K, C+1)
        return _per_codebook_ce(logits, tgt.transpose(1, 2), valid.transpose(1, 2), self.cfg)

    @torch.inference_mode()
    def generate(self, backbone: Backbone, text_ids: torch.Tensor, prompt: torch.Tensor | None, *,
                 sampling: SamplingConfig | None, generator, max_frames: int, info: dict) -> Iterator[torch.Tensor]:
        """text_ids (1, L), prompt (K, P) codes or None -> yields frames (K,) as they complete."""
        cfg, sampling = self.cfg, sampling or SamplingConfig()
        K, C, PAD, EOS = cfg.n_codebooks, cfg.codebook_size, cfg.pad_id, cfg.eos_id
        P = 0 if prompt is None else prompt.shape[1]
        device = text_ids.device
        total = P + max_frames + cfg.delay_steps
        # The known pattern: leading PADs and the prompt's frames, built once (never re-applied).
        known = torch.full((K, total), -1, dtype=torch.long, device=device)
        for k in range(K):
            known[k, :k] = PAD
        if P:
            known[:, :P + K - 1] = torch.where(known[:, :P + K - 1] == PAD, known[:, :P + K - 1],
                                               build_delay_pattern(prompt.to(device), -1))
        pattern = known.clone()
        cache = backbone.new_cache(1, text_ids.shape[1] + 1 + total)
        h = backbone.prefill(text_ids, pattern[None, :, :P], cache)  # predicts step P
        info.update(prompt_frames=P, steps=0, frames=0, eos=False, max_length_hit=False)
        end, s, W = None, P, sampling.repetition_window
        delays = torch.arange(K, device=device)
        while True:
            logits = self.heads.all(h[0])  # (K, C+1)
            if s - P < sampling.min_frames:
                logits[0, C] = NEG_INF
            history = _history(pattern[:, max(0, s - W):s], cfg) if W else None
            tokens = _to_token(sample(logits, sampling, generator, history), cfg)
            frame_of = s - delays  # the frame each codebook's token belongs to
            if end is None and tokens[0] != EOS and s - P >= max_frames:
                tokens[0] = EOS
                info["max_length_hit"] = True
            elif end is None and tokens[0] == EOS:
                info["eos"] = True
            if end is None and tokens[0] == EOS:
                end = s
            finished = frame_of >= end if end is not None else torch.zeros(K, dtype=torch.bool, device=device)
            tokens = torch.where(finished, torch.full_like(tokens, PAD), tokens)
            if end is not None:
                tokens[0] = EOS if s == end else PAD
            tokens = torch.where(known[:, s] >= 0, known[:, s], tokens)
            pattern[:, s] = tokens
            info["steps"] += 1
            done_frame = s - (K - 1)
            if done_frame >= P and (end is None or done_frame < end):
                frame = pattern[delays, done_frame + delays]
                if bool((frame >= C).any()):
                    raise RuntimeError(f"delay pattern bug: frame {done_frame} holds a special token: {frame.tolist()}")
                info["frames"] += 1
                yield frame.clone()
            if end is not None and s >= end + K - 2:
                break
            h = backbone.step(pattern[None, :, s], s, cache)
            s += 1
        info["pattern"] = pattern[:, :s + 1]
        info["end_frame"] = end


# --- Hierarchical Parallel (dual AR) ------------------------------------------------------------
class HierarchicalDecoder(nn.Module):
    def __init__(self, cfg: QttsConfig):
        super().__init__()
        self.cfg = cfg
        e, K = cfg.depth_dim, cfg.n_codebooks
        self.proj = nn.Linear(cfg.d_model, e)
        self.pos = nn.Parameter(torch.zeros(K, e))
        self.emb = nn.ModuleList([nn.Embedding(cfg.codebook_size, e) for _ in range(K - 1)])
        self.layers = nn.ModuleList([Block(e, cfg.depth_heads, cfg.depth_ffn_dim, cfg.dropout)
                                     for _ in range(cfg.depth_layers)])
        self.norm = nn.LayerNorm(e)
        init_weights(self)
        nn.init.normal_(self.pos, std=0.02)
        self.heads = Heads(e, K, cfg.codebook_size)

    def targets(self, codes, frames):
        return frame_targets(codes, frames, self.cfg)

    def depth_inputs(self, h: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        """h (N, d), codes (N, K) (codes of codebooks 0..K-2 are read) -> depth inputs (N, K, e)."""
        x0 = self.proj(h)
        parts = [x0 + self.pos[0]]
        for k in range(1, self.cfg.n_codebooks):
            parts.append(x0 + self.emb[k - 1](codes[:, k - 1].clamp(0, self.cfg.codebook_size - 1)) + self.pos[k])
        return torch.stack(parts, dim=1)

    def depth_forward(self, h: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        """Teacher forcing, the whole depth sequence in one causal pass: (N, d), (N, K) -> logits (N, K, C+1)."""
        x = self.depth_inputs(h, codes)
        for layer in self.layers:
            x = layer(x, causal=True)
        return self.heads.each(self.norm(x))

    def loss(self, backbone: Backbone, batch: dict):
        tgt, valid = self.targets(batch["codes"], batch["frames"])  # (B, K, T+1)
        hidden = backbone(batch["text_ids"], batch["text_mask"], tgt[:, :, :-1])  # (B, T+1, d)
        rows = valid[:, 0]  # frames with a target (incl. the EOS frame)
        logits = self.depth_forward(hidden[rows], tgt.transpose(1, 2)[rows])
        return _per_codebook_ce(logits, tgt.transpose(1, 2)[rows], valid.transpose(1, 2)[rows], self.cfg)

    def new_depth_cache(self, device, dtype) -> KVCache:
        e = self.cfg.depth_dim
        return KVCache(len(self.layers), 1, self.cfg.depth_heads, self.cfg.n_codebooks, e // self.cfg.depth_heads,
                       device, dtype)

    def depth_step(self, x: torch.Tensor, k: int, cache: KVCache) -> torch.Tensor:
        """One depth position: input (1, e) for codebook k -> logits (1, C+1). Cache holds positions < k."""
        y = x[:, None]
        for layer, layer_cache in zip(self.layers, cache.layers):
            y = layer(y, None, layer_cache)
        return self.heads.one(self.norm(y[:, 0]), k)

    @torch.inference_mode()
    def generate(self, backbone: Backbone, text_ids: torch.Tensor, prompt: torch.Tensor | None, *,
                 sampling: SamplingConfig | None, generator, max_frames: int, info: dict) -> Iterator[torch.Tensor]:
        cfg, sampling = self.cfg, sampling or SamplingConfig()
        K, C, EOS = cfg.n_codebooks, cfg.codebook_size, cfg.eos_id
        P = 0 if prompt is None else prompt.shape[1]
        device = text_ids.device
        history = torch.full((K, P + max_frames), -1, dtype=torch.long, device=device)
        if P:
            history[:, :P] = prompt.to(device)
        cache = backbone.new_cache(1, text_ids.shape[1] + 1 + P + max_frames)
        h = backbone.prefill(text_ids, prompt.to(device)[None] if P else None, cache)  # predicts frame P
        depth_cache = self.new_depth_cache(device, h.dtype)
        info.update(prompt_frames=P, steps=0, frames=0, eos=False, max_length_hit=False, depth_steps=0)
        W = sampling.repetition_window
        for i in range(max_frames + 1):
            t = P + i
            if i == max_frames:  # limit reached: no further depth pass
                info["max_length_hit"] = True
                break
            depth_cache.reset()
            x0 = self.proj(h)
            frame = torch.empty(K, dtype=torch.long, device=device)
            ended = False
            for k in range(K):
                x = x0 + self.pos[k] if k == 0 else x0 + self.emb[k - 1](frame[k - 1:k]) + self.pos[k]
                logits = self.depth_step(x, k, depth_cache)
                info["depth_steps"] += 1
                if k == 0 and i < sampling.min_frames:
                    logits[0, C] = NEG_INF
                past = _history(history[k:k + 1, max(0, t - W):t], cfg) if W else None
                token = _to_token(sample(logits, sampling, generator, past), cfg)[0]
                if token == EOS:
                    ended = True
                    break
                frame[k] = token
            if ended:
                info["eos"] = True
                break
            history[:, t] = frame
            info["frames"] += 1
            yield frame.clone()
            h = backbone.step(frame[None], t, cache)
            info["steps"] += 1


def make_decoder(cfg: QttsConfig) -> nn.Module:
    return HierarchicalDecoder(cfg) if cfg.decoder == "hierarchical" else MultiheadDecoder(cfg)

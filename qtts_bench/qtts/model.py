"""QTTS backbone: a decoder-only transformer over [text tokens ; BOS ; audio steps], with a KV cache.

* Text token i: ``text_emb[id] + text_pos[i]``; BOS: ``bos + audio_pos[0]``; audio step s:
  ``sum_k audio_emb[k][code_k] + audio_pos[s + 1]``: separate learned position tables for text
  and audio, so the audio clock starts at 0 whatever the text length. A step is a frame for the
  hierarchical decoder and a column of the delay pattern for the multihead / single decoders.
* Training (``forward``): a batch of right-padded texts (padding masked as keys) followed by the
  audio steps; causal attention; returns the hidden states at [BOS, step 0 .. step S-2], which
  predict steps 0 .. S-1.
* Generation: ``prefill`` runs text + BOS (+ known prompt steps) once and fills a preallocated
  :class:`KVCache`; ``step`` appends one audio step and returns its hidden state.

Pre-LayerNorm blocks, GELU MLP, dropout on the residual branches.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .config import QttsConfig


class LayerCache:
    """Preallocated keys/values of one attention layer: (batch, heads, capacity, head_dim)."""

    def __init__(self, batch: int, heads: int, capacity: int, head_dim: int, device, dtype):
        self.k = torch.zeros(batch, heads, capacity, head_dim, device=device, dtype=dtype)
        self.v = torch.zeros_like(self.k)
        self.length = 0

    def append(self, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n = k.shape[2]
        end = self.length + n
        if end > self.k.shape[2]:
            raise RuntimeError(f"KV cache full: {end} positions > capacity {self.k.shape[2]}")
        self.k[:, :, self.length:end] = k
        self.v[:, :, self.length:end] = v
        self.length = end
        return self.k[:, :, :end], self.v[:, :, :end]


class KVCache:
    """One :class:`LayerCache` per layer. ``reset`` rewinds to empty without reallocating."""

    def __init__(self, n_layers: int, batch: int, heads: int, capacity: int, head_dim: int, device, dtype):
        self.layers = [LayerCache(batch, heads, capacity, head_dim, device, dtype) for _ in range(n_layers)]

    def reset(self) -> None:
        for layer in self.layers:
            layer.length = 0

    @property
    def length(self) -> int:
        return self.layers[0].length


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, x, mask=None, cache: LayerCache | None = None, causal: bool = False):
        b, n, d = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        if cache is not None:
            past = cache.length
            k, v = cache.append(k, v)
            if n > 1 and mask is None:  # several new positions: causal among them, all of the past visible
                mask = torch.ones(n, past + n, dtype=torch.bool, device=x.device).tril(past)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal and mask is None and cache is None)
        return self.out(y.transpose(1, 2).reshape(b, n, d))


class Block(nn.Module):
    def __init__(self, dim: int, heads: int, ffn: int, dropout: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, ffn)
        self.fc2 = nn.Linear(ffn, dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x, mask=None, cache: LayerCache | None = None, causal: bool = False):
        x = x + self.drop(self.attn(self.norm1(x), mask, cache, causal))
        return x + self.drop(self.fc2(F.gelu(self.fc1(self.norm2(x)))))


def init_weights(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, std=0.02)


class Backbone(nn.Module):
    def __init__(self, cfg: QttsConfig):
        super().__init__()
        self.cfg = cfg
        d, K = cfg.d_model, cfg.n_codebooks
        self.text_emb = nn.Embedding(cfg.text_vocab_size, d)
        self.text_pos = nn.Embedding(cfg.max_text_tokens, d)
        self.audio_pos = nn.Embedding(cfg.max_audio_positions, d)
        self.bos = nn.Parameter(torch.zeros(d))
        self.audio_emb = nn.ModuleList([nn.Embedding(cfg.codebook_size + 2, d) for _ in range(K)])
        self.layers = nn.ModuleList([Block(d, cfg.n_heads, cfg.ffn_dim, cfg.dropout) for _ in range(cfg.n_layers)])
        self.norm = nn.LayerNorm(d)
        init_weights(self)
        nn.init.normal_(self.bos, std=0.02)

    # --- embeddings ---------------------------------------------------------------------------
    def embed_text(self, text_ids: torch.Tensor) -> torch.Tensor:
        """(B, L) -> (B, L, d)."""
        pos = torch.arange(text_ids.shape[1], device=text_ids.device)
        return self.text_emb(text_ids) + self.text_pos(pos)[None]

    def embed_audio(self, steps: torch.Tensor, start: int) -> torch.Tensor:
        """(B, K, S) step tokens at audio steps start..start+S-1 -> (B, S, d) (position = step + 1)."""
        pos = torch.arange(start + 1, start + 1 + steps.shape[2], device=steps.device)
        x = self.audio_pos(pos)[None]
        for k, emb in enumerate(self.audio_emb):
            x = x + emb(steps[:, k])
        return x

    def embed_bos(self, batch: int) -> torch.Tensor:
        return (self.bos + self.audio_pos.weight[0]).expand(batch, 1, -1)

    # --- training -----------------------------------------------------------------------------
    def forward(self, text_ids: torch.Tensor, text_mask: torch.Tensor, steps: torch.Tensor) -> torch.Tensor:
        """Teacher forcing. text_ids (B, L) right-padded, text_mask (B, L) bool (True = real token),
        steps (B, K, S') input steps -> hidden (B, S' + 1, d) at [BOS, step 0 .. S'-1]."""
        B, L = text_ids.shape
        x = torch.cat([self.embed_text(text_ids), self.embed_bos(B), self.embed_audio(steps, 0)], dim=1)
        n = x.shape[1]
        keys = torch.cat([text_mask, torch.ones(B, n - L, dtype=torch.bool, device=x.device)], dim=1)
        mask = torch.ones(n, n, dtype=torch.bool, device=x.device).tril()[None, None] & keys[:, None, None, :]
        for layer in self.layers:
            x = layer(x, mask)
        return self.norm(x)[:, L:]

    # --- generation ---------------------------------------------------------------------------
    def new_cache(self, batch: int, capacity: int) -> KVCache:
        p = self.text_emb.weight
        return KVCache(len(self.layers), batch, self.cfg.n_heads, capacity, self.cfg.d_model // self.cfg.n_heads,
                       p.device, p.dtype)

    def prefill(self, text_ids: torch.Tensor, steps: torch.Tensor | None, cache: KVCache) -> torch.Tensor:
        """text (B, L) (no padding) + BOS + known steps (B, K, P) or None -> hidden of the last position (B, d)."""
        parts = [self.embed_text(text_ids), self.embed_bos(text_ids.shape[0])]
        if steps is not None and steps.shape[2]:
            parts.append(self.embed_audio(steps, 0))
        x = torch.cat(parts, dim=1)
        for layer, layer_cache in zip(self.layers, cache.layers):
            x = layer(x, None, layer_cache)
        return self.norm(x[:, -1])

    def step(self, tokens: torch.Tensor, index: int, cache: KVCache) -> torch.Tensor:
        """Append audio step ``index`` with tokens (B, K) -> its hidden state (B, d) (predicts step index+1)."""
        x = self.embed_audio(tokens[:, :, None], index)
        for layer, layer_cache in zip(self.layers, cache.layers):
            x = layer(x, None, layer_cache)
        return self.norm(x[:, -1])


class QttsModel(nn.Module):
    """Backbone + one of the decoders of :mod:`.decoders` (chosen by ``cfg.decoder``)."""

    def __init__(self, cfg: QttsConfig):
        super().__init__()
        from .decoders import make_decoder

        self.cfg = cfg
        self.backbone = Backbone(cfg)
        self.decoder = make_decoder(cfg)

    def loss(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """Teacher-forced cross-entropy -> (per-codebook summed CE (K,), per-codebook target counts (K,))."""
        return self.decoder.loss(self.backbone, batch)

    def generate(self, text_ids, prompt_codes=None, *, sampling=None, generator=None, max_frames: int = 500,
                 info: dict | None = None):
        """Yield generated frames as int64 tensors (K,) (prompt frames excluded); see decoders."""
        return self.decoder.generate(self.backbone, text_ids, prompt_codes, sampling=sampling, generator=generator,
                                     max_frames=max_frames, info=info if info is not None else {})

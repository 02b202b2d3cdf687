"""AR-ASR supervision of codebook 1: a small transformer decoder predicting the transcript.

Tokens are UTF-8 bytes (language-independent, no tokenizer download) plus BOS/EOS/PAD. The
decoder cross-attends only to codebook 1's quantised latent, so its cross-entropy reaches the
encoder only through codebook 1 (straight-through estimator).
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

PAD, BOS, EOS = 256, 257, 258
VOCAB_SIZE = 259


def encode_text(text: str, max_tokens: int) -> list[int] | None:
    """Text -> [BOS, bytes..., EOS]; None when longer than ``max_tokens``."""
    ids = [BOS, *text.strip().encode("utf-8"), EOS]
    return ids if len(ids) <= max_tokens else None


def decode_tokens(ids) -> str:
    data = bytearray()
    for i in ids:
        if int(i) == EOS:
            break
        if int(i) < 256:
            data.append(int(i))
    return bytes(data).decode("utf-8", errors="replace")


def pad_tokens(batch: list[list[int]]) -> torch.Tensor:
    """List of token lists -> (batch, max_len) int64 padded with PAD."""
    width = max(len(ids) for ids in batch)
    out = torch.full((len(batch), width), PAD, dtype=torch.long)
    for row, ids in enumerate(batch):
        out[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
    return out


def _positions(length: int, dim: int, device) -> torch.Tensor:
    pos = torch.arange(length, device=device, dtype=torch.float32)[:, None]
    div = torch.exp(torch.arange(0, dim, 2, device=device, dtype=torch.float32) * (-math.log(10000.0) / dim))
    table = torch.zeros(length, dim, device=device)
    table[:, 0::2] = torch.sin(pos * div)
    table[:, 1::2] = torch.cos(pos * div)
    return table


class AsrHead(nn.Module):
    """Autoregressive transformer decoder over byte tokens, conditioned on codebook-1 latents."""

    def __init__(self, latent_dim: int, dim: int = 192, layers: int = 2, heads: int = 4):
        super().__init__()
        self.dim = dim
        self.memory_proj = nn.Linear(latent_dim, dim)
        self.memory_conv = nn.Conv1d(dim, dim, 3, padding=1)
        self.embed = nn.Embedding(VOCAB_SIZE, dim)
        layer = nn.TransformerDecoderLayer(dim, heads, dim_feedforward=4 * dim, dropout=0.1,
                                           batch_first=True, norm_first=True)
        self.decoder = nn.TransformerDecoder(layer, layers)
        self.norm = nn.LayerNorm(dim)
        self.out = nn.Linear(dim, VOCAB_SIZE)

    def _memory(self, first: torch.Tensor) -> torch.Tensor:
        m = self.memory_proj(first.transpose(1, 2))  # (batch, frames, dim)
        m = m + self.memory_conv(m.transpose(1, 2)).transpose(1, 2)
        return m + _positions(m.shape[1], self.dim, m.device)

    def logits(self, first: torch.Tensor, tokens: torch.Tensor, memory_mask: torch.Tensor | None = None):
        """first: (batch, latent_dim, frames); tokens (batch, L) -> logits (batch, L, vocab).

        ``memory_mask`` (batch, frames) is True where a frame is padding.
        """
        memory = self._memory(first)
        x = self.embed(tokens) + _positions(tokens.shape[1], self.dim, tokens.device)
        causal = torch.triu(torch.ones(tokens.shape[1], tokens.shape[1], dtype=torch.bool, device=x.device), 1)
        y = self.decoder(x, memory, tgt_mask=causal, tgt_key_padding_mask=tokens.eq(PAD),
                         memory_key_padding_mask=memory_mask, tgt_is_causal=True)
        return self.out(self.norm(y))

    def loss(self, first: torch.Tensor, tokens: torch.Tensor, memory_mask: torch.Tensor | None = None):
        """Teacher-forced cross-entropy (mean over non-PAD target tokens) and its token accuracy."""
        logits = self.logits(first, tokens[:, :-1], memory_mask)
        target = tokens[:, 1:]
        ce = F.cross_entropy(logits.reshape(-1, VOCAB_SIZE), target.reshape(-1), ignore_index=PAD)
        keep = target.ne(PAD)
        acc = (logits.argmax(-1).eq(target) & keep).sum().float() / keep.sum().clamp(min=1)
        return ce, acc

    @torch.no_grad()
    def transcribe(self, first: torch.Tensor, max_tokens: int = 200) -> list[str]:
        """Greedy decoding from codebook-1 latents (batch, latent_dim, frames)."""
        batch = first.shape[0]
        tokens = torch.full((batch, 1), BOS, dtype=torch.long, device=first.device)
        done = torch.zeros(batch, dtype=torch.bool, device=first.device)
        for _ in range(max_tokens):
            nxt = self.logits(first, tokens)[:, -1].argmax(-1)
            nxt = torch.where(done, torch.full_like(nxt, PAD), nxt)
            tokens = torch.cat([tokens, nxt[:, None]], dim=1)
            done |= nxt.eq(EOS)
            if bool(done.all()):
                break
        return [decode_tokens(row[1:]) for row in tokens.tolist()]

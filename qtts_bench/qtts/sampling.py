"""Sampling of codec tokens: temperature, top-k, top-p, repetition penalty over a window, seeds.

``SamplingConfig`` imports no torch (systems validate their parameters without it).

``sample(logits, cfg, generator, history)`` draws one token per row of ``logits`` (rows are
codebooks) with a ``torch.Generator`` (per-item seed: the same seed gives the same tokens).
``temperature == 0`` is greedy (argmax, no randomness).

Repetition penalty (CTRL style): a token seen in the last ``repetition_window`` frames of the
same codebook has its logit divided by ``repetition_penalty`` when positive, multiplied when
negative. Window 0 or penalty 1 switches it off.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import ConfigError

if TYPE_CHECKING:  # torch is imported by the functions that use it: SamplingConfig stays light
    import torch


@dataclass(frozen=True)
class SamplingConfig:
    temperature: float = 0.8
    top_k: int = 50  # 0: off
    top_p: float = 1.0  # 1: off
    repetition_penalty: float = 1.0
    repetition_window: int = 0  # frames of history per codebook
    min_frames: int = 1  # end-of-speech is masked before this many generated frames

    def __post_init__(self):
        problems = []
        if not self.temperature >= 0:
            problems.append(f"temperature must be >= 0 (got {self.temperature})")
        if isinstance(self.top_k, bool) or not isinstance(self.top_k, int) or self.top_k < 0:
            problems.append(f"top_k must be an integer >= 0 (got {self.top_k!r})")
        if not 0 < self.top_p <= 1:
            problems.append(f"top_p must be in (0, 1] (got {self.top_p})")
        if not self.repetition_penalty >= 1:
            problems.append(f"repetition_penalty must be >= 1 (got {self.repetition_penalty})")
        if self.repetition_window < 0 or self.min_frames < 0:
            problems.append("repetition_window and min_frames must be >= 0")
        if problems:
            raise ConfigError("sampling: " + "; ".join(problems))


def apply_repetition_penalty(logits: torch.Tensor, history: torch.Tensor | None, penalty: float) -> torch.Tensor:
    """logits (R, V); history (R, W) token ids, entries < 0 or >= V ignored."""
    import torch

    if history is None or penalty == 1.0 or history.numel() == 0:
        return logits
    V = logits.shape[-1]
    valid = (history >= 0) & (history < V)
    seen = torch.zeros_like(logits, dtype=torch.bool)
    seen.scatter_(1, history.clamp(0, V - 1), valid)
    penalised = torch.where(logits > 0, logits / penalty, logits * penalty)
    return torch.where(seen, penalised, logits)


def sample(logits: torch.Tensor, cfg: SamplingConfig, generator: torch.Generator | None = None,
           history: torch.Tensor | None = None) -> torch.Tensor:
    """logits (R, V) float -> int64 (R,). Rows with all logits -inf are not allowed."""
    import torch

    logits = apply_repetition_penalty(logits.float(), history, cfg.repetition_penalty)
    if cfg.temperature == 0:
        return logits.argmax(dim=-1)
    logits = logits / cfg.temperature
    if cfg.top_k and cfg.top_k < logits.shape[-1]:
        values, indices = torch.topk(logits, cfg.top_k, dim=-1)
    else:
        values, indices = torch.sort(logits, dim=-1, descending=True)
    probs = torch.softmax(values, dim=-1)
    if cfg.top_p < 1.0:
        before = probs.cumsum(dim=-1) - probs  # mass of the strictly better tokens
        probs = probs.masked_fill(before >= cfg.top_p, 0.0)  # the best token always survives
    choice = torch.multinomial(probs, 1, generator=generator)
    return indices.gather(-1, choice)[:, 0]

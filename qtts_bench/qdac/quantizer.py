"""Residual vector quantiser with factorised, l2-normalised codes (DAC-style) and quantiser dropout.

Shapes: latents ``z`` are (batch, dim, frames); codes are int64 (batch, n_codebooks, frames).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


class VectorQuantizer(nn.Module):
    """One codebook: project dim -> codebook_dim, nearest l2-normalised code, project back.

    Trained by the codebook loss (codes move to the encoder outputs) and the commitment loss;
    gradients reach the encoder through the straight-through estimator.
    """

    def __init__(self, dim: int, codebook_size: int, codebook_dim: int):
        super().__init__()
        self.codebook_size = codebook_size
        self.in_proj = nn.Conv1d(dim, codebook_dim, 1)
        self.out_proj = nn.Conv1d(codebook_dim, dim, 1)
        self.codebook = nn.Embedding(codebook_size, codebook_dim)
        # Code usage since the last dead-code restart and a pool of recent projected encoder
        # outputs to restart dead codes from (training only; not in the shipped weights).
        self.register_buffer("usage", torch.zeros(codebook_size), persistent=False)
        self.register_buffer("recent", torch.zeros(0, codebook_dim), persistent=False)
        self.pool_size = 4 * codebook_size

    def lookup(self, codes: torch.Tensor) -> torch.Tensor:
        """(batch, frames) int -> (batch, dim, frames)."""
        return self.out_proj(self.codebook(codes).transpose(1, 2))

    def encode_latent(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(batch, dim, frames) -> codes (batch, frames), projected latent (batch, codebook_dim, frames)."""
        ze = self.in_proj(z)
        flat = F.normalize(ze.transpose(1, 2).reshape(-1, ze.shape[1]), dim=-1)
        book = F.normalize(self.codebook.weight, dim=-1)
        codes = (flat @ book.t()).argmax(dim=-1)  # max cosine == min l2 between unit vectors
        return codes.view(z.shape[0], -1), ze

    def forward(self, z: torch.Tensor):
        """Returns (quantised (batch, dim, frames) with straight-through grad, codes, commit, codebook loss).

        Losses are per item (batch,), averaged over dims and frames.
        """
        codes, ze = self.encode_latent(z)
        zq = self.codebook(codes).transpose(1, 2)
        commitment = F.mse_loss(ze, zq.detach(), reduction="none").mean(dim=(1, 2))
        codebook = F.mse_loss(zq, ze.detach(), reduction="none").mean(dim=(1, 2))
        zq = ze + (zq - ze).detach()
        if self.training:
            self.usage += torch.bincount(codes.reshape(-1), minlength=self.codebook_size).to(self.usage.dtype)
            latest = ze.detach().transpose(1, 2).reshape(-1, ze.shape[1])
            self.recent = torch.cat([self.recent, latest])[-self.pool_size:]
        return self.out_proj(zq), codes, commitment, codebook

    @torch.no_grad()
    def restart_dead_codes(self, threshold: float, generator: torch.Generator | None = None,
                           max_codes: int | None = None) -> int:
        """Re-initialise codes used fewer than ``threshold`` times from recent encoder outputs
        (distinct ones while the pool has enough). At most ``max_codes`` per call (a random
        subset of the dead codes): moving many codes at once re-assigns many frames and jolts
        the decoder. Returns how many codes were re-initialised."""
        dead = (self.usage < threshold).nonzero().reshape(-1)
        if max_codes is not None and dead.numel() > max_codes:
            dead = dead[torch.randperm(dead.numel(), generator=generator)[:max_codes].to(dead.device)]
        inputs = self.recent
        if dead.numel() and inputs.shape[0]:
            if inputs.shape[0] >= dead.numel():
                pick = torch.randperm(inputs.shape[0], generator=generator)[: dead.numel()]
            else:
                pick = torch.randint(0, inputs.shape[0], (dead.numel(),), generator=generator)
            noise = torch.randn(dead.numel(), inputs.shape[1], generator=generator) * 1e-3
            self.codebook.weight[dead] = inputs[pick].cpu().to(self.codebook.weight.device) + noise.to(
                self.codebook.weight.device)
        self.usage.zero_()
        return int(dead.numel())


class ResidualVectorQuantizer(nn.Module):
    """``n_codebooks`` quantisers applied to successive residuals.

    Quantiser dropout: in training, ``n_active`` (batch,) gives per item how many codebooks
    contribute; later codebooks still see their residual (so they keep training) but their
    output is masked, so the decoder learns to decode every prefix.
    """

    def __init__(self, dim: int, n_codebooks: int, codebook_size: int, codebook_dim: int):
        super().__init__()
        self.n_codebooks = n_codebooks
        self.codebook_size = codebook_size
        self.quantizers = nn.ModuleList(
            VectorQuantizer(dim, codebook_size, codebook_dim) for _ in range(n_codebooks)
        )

    def forward(self, z: torch.Tensor, n_active: torch.Tensor | None = None):
        """z (batch, dim, frames) -> dict(z_q, codes (batch, n, frames), first (batch, dim, frames),
        commitment, codebook (batch,) summed over active codebooks)."""
        residual = z
        z_q = torch.zeros_like(z)
        codes, commit, book = [], 0.0, 0.0
        first = None
        for i, quantizer in enumerate(self.quantizers):
            q, c, lc, lb = quantizer(residual)
            mask = torch.ones(z.shape[0], device=z.device) if n_active is None else (i < n_active).to(z.dtype)
            z_q = z_q + q * mask[:, None, None]
            residual = residual - q.detach()
            commit = commit + lc * mask
            book = book + lb * mask
            codes.append(c)
            if i == 0:
                first = q
        return {"z_q": z_q, "codes": torch.stack(codes, dim=1), "first": first,
                "commitment": commit, "codebook": book}

    @torch.no_grad()
    def encode(self, z: torch.Tensor, n_codebooks: int | None = None) -> torch.Tensor:
        """(batch, dim, frames) -> int64 codes (batch, n, frames)."""
        n = self.n_codebooks if n_codebooks is None else n_codebooks
        residual, codes = z, []
        for quantizer in self.quantizers[:n]:
            c, _ = quantizer.encode_latent(residual)
            residual = residual - quantizer.lookup(c)
            codes.append(c)
        return torch.stack(codes, dim=1)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """int codes (batch, k, frames), k <= n_codebooks -> latent (batch, dim, frames)."""
        out = 0.0
        for i in range(codes.shape[1]):
            out = out + self.quantizers[i].lookup(codes[:, i])
        return out

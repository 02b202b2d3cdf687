"""Training losses for QDAC. Audio tensors are (batch, samples) at 16 kHz; losses return scalars.

* multi-scale log-mel L1 (DAC's reconstruction loss, window 256..2048),
* multi-resolution STFT loss: log-magnitude L1 + spectral convergence,
* complex (real/imag of power-compressed STFT) L1: a phase-aware term,
* negative SI-SDR (zero-mean, dB) per item,
* least-squares adversarial and L1 feature-matching losses (HiFi-GAN).
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


def hz_to_mel(hz):
    return 2595.0 * math.log10(1.0 + hz / 700.0)


@functools.lru_cache(maxsize=16)
def mel_filterbank(n_fft: int, n_mels: int, sample_rate: int = 16000, fmin: float = 0.0,
                   fmax: float | None = None) -> torch.Tensor:
    """Triangular HTK-mel filters, (n_mels, n_fft//2+1), each row normalised to unit area (Slaney)."""
    fmax = fmax or sample_rate / 2
    mels = torch.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2, dtype=torch.float64)
    hz = 700.0 * (10 ** (mels / 2595.0) - 1.0)
    freqs = torch.linspace(0, sample_rate / 2, n_fft // 2 + 1, dtype=torch.float64)
    lower, centre, upper = hz[:-2, None], hz[1:-1, None], hz[2:, None]
    up = (freqs[None] - lower) / (centre - lower)
    down = (upper - freqs[None]) / (upper - centre)
    fb = torch.clamp(torch.minimum(up, down), min=0.0)
    fb = fb * (2.0 / (upper - lower))  # Slaney area normalisation
    return fb.float()


def _stft_mag(x: torch.Tensor, n_fft: int, hop: int) -> torch.Tensor:
    window = torch.hann_window(n_fft, device=x.device, dtype=x.dtype)
    return torch.stft(x, n_fft, hop, window=window, center=True, return_complex=True).abs()


class MultiScaleMelLoss(nn.Module):
    """Sum over scales of L1 between log10 mel magnitudes (clamped at 1e-5)."""

    def __init__(self, windows=(256, 512, 1024, 2048), n_mels=(32, 64, 128, 128), sample_rate=16000):
        super().__init__()
        self.windows, self.n_mels, self.sample_rate = tuple(windows), tuple(n_mels), sample_rate

    def forward(self, estimate, reference):
        total = 0.0
        for win, mels in zip(self.windows, self.n_mels):
            fb = mel_filterbank(win, mels, self.sample_rate).to(estimate.device)
            e = torch.matmul(fb, _stft_mag(estimate, win, win // 4))
            r = torch.matmul(fb, _stft_mag(reference, win, win // 4))
            total = total + F.l1_loss(torch.log10(e.clamp(min=1e-5)), torch.log10(r.clamp(min=1e-5)))
        return total


class MultiResolutionStftLoss(nn.Module):
    """Spectral convergence + log-magnitude L1, averaged over resolutions."""

    def __init__(self, windows=(256, 512, 1024)):
        super().__init__()
        self.windows = tuple(windows)

    def forward(self, estimate, reference):
        total = 0.0
        for win in self.windows:
            e, r = _stft_mag(estimate, win, win // 4), _stft_mag(reference, win, win // 4)
            sc = torch.linalg.vector_norm(r - e) / torch.linalg.vector_norm(r).clamp(min=1e-7)
            total = total + sc + F.l1_loss(torch.log(e.clamp(min=1e-5)), torch.log(r.clamp(min=1e-5)))
        return total / len(self.windows)


def complex_stft_loss(estimate, reference, n_fft: int = 640, hop: int = 160, power: float = 0.3):
    """L1 between real/imag parts of power-compressed STFTs (sensitive to phase)."""
    window = torch.hann_window(n_fft, device=estimate.device, dtype=estimate.dtype)

    def compress(x):
        s = torch.stft(x, n_fft, hop, window=window, center=True, return_complex=True)
        return s * s.abs().clamp(min=1e-7).pow(power - 1.0)

    e, r = compress(estimate), compress(reference)
    return F.l1_loss(torch.view_as_real(e), torch.view_as_real(r))


def si_sdr(estimate, reference, eps: float = 1e-8):
    """Zero-mean scale-invariant SDR in dB per item, (batch,). Le Roux et al. 2019."""
    estimate = estimate - estimate.mean(dim=-1, keepdim=True)
    reference = reference - reference.mean(dim=-1, keepdim=True)
    scale = (estimate * reference).sum(-1, keepdim=True) / (reference.pow(2).sum(-1, keepdim=True) + eps)
    target = scale * reference
    noise = estimate - target
    return 10 * torch.log10((target.pow(2).sum(-1) + eps) / (noise.pow(2).sum(-1) + eps))


def discriminator_loss(real_outputs, fake_outputs):
    """LSGAN: mean over discriminators of (D(real)-1)^2 + D(fake)^2."""
    total = 0.0
    for real, fake in zip(real_outputs, fake_outputs):
        total = total + torch.mean((real - 1) ** 2) + torch.mean(fake ** 2)
    return total / len(real_outputs)


def generator_adv_loss(fake_outputs):
    return sum(torch.mean((fake - 1) ** 2) for fake in fake_outputs) / len(fake_outputs)


def feature_matching_loss(real_features, fake_features):
    """L1 between discriminator feature maps of real (detached) and generated audio."""
    total, count = 0.0, 0
    for real_maps, fake_maps in zip(real_features, fake_features):
        for real, fake in zip(real_maps, fake_maps):
            total = total + F.l1_loss(fake, real.detach())
            count += 1
    return total / max(count, 1)

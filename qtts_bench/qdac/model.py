"""QDAC codec: encoder -> residual VQ -> decoder, 16 kHz mono, 50 or 25 Hz latent frames.

Two encoder and two decoder families (``QdacConfig.encoder`` / ``.decoder``):

* ``stft`` encoder: power-compressed complex STFT (hop ``stft_hop``) -> ConvNeXt blocks ->
  strided conv to the frame rate. Cheap enough to train on a CPU.
* ``waveform`` encoder: DAC-style strided convolutions with Snake activations and dilated
  residual units (strides ``encoder_strides``).
* ``istft`` decoder: transposed conv to the STFT grid -> ConvNeXt blocks -> log-magnitude and
  phase (``decoder_output: polar``, Vocos-style head) or the real and imaginary parts of the
  compressed spectrum (``complex``) -> inverse STFT. Avoids learning waveform phase with
  upsampling convs; the complex head makes the phase-aware complex-STFT loss a direct target.
* ``waveform`` decoder: DAC-style transposed convolutions with Snake activations.

Shapes: audio (batch, samples) float in [-1, 1] at 16 kHz; latents (batch, dim, frames);
codes int64 (batch, n_codebooks, frames). ``frames = ceil(samples / hop)``; decoded audio has
``frames * hop`` samples (the caller trims to the input length).
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from .config import QdacConfig
from .quantizer import ResidualVectorQuantizer

COMPRESSION = 0.3  # power-law magnitude compression of the STFT the encoder reads (and the complex head writes)


class Snake(nn.Module):
    """x + sin^2(alpha x) / alpha, one learnable alpha per channel (BigVGAN / DAC)."""

    def __init__(self, channels: int):
        super().__init__()
        self.alpha = nn.Parameter(torch.ones(1, channels, 1))

    def forward(self, x):
        return x + (self.alpha + 1e-9).reciprocal() * torch.sin(self.alpha * x).pow(2)


class PaddedConv1d(nn.Conv1d):
    """Conv1d whose output has ``ceil(length / stride)`` frames; causal pads only on the left."""

    def __init__(self, *args, causal: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.causal = causal

    def forward(self, x):
        total = self.dilation[0] * (self.kernel_size[0] - 1) + 1 - self.stride[0]
        left = total if self.causal else total // 2
        return super().forward(F.pad(x, (left, total - left)))


class ConvNeXtBlock(nn.Module):
    """Depthwise conv -> LayerNorm -> pointwise MLP (GELU) -> layer scale, residual (Vocos)."""

    def __init__(self, dim: int, kernel: int = 7, mult: int = 3, causal: bool = False):
        super().__init__()
        self.dwconv = PaddedConv1d(dim, dim, kernel, groups=dim, causal=causal)
        self.norm = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, mult * dim)
        self.fc2 = nn.Linear(mult * dim, dim)
        self.scale = nn.Parameter(torch.full((dim,), 1.0 / 8))

    def forward(self, x):
        y = self.dwconv(x).transpose(1, 2)
        y = self.fc2(F.gelu(self.fc1(self.norm(y)))) * self.scale
        return x + y.transpose(1, 2)


class ResidualUnit(nn.Module):
    def __init__(self, channels: int, dilation: int, causal: bool):
        super().__init__()
        self.block = nn.Sequential(
            Snake(channels), PaddedConv1d(channels, channels, 7, dilation=dilation, causal=causal),
            Snake(channels), nn.Conv1d(channels, channels, 1),
        )

    def forward(self, x):
        return x + self.block(x)


def stft_frames(audio: torch.Tensor, n_fft: int, hop: int, causal: bool) -> torch.Tensor:
    """(batch, samples) with samples % hop == 0 -> complex (batch, n_fft//2+1, samples//hop).

    Frame k covers the hop interval [k*hop, (k+1)*hop) centred (non-causal) or ending there (causal).
    """
    total = n_fft - hop
    left = total if causal else total // 2
    x = F.pad(audio, (left, total - left))
    window = torch.hann_window(n_fft, device=audio.device, dtype=audio.dtype)
    return torch.stft(x, n_fft, hop, window=window, center=False, return_complex=True)


def istft_frames(spec: torch.Tensor, n_fft: int, hop: int, causal: bool) -> torch.Tensor:
    """Inverse of :func:`stft_frames`: complex (batch, n_fft//2+1, frames) -> (batch, frames*hop).

    Weighted overlap-add divided by the window envelope; the envelope is floored at a tenth of
    its interior value so the incompletely covered edges are amplified at most tenfold.
    """
    frames = spec.shape[-1]
    window = torch.hann_window(n_fft, device=spec.device, dtype=torch.float32)
    pieces = torch.fft.irfft(spec, n=n_fft, dim=1) * window[None, :, None]
    length = (frames - 1) * hop + n_fft
    out = F.fold(pieces, (1, length), (1, n_fft), stride=(1, hop)).reshape(spec.shape[0], length)
    envelope = F.fold(window.pow(2)[None, :, None].expand(1, n_fft, frames), (1, length), (1, n_fft),
                      stride=(1, hop)).reshape(length)
    interior = window.pow(2).sum() / hop
    out = out / envelope.clamp(min=0.1 * float(interior))
    total = n_fft - hop
    left = total if causal else total // 2
    return out[:, left: left + frames * hop]


class StftEncoder(nn.Module):
    def __init__(self, cfg: QdacConfig):
        super().__init__()
        self.cfg = cfg
        bins = cfg.n_fft // 2 + 1
        factor = cfg.hop // cfg.stft_hop
        self.proj = PaddedConv1d(2 * bins, cfg.encoder_dim, 3, causal=cfg.causal)
        self.blocks = nn.Sequential(*[ConvNeXtBlock(cfg.encoder_dim, causal=cfg.causal)
                                      for _ in range(cfg.encoder_layers)])
        self.norm = nn.LayerNorm(cfg.encoder_dim)
        # kernel == stride: latent frame f sees exactly the STFT frames of its own hop interval
        self.down = nn.Conv1d(cfg.encoder_dim, cfg.latent_dim, factor, stride=factor)

    def forward(self, audio):
        spec = stft_frames(audio, self.cfg.n_fft, self.cfg.stft_hop, self.cfg.causal)
        mag = spec.abs().clamp(min=1e-7)
        compressed = spec * mag.pow(COMPRESSION - 1.0)  # |X|^0.3 with the phase kept
        x = self.blocks(self.proj(torch.cat([compressed.real, compressed.imag], dim=1)))
        return self.down(self.norm(x.transpose(1, 2)).transpose(1, 2))


class WaveformEncoder(nn.Module):
    def __init__(self, cfg: QdacConfig):
        super().__init__()
        c = cfg.encoder_channels
        layers = [PaddedConv1d(1, c, 7, causal=cfg.causal)]
        for stride in cfg.encoder_strides:
            layers += [ResidualUnit(c, d, cfg.causal) for d in (1, 3, 9)]
            layers += [Snake(c), PaddedConv1d(c, 2 * c, 2 * stride, stride=stride, causal=cfg.causal)]
            c *= 2
        layers += [Snake(c), PaddedConv1d(c, cfg.latent_dim, 3, causal=cfg.causal)]
        self.net = nn.Sequential(*layers)

    def forward(self, audio):
        return self.net(audio[:, None])


class IstftDecoder(nn.Module):
    def __init__(self, cfg: QdacConfig):
        super().__init__()
        self.cfg = cfg
        factor = cfg.hop // cfg.stft_hop
        self.proj = PaddedConv1d(cfg.latent_dim, cfg.decoder_dim, 3, causal=cfg.causal)
        self.up = nn.ConvTranspose1d(cfg.decoder_dim, cfg.decoder_dim, factor, stride=factor)
        self.blocks = nn.Sequential(*[ConvNeXtBlock(cfg.decoder_dim, causal=cfg.causal)
                                      for _ in range(cfg.decoder_layers)])
        self.norm = nn.LayerNorm(cfg.decoder_dim)
        self.head = nn.Linear(cfg.decoder_dim, cfg.n_fft + 2)

    def forward(self, latent):
        x = self.blocks(self.up(self.proj(latent)))
        x = self.head(self.norm(x.transpose(1, 2))).transpose(1, 2)
        if self.cfg.decoder_output == "complex":
            real, imag = x.chunk(2, dim=1)
            compressed = torch.complex(real, imag)
            # |X|^0.3 -> |X|: multiply by |X_c|^(1/0.3 - 1); the clamp bounds |X| below ~2e4
            spec = compressed * compressed.abs().clamp(max=20.0).pow(1.0 / COMPRESSION - 1.0)
        else:
            log_mag, phase = x.chunk(2, dim=1)
            spec = torch.polar(torch.exp(log_mag.clamp(max=6.0)), phase)
        return istft_frames(spec, self.cfg.n_fft, self.cfg.stft_hop, self.cfg.causal)


class WaveformDecoder(nn.Module):
    def __init__(self, cfg: QdacConfig):
        super().__init__()
        self.causal = cfg.causal
        c = cfg.decoder_channels
        self.inp = PaddedConv1d(cfg.latent_dim, c, 7, causal=cfg.causal)
        self.strides = list(reversed(cfg.encoder_strides))
        self.ups, self.units = nn.ModuleList(), nn.ModuleList()
        for stride in self.strides:
            out = max(c // 2, 8)
            self.ups.append(nn.Sequential(Snake(c), nn.ConvTranspose1d(c, out, 2 * stride, stride=stride)))
            self.units.append(nn.Sequential(*[ResidualUnit(out, d, cfg.causal) for d in (1, 3, 9)]))
            c = out
        self.out = nn.Sequential(Snake(c), PaddedConv1d(c, 1, 7, causal=cfg.causal))

    def forward(self, latent):
        x = self.inp(latent)
        for stride, up, units in zip(self.strides, self.ups, self.units):
            length = x.shape[-1]
            y = up(x)  # (length + 1) * stride samples: drop one stride (at the end if causal)
            left = 0 if self.causal else stride // 2
            x = units(y[..., left: left + length * stride])
        return torch.tanh(self.out(x))[:, 0]


class Qdac(nn.Module):
    """The codec. ``forward`` is the training pass; ``encode`` / ``decode`` are inference."""

    def __init__(self, cfg: QdacConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = StftEncoder(cfg) if cfg.encoder == "stft" else WaveformEncoder(cfg)
        self.quantizer = ResidualVectorQuantizer(cfg.latent_dim, cfg.n_codebooks, cfg.codebook_size,
                                                 cfg.codebook_dim)
        self.decoder = IstftDecoder(cfg) if cfg.decoder == "istft" else WaveformDecoder(cfg)

    @property
    def lookahead_samples(self) -> int:
        """Future input samples the decoder output at time t depends on beyond its frame (causal mode)."""
        return self.cfg.n_fft - self.cfg.stft_hop if self.cfg.decoder == "istft" else 0

    def pad(self, audio: torch.Tensor) -> torch.Tensor:
        """Right-pad (batch, samples) with zeros to a whole number of frames."""
        frames = max(1, math.ceil(audio.shape[-1] / self.cfg.hop))
        return F.pad(audio, (0, frames * self.cfg.hop - audio.shape[-1]))

    def forward(self, audio: torch.Tensor, n_active: torch.Tensor | None = None) -> dict:
        """audio (batch, samples) -> dict(audio (batch, frames*hop), codes, first, commitment, codebook)."""
        z = self.encoder(self.pad(audio))
        out = self.quantizer(z, n_active)
        out["audio"] = self.decoder(out["z_q"])
        return out

    @torch.no_grad()
    def encode(self, audio: torch.Tensor, n_codebooks: int | None = None) -> torch.Tensor:
        """(batch, samples) -> int64 codes (batch, n_codebooks, frames)."""
        return self.quantizer.encode(self.encoder(self.pad(audio)), n_codebooks)

    @torch.no_grad()
    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """int codes (batch, k, frames), 1 <= k <= n_codebooks -> audio (batch, frames*hop)."""
        return self.decoder(self.quantizer.decode(codes))

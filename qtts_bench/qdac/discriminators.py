"""Discriminators for QDAC's GAN training: multi-period (HiFi-GAN) and multi-resolution STFT.

Each discriminator maps audio (batch, samples) to (logits, [feature maps]); the wrappers return
lists over sub-discriminators. Channel widths are small so that training fits a CPU.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.parametrizations import weight_norm



def _conv_stack(convs, post, x):
    """Leaky-ReLU conv stack -> (flattened logits, every layer's output for feature matching)."""
    features = []
    for conv in convs:
        x = F.leaky_relu(conv(x), 0.1)
        features.append(x)
    x = post(x)
    features.append(x)
    return x.flatten(1), features

class PeriodDiscriminator(nn.Module):
    """Reshape audio to (samples/period, period) and apply strided 2-D convs along time."""

    def __init__(self, period: int, channels=(16, 32, 64, 128)):
        super().__init__()
        self.period = period
        layers, c_in = [], 1
        for i, c in enumerate(channels):
            stride = 3 if i < len(channels) - 1 else 1
            layers.append(weight_norm(nn.Conv2d(c_in, c, (5, 1), (stride, 1), padding=(2, 0))))
            c_in = c
        self.convs = nn.ModuleList(layers)
        self.post = weight_norm(nn.Conv2d(c_in, 1, (3, 1), padding=(1, 0)))

    def forward(self, audio):
        x = audio[:, None]
        pad = (-x.shape[-1]) % self.period
        x = F.pad(x, (0, pad), mode="reflect" if pad < x.shape[-1] else "constant")
        x = x.view(x.shape[0], 1, -1, self.period)
        return _conv_stack(self.convs, self.post, x)


class StftDiscriminator(nn.Module):
    """2-D convs over the log-magnitude spectrogram at one resolution (frequency strided from the
    first layer on, which keeps it affordable on a CPU)."""

    def __init__(self, n_fft: int, channels: int = 32):
        super().__init__()
        self.n_fft = n_fft
        self.convs = nn.ModuleList([
            weight_norm(nn.Conv2d(1, channels, (3, 9), stride=(1, 2), padding=(1, 4))),
            weight_norm(nn.Conv2d(channels, channels, (3, 9), stride=(1, 2), padding=(1, 4))),
            weight_norm(nn.Conv2d(channels, channels, (3, 9), stride=(1, 2), padding=(1, 4))),
            weight_norm(nn.Conv2d(channels, channels, (3, 3), padding=(1, 1))),
        ])
        self.post = weight_norm(nn.Conv2d(channels, 1, (3, 3), padding=(1, 1)))

    def forward(self, audio):
        window = torch.hann_window(self.n_fft, device=audio.device, dtype=audio.dtype)
        spec = torch.stft(audio, self.n_fft, self.n_fft // 4, window=window, return_complex=True)
        x = torch.log(spec.abs().clamp(min=1e-5))[:, None].transpose(2, 3)  # (batch, 1, frames, bins)
        return _conv_stack(self.convs, self.post, x)


class Discriminators(nn.Module):
    """All sub-discriminators; ``forward(audio)`` -> (list of logits, list of feature lists)."""

    def __init__(self, periods=(2, 3, 5, 7, 11), stft_sizes=(512, 1024, 2048), channels: int = 16):
        super().__init__()
        widths = (channels, 2 * channels, 4 * channels, 8 * channels)
        self.subs = nn.ModuleList([PeriodDiscriminator(p, widths) for p in periods]
                                  + [StftDiscriminator(n, channels) for n in stft_sizes])

    def forward(self, audio):
        logits, features = [], []
        for sub in self.subs:
            out, feats = sub(audio)
            logits.append(out)
            features.append(feats)
        return logits, features

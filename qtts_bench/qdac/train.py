"""QDAC training loop: reconstruction (+ optional GAN) losses, AR-ASR on codebook 1, resumable.

Output folder::

    state.pt          full training state (model, ASR head, discriminators, optimisers, step,
                      code-usage counters); written atomically every ``checkpoint_every`` steps
    log.jsonl         one JSON line of losses per ``log_every`` steps (appended on resume)
    export/           the codec as a shippable checkpoint (model.safetensors + config.json)
    run_config.json   the config the run started with

Every random draw (batch, quantiser dropout, dead-code restarts, ASR-head dropout) is seeded
from (seed, step), so resuming from a checkpoint reproduces an uninterrupted run.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from pathlib import Path

import torch

from ..errors import ConfigError
from .. import modelkit
from ..modelkit import lr_factor
from .asr_head import AsrHead, pad_tokens
from .checkpoint import save_checkpoint
from .config import RunConfig
from .data import TrainingData
from .discriminators import Discriminators
from .losses import (MultiResolutionStftLoss, MultiScaleMelLoss, complex_stft_loss, discriminator_loss,
                     feature_matching_loss, generator_adv_loss, si_sdr)
from .model import Qdac

STATE = "state.pt"
LOG = "log.jsonl"
EXPORT = "export"


class Trainer:
    def __init__(self, run: RunConfig, out: str | Path, data: TrainingData, device: str = "cpu"):
        self.run, self.cfg, self.tc = run, run.model, run.train
        self.out = Path(out)
        self.data = data
        self.device = torch.device(device)
        torch.manual_seed(self.tc.seed)
        self.model = Qdac(self.cfg).to(self.device)
        self.asr = (AsrHead(self.cfg.latent_dim, self.cfg.asr_dim, self.cfg.asr_layers, self.cfg.asr_heads)
                    .to(self.device) if self.tc.asr else None)
        self.disc = Discriminators(channels=self.tc.disc_channels).to(self.device) if self.tc.gan_start_step >= 0 else None
        gen_params = list(self.model.parameters()) + (list(self.asr.parameters()) if self.asr else [])
        self.opt_g = torch.optim.AdamW(gen_params, lr=self.tc.lr, betas=self.tc.betas)
        self.opt_d = (torch.optim.AdamW(self.disc.parameters(), lr=self.tc.disc_lr, betas=self.tc.betas)
                      if self.disc else None)
        self.mel = MultiScaleMelLoss()
        self.stft = MultiResolutionStftLoss()
        self.step = 0
        self.seconds = 0.0  # wall seconds spent training, over all resumes

    # --- state -----------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {
            "step": self.step, "seconds": self.seconds, "run": self.run.to_dict(),
            "model": self.model.state_dict(),
            "usage": [q.usage.clone() for q in self.model.quantizer.quantizers],
            "recent": [q.recent.clone() for q in self.model.quantizer.quantizers],
            "asr": self.asr.state_dict() if self.asr else None,
            "disc": self.disc.state_dict() if self.disc else None,
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict() if self.opt_d else None,
        }

    def load_state_dict(self, state: dict, source: str) -> None:
        saved = state.get("run", {})
        if saved.get("model") != self.cfg.to_dict():
            raise ConfigError(f"{source}: the saved run's model config differs from the config given; "
                              "resume with the same config (or start a new --out)")
        self.model.load_state_dict(state["model"])
        recents = state.get("recent") or [torch.zeros(0, q.recent.shape[1]) for q in self.model.quantizer.quantizers]
        for q, usage, recent in zip(self.model.quantizer.quantizers, state["usage"], recents):
            q.usage.copy_(usage)
            q.recent = recent.to(q.recent.device)
        if self.asr is not None:
            if state.get("asr") is None:
                raise ConfigError(f"{source}: saved run has no ASR head but train.asr is true")
            self.asr.load_state_dict(state["asr"])
        if self.disc is not None and state.get("disc") is not None:
            self.disc.load_state_dict(state["disc"])
            self.opt_d.load_state_dict(state["opt_d"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.step, self.seconds = int(state["step"]), float(state["seconds"])

    def init_weights(self, source_ref: str) -> None:
        """Copy codec weights from another run's state.pt (and its ASR head), or from a checkpoint
        (a shipped name such as ``qdac16-50hz-asr`` or an export folder: codec only, the ASR head
        starts fresh). Optimiser and step start fresh."""
        run_dir = Path(source_ref)
        source = run_dir / STATE
        if not source.is_file():
            self._init_from_checkpoint(source_ref)
            return
        state = torch.load(source, map_location=self.device, weights_only=False)
        if state["run"]["model"] != self.cfg.to_dict():
            raise ConfigError(f"train.init_from: {source} has a different model config")
        self.model.load_state_dict(state["model"])
        if self.asr is not None and state.get("asr") is not None:
            self.asr.load_state_dict(state["asr"])

    def _init_from_checkpoint(self, ref: str) -> None:
        from .checkpoint import read_config, resolve_checkpoint
        try:
            folder = resolve_checkpoint(ref)
        except ConfigError as exc:
            raise ConfigError(f"train.init_from: {ref} is neither a run folder with {STATE} nor a "
                              f"checkpoint ({exc})") from None
        cfg, _ = read_config(folder)
        if cfg.to_dict() != self.cfg.to_dict():
            raise ConfigError(f"train.init_from: {folder} has a different model config")
        modelkit.load_state_into(self.model, folder / modelkit.WEIGHTS, "train.init_from")

    def save(self) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        tmp = self.out / (STATE + ".tmp")
        torch.save(self.state_dict(), tmp)
        os.replace(tmp, self.out / STATE)
        self.export(self.out / EXPORT)

    def export(self, folder: Path) -> Path:
        training = {"step": self.step, "train_seconds": round(self.seconds, 1),
                    "recipe": self.run.to_dict(), "data": self.data.sources,
                    "torch": torch.__version__, "threads": torch.get_num_threads()}
        return save_checkpoint(self.model, folder, {"name": self.run.name, "training": training})

    # --- one step --------------------------------------------------------------------------
    def _n_active(self, batch: int, generator: torch.Generator) -> torch.Tensor:
        n = self.cfg.n_codebooks
        prefix = torch.randint(1, n + 1, (batch,), generator=generator)
        dropped = torch.rand(batch, generator=generator) < self.tc.quantizer_dropout
        return torch.where(dropped, prefix, torch.full_like(prefix, n)).to(self.device)

    def train_step(self) -> dict:
        tc, step = self.tc, self.step
        torch.manual_seed(tc.seed * 1_000_003 + step)  # ASR-head dropout etc.
        generator = torch.Generator().manual_seed(tc.seed * 1_000_003 + step)
        for group in self.opt_g.param_groups:
            group["lr"] = tc.lr * lr_factor(step, tc.steps, tc.warmup_steps, tc.lr_min_ratio)
        self.model.train()
        audio = torch.from_numpy(self.data.reconstruction_batch(tc.seed, step, tc.batch_size, tc.max_seconds,
                                                                self.cfg.hop, tc.pack_crops)).to(self.device)
        out = self.model(audio, self._n_active(audio.shape[0], generator))
        estimate = out["audio"]
        logs = {}
        mel = self.mel(estimate, audio)
        stft = self.stft(estimate, audio)
        complex_ = complex_stft_loss(estimate, audio, self.cfg.n_fft, self.cfg.stft_hop)
        sdr = si_sdr(estimate, audio).clamp(max=40.0).mean()
        commit, book = out["commitment"].mean(), out["codebook"].mean()
        sisdr_weight = tc.sisdr_weight if step >= tc.sisdr_start_step else 0.0
        total = (tc.mel_weight * mel + tc.stft_weight * stft + tc.complex_weight * complex_ - sisdr_weight * sdr
                 + tc.commitment_weight * commit + tc.codebook_weight * book)
        logs.update(mel=mel.item(), stft=stft.item(), complex=complex_.item(), si_sdr=sdr.item(), commitment=commit.item(),
                    codebook=book.item())

        if self.asr is not None:
            batch = self.data.asr_batch(tc.seed, step, tc.asr_batch_size, tc.asr_max_seconds, self.cfg.hop)
            if batch is not None:
                asr_audio, lengths, tokens = batch
                asr_audio = torch.from_numpy(asr_audio).to(self.device)
                z = self.model.encoder(asr_audio)
                first, _, _, _ = self.model.quantizer.quantizers[0](z)  # codebook 1 only
                frames = torch.tensor([math.ceil(n / self.cfg.hop) for n in lengths], device=self.device)
                memory_mask = torch.arange(first.shape[-1], device=self.device)[None] >= frames[:, None]
                ce, acc = self.asr.loss(first, pad_tokens(tokens).to(self.device), memory_mask)
                total = total + tc.asr_weight * ce
                logs.update(asr_ce=ce.item(), asr_acc=acc.item())

        if self.disc is not None and step >= tc.gan_start_step:
            for group in self.opt_d.param_groups:
                group["lr"] = tc.disc_lr * lr_factor(step, tc.steps, tc.warmup_steps, tc.lr_min_ratio)
            real_logits, _ = self.disc(audio)
            fake_logits, _ = self.disc(estimate.detach())
            d_loss = discriminator_loss(real_logits, fake_logits)
            self.opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            torch.nn.utils.clip_grad_norm_(self.disc.parameters(), tc.grad_clip)
            self.opt_d.step()
            real_logits, real_feats = self.disc(audio)
            fake_logits, fake_feats = self.disc(estimate)
            adv = generator_adv_loss(fake_logits)
            fm = feature_matching_loss(real_feats, fake_feats)
            total = total + tc.adv_weight * adv + tc.feature_weight * fm
            logs.update(disc=d_loss.item(), adv=adv.item(), feature=fm.item())

        self.opt_g.zero_grad(set_to_none=True)
        total.backward()
        params = [p for g in self.opt_g.param_groups for p in g["params"]]
        logs["grad_norm"] = float(torch.nn.utils.clip_grad_norm_(params, tc.grad_clip))
        self.opt_g.step()
        logs["loss"] = total.item()
        logs["lr"] = self.opt_g.param_groups[0]["lr"]
        self.step += 1
        if tc.dead_code_every and self.step % tc.dead_code_every == 0:
            logs["dead_codes"] = [q.restart_dead_codes(tc.dead_code_threshold, generator, tc.dead_code_max)
                                  for q in self.model.quantizer.quantizers]
        return logs


def train(run: RunConfig, out: str | Path, *, resume: bool = False, max_steps: int | None = None,
          device: str = "cpu", progress: bool = True, data: TrainingData | None = None) -> Path:
    """Train (or resume) into ``out``; stops at ``train.steps`` or after ``max_steps`` more steps.

    Returns the export folder. Raises ConfigError when ``out`` already holds a run and
    ``resume`` is false, or when ``resume`` is true and the saved config differs.
    """
    out = Path(out)
    state_file = out / STATE
    if state_file.exists() and not resume:
        raise ConfigError(f"{out} already holds a training run ({STATE}); pass --resume to continue it "
                          "or choose another --out")
    torch.set_num_threads(run.train.threads)
    if data is None:
        data = TrainingData.from_specs(run.data, run.exclude, run.train.min_seconds, run.model.asr_max_tokens,
                                       progress=progress)
    trainer = Trainer(run, out, data, device)
    if resume and state_file.exists():
        trainer.load_state_dict(torch.load(state_file, map_location=device, weights_only=False), str(state_file))
    elif run.train.init_from:
        trainer.init_weights(run.train.init_from)
    out.mkdir(parents=True, exist_ok=True)
    (out / "run_config.json").write_text(json.dumps(run.to_dict(), indent=1), encoding="utf-8")
    end = run.train.steps if max_steps is None else min(run.train.steps, trainer.step + max_steps)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=run.train.steps, initial=trainer.step, desc=run.name, dynamic_ncols=True,
                   file=sys.stderr)
    with open(out / LOG, "a", encoding="utf-8") as log:
        last = time.perf_counter()
        while trainer.step < end:
            logs = trainer.train_step()
            now = time.perf_counter()
            trainer.seconds += now - last
            last = now
            if bar is not None:
                bar.update(1)
                bar.set_postfix(mel=f"{logs['mel']:.3f}", sdr=f"{logs['si_sdr']:.1f}",
                                **({"asr": f"{logs['asr_ce']:.2f}"} if "asr_ce" in logs else {}))
            if trainer.step % run.train.log_every == 0 or trainer.step == end:
                log.write(json.dumps({"step": trainer.step, "seconds": round(trainer.seconds, 2), **logs}) + "\n")
                log.flush()
            if trainer.step % run.train.checkpoint_every == 0 or trainer.step == end:
                trainer.save()
    if bar is not None:
        bar.close()
    if not (out / EXPORT).is_dir():
        trainer.save()
    return out / EXPORT

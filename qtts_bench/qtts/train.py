"""QTTS training: teacher forcing for any decoder over cached QDAC codes, resumable.

Output folder::

    state.pt          model, optimiser, step, seconds, run config; written atomically every
                      ``checkpoint_every`` steps, at the end, and on SIGTERM / Ctrl-C
    log.jsonl         {"kind": "train", step, loss, loss_cb [per codebook], lr, grad_norm, tokens/s}
                      every ``log_every`` steps; {"kind": "eval", step, heldout_loss, heldout_loss_cb,
                      heldout_wrong_text_loss, text_gap} every ``eval_every`` steps; on resume, rows
                      after the saved step (a run killed between checkpoints) are dropped and a
                      {"kind": "resume"} row notes it, so the log continues without duplicates
    codes/            QDAC codes of every item (computed once; reused on resume)
    export/           the model as a checkpoint (model.safetensors + config.json + card.md)
    run_config.json   the config the run started with

The loss is the mean over codebooks of each codebook's mean cross-entropy (nats); codebook 1's
includes the end-of-speech target. Batches and dropout are seeded from (seed, step), so a resumed
run continues exactly where the saved state left off.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

import torch

from ..errors import ConfigError
from ..modelkit import lr_factor
from .checkpoint import codec_record, save_checkpoint
from .config import RunConfig
from .data import QttsData
from .model import QttsModel
from .tokenizer import CharTokenizer

STATE = "state.pt"
LOG = "log.jsonl"
EXPORT = "export"
CODES = "codes"


def _param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (decay if p.ndim >= 2 and "emb" not in name and "pos" not in name else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


class Trainer:
    def __init__(self, run: RunConfig, out: str | Path, data: QttsData, codec: dict, device: str = "cpu"):
        self.run, self.cfg, self.tc = run, run.model, run.train
        self.out, self.data, self.codec = Path(out), data, codec
        self.device = torch.device(device)
        self.tokenizer = CharTokenizer()
        torch.manual_seed(self.tc.seed)
        self.model = QttsModel(self.cfg).to(self.device)
        self.opt = torch.optim.AdamW(_param_groups(self.model, self.tc.weight_decay), lr=self.tc.lr, betas=self.tc.betas)
        self.step = 0
        self.seconds = 0.0

    # --- state -------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {"step": self.step, "seconds": self.seconds, "run": self.run.to_dict(), "codec": self.codec,
                "model": self.model.state_dict(), "opt": self.opt.state_dict()}

    def load_state_dict(self, state: dict, source: str) -> None:
        saved = state.get("run", {})
        if saved.get("model") != self.cfg.to_dict():
            raise ConfigError(f"{source}: the saved run's model config differs from the config given; resume with "
                              "the same model config (or start a new --out)")
        if state.get("codec", {}).get("weights_sha256") != self.codec.get("weights_sha256"):
            raise ConfigError(f"{source}: the saved run was trained on other QDAC weights "
                              f"({state.get('codec', {}).get('checkpoint')}) than '{self.codec.get('checkpoint')}'")
        self.model.load_state_dict(state["model"])
        self.opt.load_state_dict(state["opt"])
        self.step, self.seconds = int(state["step"]), float(state["seconds"])

    def save(self) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        tmp = self.out / (STATE + ".tmp")
        torch.save(self.state_dict(), tmp)
        os.replace(tmp, self.out / STATE)
        self.export(self.out / EXPORT)

    def export(self, folder: Path) -> Path:
        training = {"step": self.step, "train_seconds": round(self.seconds, 1), "recipe": self.run.to_dict(),
                    "data": {k: v for k, v in self.data.sources.items() if k != "heldout_ids"},
                    "heldout_ids": self.data.sources.get("heldout_ids", []),
                    "torch": torch.__version__, "threads": torch.get_num_threads()}
        return save_checkpoint(self.model, folder, tokenizer=self.tokenizer, codec=self.codec,
                               extra={"name": self.run.name, "card": self.run.card, "training": training})

    # --- steps -------------------------------------------------------------------------------
    def train_step(self) -> dict:
        tc, step = self.tc, self.step
        torch.manual_seed(tc.seed * 1_000_003 + step)  # dropout
        for group in self.opt.param_groups:
            group["lr"] = tc.lr * lr_factor(step, tc.steps, tc.warmup_steps, tc.lr_min_ratio)
        self.model.train()
        batch = self.data.batch(tc.seed, step, tc.max_tokens, tc.max_batch, self.device)
        sums, counts = self.model.loss(batch)
        per_cb = sums / counts.clamp(min=1)
        loss = per_cb.mean()
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = float(torch.nn.utils.clip_grad_norm_(self.model.parameters(), tc.grad_clip))
        self.opt.step()
        self.step += 1
        return {"loss": loss.item(), "loss_cb": [round(v, 4) for v in per_cb.tolist()], "grad_norm": grad_norm,
                "lr": self.opt.param_groups[0]["lr"], "items": len(batch["ids"]), "tokens": batch["n_tokens"]}

    @torch.no_grad()
    def evaluate(self) -> dict | None:
        """Teacher-forced held-out loss per codebook (and with mismatched transcripts)."""
        if not self.data.heldout:
            return None
        self.model.eval()
        out = {}
        for key, wrong in (("heldout", False), ("heldout_wrong_text", True)):
            if wrong and (not self.tc.eval_wrong_text or len(self.data.heldout) < 2):
                continue
            total = torch.zeros(self.cfg.n_codebooks, dtype=torch.float64)
            count = torch.zeros(self.cfg.n_codebooks, dtype=torch.float64)
            for batch in self.data.eval_batches(self.tc.max_tokens, self.tc.max_batch, wrong, self.device):
                sums, counts = self.model.loss(batch)
                total += sums.double().cpu()
                count += counts.double().cpu()
            per_cb = (total / count.clamp(min=1)).tolist()
            out[f"{key}_loss"] = round(sum(per_cb) / len(per_cb), 5)
            out[f"{key}_loss_cb"] = [round(v, 4) for v in per_cb]
        if "heldout_wrong_text_loss" in out:
            out["text_gap"] = round(out["heldout_wrong_text_loss"] - out["heldout_loss"], 5)
        self.model.train()
        return out


class _StopFlag:
    """SIGTERM / SIGINT -> finish the current step, save, exit. A second Ctrl-C raises KeyboardInterrupt at
    once (without saving: the last checkpoint stays)."""

    def __init__(self):
        self.signal = None
        self._old = {}

    def __enter__(self):
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                self._old[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread: rely on KeyboardInterrupt
                pass
        return self

    def _handle(self, signum, frame):
        if self.signal is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signal = signal.Signals(signum).name

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)


def _truncate_log(path: Path, step: int) -> None:
    """Drop log rows written after the saved state (a run killed between checkpoints), noting how many."""
    if not path.is_file():
        return
    rows = path.read_text(encoding="utf-8").splitlines()
    kept = [r for r in rows if r.strip() and json.loads(r).get("step", 0) <= step]
    note = {"kind": "resume", "step": step, "dropped_rows": len(rows) - len(kept)}
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(r + "\n" for r in kept + [json.dumps(note)]), encoding="utf-8")
    os.replace(tmp, path)


def load_codec(run: RunConfig, device: str = "cpu"):
    """-> (loaded QdacCodec with the model's codebook count, codec record for config.json)."""
    from ..systems.qdac import QdacCodec

    codec = QdacCodec(run.codec, n_codebooks=run.model.n_codebooks)
    codec.load(device)
    return codec, codec_record(run.codec)


def train(run: RunConfig, out: str | Path, *, resume: bool = False, max_steps: int | None = None, device: str = "cpu",
          progress: bool = True, data: QttsData | None = None) -> Path:
    """Train (or resume) into ``out`` until ``train.steps`` or ``max_steps`` more steps; returns the export folder.

    Stops early (after saving) on SIGTERM or Ctrl-C. ConfigError when ``out`` holds a run and
    ``resume`` is false, or when the saved run's model config or codec differ.
    """
    out = Path(out)
    state_file = out / STATE
    if state_file.exists() and not resume:
        raise ConfigError(f"{out} already holds a training run ({STATE}); pass --resume to continue it or choose "
                          "another --out")
    torch.set_num_threads(run.train.threads)
    codec, record = load_codec(run, device)
    if data is None:
        data = QttsData.from_specs(run, codec, record["weights_sha256"], out / CODES, CharTokenizer(), progress)
    trainer = Trainer(run, out, data, record, device)
    if resume and state_file.exists():
        trainer.load_state_dict(torch.load(state_file, map_location=device, weights_only=False), str(state_file))
        _truncate_log(out / LOG, trainer.step)
    out.mkdir(parents=True, exist_ok=True)
    (out / "run_config.json").write_text(json.dumps(run.to_dict(), indent=1), encoding="utf-8")
    end = run.train.steps if max_steps is None else min(run.train.steps, trainer.step + max_steps)
    tc = run.train
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=tc.steps, initial=trainer.step, desc=run.name, dynamic_ncols=True, file=sys.stderr)
    stopped = None
    with open(out / LOG, "a", encoding="utf-8") as log, _StopFlag() as flag:
        def write(row):
            log.write(json.dumps(row) + "\n")
            log.flush()

        if trainer.step == 0 and data.heldout and tc.eval_every:
            write({"kind": "eval", "step": 0, "seconds": 0.0, **trainer.evaluate()})
        last, tokens, window = time.perf_counter(), 0, 0.0
        while trainer.step < end:
            logs = trainer.train_step()
            now = time.perf_counter()
            trainer.seconds += now - last
            window += now - last
            tokens += logs["tokens"]
            last = now
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{logs['loss']:.3f}")
            if trainer.step % tc.log_every == 0 or trainer.step == end:
                write({"kind": "train", "step": trainer.step, "seconds": round(trainer.seconds, 2), **logs,
                       "tokens_per_s": round(tokens / max(window, 1e-9), 1)})
                tokens, window = 0, 0.0
            evaluate = tc.eval_every and trainer.step % tc.eval_every == 0
            if (evaluate or trainer.step == tc.steps) and data.heldout:
                row = trainer.evaluate()
                write({"kind": "eval", "step": trainer.step, "seconds": round(trainer.seconds, 2), **row})
                last = time.perf_counter()  # evaluation time is not training time
            if trainer.step % tc.checkpoint_every == 0 or trainer.step == end:
                trainer.save()
                last = time.perf_counter()
            if flag.signal:
                stopped = flag.signal
                break
        if stopped:
            trainer.save()
            write({"kind": "stop", "step": trainer.step, "seconds": round(trainer.seconds, 2), "reason": stopped})
    if bar is not None:
        bar.close()
    if stopped:
        print(f"stopped by {stopped} at step {trainer.step}; state saved in {state_file}; continue with --resume",
              file=sys.stderr)
    if not (out / EXPORT).is_dir():
        trainer.save()
    return out / EXPORT

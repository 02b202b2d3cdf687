"""QDAC training on a tiny model and synthetic audio: config errors, resume, killed runs, CLI."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from qtts_bench.errors import ConfigError
from qtts_bench.qdac.config import TINY_MODEL, load_run_config, run_config_from_dict

torch = pytest.importorskip("torch", reason="QDAC needs the 'torch' extra")
pytest.importorskip("safetensors", reason="QDAC checkpoints need the 'torch' extra")

from qtts_bench.qdac.checkpoint import load_checkpoint  # noqa: E402
from qtts_bench.qdac.train import STATE, train  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def tiny_run(tmp_path, **train_changes):
    raw = {
        "name": "tiny",
        "model": dict(TINY_MODEL),
        "train": {"steps": 4, "batch_size": 2, "max_seconds": 0.5, "warmup_steps": 1, "checkpoint_every": 2,
                  "log_every": 1, "dead_code_every": 2, "asr_batch_size": 2, "disc_channels": 2,
                  **train_changes},
        "data": [{"dataset": "synthetic", "params": {"n": 3, "seconds": 0.8, "folder": str(tmp_path / "syn")}}],
    }
    return raw


def params(out: Path) -> dict:
    return torch.load(out / STATE, weights_only=False)["model"]


def test_config_errors_name_file_and_key(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"model": {"n_codebooks": 4}, "train": {"stpes": 3}}))
    with pytest.raises(ConfigError, match=r"c\.yaml: train: unknown key 'stpes'; did you mean 'steps'"):
        load_run_config(str(path))
    with pytest.raises(ConfigError, match="training config not found"):
        load_run_config(str(tmp_path / "missing.yaml"))
    with pytest.raises(ConfigError, match=r"data\[0\]: expected"):
        run_config_from_dict({"data": [{"path": "x"}]}, "cfg")


def test_resume_reproduces_an_uninterrupted_run(tmp_path):
    raw = tiny_run(tmp_path, steps=3, gan_start_step=2, max_seconds=0.25)
    run = run_config_from_dict(raw, "test")
    train(run, tmp_path / "full", progress=False)
    train(run, tmp_path / "split", max_steps=2, progress=False)
    assert torch.load(tmp_path / "split" / STATE, weights_only=False)["step"] == 2
    train(run, tmp_path / "split", resume=True, progress=False)
    full, split = params(tmp_path / "full"), params(tmp_path / "split")
    assert full.keys() == split.keys()
    for key in full:
        assert torch.equal(full[key], split[key]), key
    log = [json.loads(line) for line in (tmp_path / "split" / "log.jsonl").read_text().splitlines()]
    assert [row["step"] for row in log] == [1, 2, 3]
    assert "asr_ce" in log[0] and "adv" in log[-1] and "adv" not in log[0]
    model, info = load_checkpoint(tmp_path / "split" / "export")
    assert info["config"]["training"]["step"] == 3


def test_refuses_to_overwrite_and_checks_config_on_resume(tmp_path):
    run = run_config_from_dict(tiny_run(tmp_path, steps=1), "test")
    train(run, tmp_path / "out", progress=False)
    with pytest.raises(ConfigError, match="already holds a training run"):
        train(run, tmp_path / "out", progress=False)
    other = tiny_run(tmp_path, steps=2)
    other["model"]["decoder_dim"] = 8
    with pytest.raises(ConfigError, match="model config differs"):
        train(run_config_from_dict(other, "test"), tmp_path / "out", resume=True, progress=False)


def test_ablation_switch_removes_asr(tmp_path):
    run = run_config_from_dict(tiny_run(tmp_path, steps=1, asr=False), "test")
    train(run, tmp_path / "out", progress=False)
    state = torch.load(tmp_path / "out" / STATE, weights_only=False)
    assert state["asr"] is None
    assert "asr_ce" not in (tmp_path / "out" / "log.jsonl").read_text()


def test_killed_cli_run_resumes(tmp_path):
    raw = tiny_run(tmp_path, steps=400, checkpoint_every=1, dead_code_every=0)
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(raw))
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "qtts_bench.cli", "train", "qdac", str(config), "--out", str(out), "--no-progress"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 60
    while time.time() < deadline and not (out / STATE).exists():
        time.sleep(0.2)
    time.sleep(0.5)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert (out / STATE).exists(), proc.stderr.read().decode()
    killed_at = torch.load(out / STATE, weights_only=False)["step"]
    assert 1 <= killed_at < 400
    done = subprocess.run(cmd + ["--resume", "--max-steps", "2"], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert torch.load(out / STATE, weights_only=False)["step"] == killed_at + 2


def test_packed_crops_have_no_zero_padding_and_are_deterministic():
    import numpy as np

    from qtts_bench.qdac.data import TrainingData, Utterance

    # utterances of 0.2 .. 0.9 s of constant non-zero value i + 1 (so padding would show as 0)
    utts = [Utterance(f"u{i}", np.full(int(1600 * (i + 2)), i + 1, dtype=np.int16), None) for i in range(8)]
    data = TrainingData(utts, {})
    batch = data.reconstruction_batch(seed=3, step=7, batch_size=6, max_seconds=1.0, hop=320)
    assert batch.shape == (6, 16000) and (batch != 0).all()
    assert np.array_equal(batch, data.reconstruction_batch(3, 7, 6, 1.0, 320))
    assert not np.array_equal(batch, data.reconstruction_batch(3, 8, 6, 1.0, 320))
    padded = data.reconstruction_batch(3, 7, 6, 1.0, 320, pack=False)
    assert (padded == 0).any() and padded.shape[1] % 320 == 0


def test_loss_is_the_weighted_sum_and_si_sdr_starts_at_its_step(tmp_path):
    weights = dict(mel_weight=1.5, stft_weight=0.5, complex_weight=2.0, sisdr_weight=0.1, commitment_weight=0.25,
                   codebook_weight=1.0)
    run = run_config_from_dict(tiny_run(tmp_path, steps=4, asr=False, sisdr_start_step=2, **weights), "test")
    train(run, tmp_path / "out", progress=False)
    log = [json.loads(line) for line in (tmp_path / "out" / "log.jsonl").read_text().splitlines()]
    for row in log:  # row["step"] is the step count after the update; the loss was of step - 1
        expected = (1.5 * row["mel"] + 0.5 * row["stft"] + 2.0 * row["complex"] + 0.25 * row["commitment"]
                    + row["codebook"])
        if row["step"] - 1 >= 2:
            expected -= 0.1 * row["si_sdr"]
        assert row["loss"] == pytest.approx(expected, rel=1e-5, abs=1e-5), row["step"]


def test_init_from_a_checkpoint_folder_copies_the_codec_weights(tmp_path):
    first = run_config_from_dict(tiny_run(tmp_path, steps=1), "test")
    train(first, tmp_path / "first", progress=False)
    warm = run_config_from_dict(tiny_run(tmp_path, steps=1, init_from=str(tmp_path / "first" / "export")), "test")
    trainer_out = tmp_path / "warm"
    train(warm, trainer_out, max_steps=0, progress=False)
    before, after = params(tmp_path / "first"), params(trainer_out)
    for key in before:  # zero steps taken: the warm start holds the exported weights exactly
        assert torch.equal(before[key], after[key]), key
    other = tiny_run(tmp_path, steps=1, init_from=str(tmp_path / "first" / "export"))
    other["model"]["decoder_dim"] = 8
    with pytest.raises(ConfigError, match="different model config"):
        train(run_config_from_dict(other, "test"), tmp_path / "bad", progress=False)
    missing = tiny_run(tmp_path, steps=1, init_from=str(tmp_path / "nowhere"))
    with pytest.raises(ConfigError, match="neither a run folder with state.pt nor a checkpoint"):
        train(run_config_from_dict(missing, "test"), tmp_path / "bad2", progress=False)


def test_ship_checkpoint_float16_loads_back_within_half_precision(tmp_path):
    run = run_config_from_dict(tiny_run(tmp_path, steps=1), "test")
    export = train(run, tmp_path / "run", progress=False)
    script = REPO / "scripts" / "ship_checkpoint.py"
    done = subprocess.run([sys.executable, str(script), "qdac", str(export), "tiny16", "--float16",
                           "--into", str(tmp_path / "shipped")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    shipped = tmp_path / "shipped" / "tiny16"
    meta = json.loads((shipped / "config.json").read_text())
    assert meta["weights_dtype"] == "float16" and meta["shipped_as"] == "tiny16"
    full, _ = load_checkpoint(export)
    half, info = load_checkpoint(shipped)
    assert info["weights_sha256"] == meta["weights_sha256"]
    for (name, a), (_, b) in zip(full.state_dict().items(), half.state_dict().items()):
        assert b.dtype == a.dtype  # loaded back into the float32 model
        if a.is_floating_point():  # float16 keeps 11 significant bits: relative error <= 2**-11
            assert torch.allclose(a, b, rtol=2**-11, atol=6e-8), name
        else:
            assert torch.equal(a, b), name
    assert (shipped / "model.safetensors").stat().st_size < (export / "model.safetensors").stat().st_size * 0.6

"""QTTS training on tiny models and synthetic audio: logs, code cache, resume, interrupted CLI runs."""

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
from qtts_bench.qtts.config import run_config_from_dict

torch = pytest.importorskip("torch", reason="QTTS needs the 'torch' extra")
pytest.importorskip("safetensors", reason="QTTS checkpoints need the 'torch' extra")

from qtts_bench.qtts.checkpoint import load_checkpoint  # noqa: E402
from qtts_bench.qtts.testing import tiny_qdac, tiny_run  # noqa: E402
from qtts_bench.qtts.train import STATE, train  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def codec(tmp_path_factory):
    return tiny_qdac(tmp_path_factory.mktemp("codec") / "qdac")


def rows(out: Path, kind: str | None = None) -> list[dict]:
    lines = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    return [r for r in lines if kind is None or r["kind"] == kind]


@pytest.mark.parametrize("decoder", ["hierarchical", "multihead", "single"])
def test_training_logs_per_codebook_heldout_loss_and_exports(tmp_path, codec, decoder):
    run = run_config_from_dict(tiny_run(codec, tmp_path / "syn", decoder), "test")
    export = train(run, tmp_path / "out", progress=False)
    K = run.model.n_codebooks
    train_rows, evals = rows(tmp_path / "out", "train"), rows(tmp_path / "out", "eval")
    assert [r["step"] for r in train_rows] == [1, 2, 3, 4] and all(len(r["loss_cb"]) == K for r in train_rows)
    assert [r["step"] for r in evals] == [0, 2, 4]
    for r in evals:  # teacher-forced held-out loss per codebook, and against mismatched transcripts
        assert len(r["heldout_loss_cb"]) == K and len(r["heldout_wrong_text_loss_cb"]) == K
        assert r["heldout_loss"] == pytest.approx(sum(r["heldout_loss_cb"]) / K, abs=1e-3)
        assert "text_gap" in r
    assert evals[-1]["heldout_loss"] < evals[0]["heldout_loss"]  # it learns something in 4 steps
    model, _, info = load_checkpoint(export)
    meta = info["config"]
    assert meta["training"]["step"] == 4 and meta["card"]["synthetic"] is True
    assert meta["training"]["data"]["n_heldout"] == 2 and meta["training"]["data"]["n_train"] == 4
    assert (tmp_path / "out" / "codes" / "codes.npz").is_file()


def test_resume_reproduces_an_uninterrupted_run_and_reuses_cached_codes(tmp_path, codec, monkeypatch):
    run = run_config_from_dict(tiny_run(codec, tmp_path / "syn", "hierarchical", steps=4), "test")
    train(run, tmp_path / "full", progress=False)
    train(run, tmp_path / "split", max_steps=2, progress=False)
    assert torch.load(tmp_path / "split" / STATE, weights_only=False)["step"] == 2
    from qtts_bench.systems import qdac

    def no_encoding(self, audio):
        raise AssertionError("codes should come from the cache on resume")

    monkeypatch.setattr(qdac.QdacCodec, "encode", no_encoding)
    train(run, tmp_path / "split", resume=True, progress=False)
    full = torch.load(tmp_path / "full" / STATE, weights_only=False)["model"]
    split = torch.load(tmp_path / "split" / STATE, weights_only=False)["model"]
    for key in full:
        assert torch.equal(full[key], split[key]), key
    assert [r["step"] for r in rows(tmp_path / "split", "train")] == [1, 2, 3, 4]


def test_refuses_to_overwrite_and_checks_the_model_config_on_resume(tmp_path, codec):
    raw = tiny_run(codec, tmp_path / "syn", steps=1)
    train(run_config_from_dict(raw, "test"), tmp_path / "out", progress=False)
    with pytest.raises(ConfigError, match="already holds a training run"):
        train(run_config_from_dict(raw, "test"), tmp_path / "out", progress=False)
    raw["model"]["d_model"] = 16
    with pytest.raises(ConfigError, match="model config differs"):
        train(run_config_from_dict(raw, "test"), tmp_path / "out", resume=True, progress=False)


def _start(cmd, env):
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _wait_for_step(out: Path, step: int, proc, timeout: float = 90.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if (out / "log.jsonl").is_file() and any(r["kind"] == "train" and r["step"] >= step for r in rows(out)):
            return
        if proc.poll() is not None:
            raise AssertionError(f"training exited early: {proc.stderr.read()}")
        time.sleep(0.1)
    raise AssertionError("training did not reach the step in time")


def test_sigterm_stops_a_cli_run_that_then_resumes_with_the_log_continuing(tmp_path, codec):
    raw = tiny_run(codec, tmp_path / "syn", steps=100000, checkpoint_every=1000, eval_every=0)
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(raw))
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "qtts_bench.cli", "train", "qtts", str(config), "--out", str(out), "--no-progress"]
    proc = _start(cmd, env)
    _wait_for_step(out, 3, proc)
    proc.send_signal(signal.SIGTERM)
    stderr = proc.communicate(timeout=60)[1]
    assert proc.returncode == 0, stderr  # finishes the step, saves (no checkpoint was due), says how to go on
    assert "stopped by SIGTERM" in stderr and "--resume" in stderr
    saved = torch.load(out / STATE, weights_only=False)["step"]
    assert saved == max(r["step"] for r in rows(out, "train")) >= 3
    assert rows(out)[-1]["kind"] == "stop" and rows(out)[-1]["step"] == saved
    done = subprocess.run(cmd + ["--resume", "--max-steps", "2"], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert torch.load(out / STATE, weights_only=False)["step"] == saved + 2
    assert [r["step"] for r in rows(out, "train")] == list(range(1, saved + 3))


def test_after_a_kill_between_checkpoints_the_log_continues_from_the_saved_step(tmp_path, codec):
    """kill -9 after step 5 with checkpoints every 3: state is step 3, the log already holds 4 and 5."""
    run = run_config_from_dict(tiny_run(codec, tmp_path / "syn", steps=8, checkpoint_every=3, eval_every=0), "test")
    out = tmp_path / "run"
    train(run, out, max_steps=3, progress=False)
    with open(out / "log.jsonl", "a") as log:  # what the killed process had written after its checkpoint
        for step in (4, 5):
            log.write(json.dumps({"kind": "train", "step": step, "loss": 9.9}) + "\n")
    train(run, out, resume=True, max_steps=2, progress=False)
    assert torch.load(out / STATE, weights_only=False)["step"] == 5
    train_rows = rows(out, "train")
    assert [r["step"] for r in train_rows] == [1, 2, 3, 4, 5] and 9.9 not in [r["loss"] for r in train_rows]
    assert rows(out, "resume") == [{"kind": "resume", "step": 3, "dropped_rows": 2}]

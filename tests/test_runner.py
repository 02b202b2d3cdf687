"""End-to-end runs through the CLI on synthetic data with dummy systems (seconds)."""

import json
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from qtts_bench.audio import Audio, read_audio, write_audio
from qtts_bench.testing import speech_like

from conftest import ROOT

SUITE = """
name: smoke
warmup: {warmup}
datasets:
  syn: {{dataset: synthetic, params: {{n: {n}, seconds: 1.0}}}}
systems:
{systems}
metrics:
  si_sdr: {{}}
  pesq_wb: {{}}
"""


def _suite(write_suite, systems, n=3, warmup=1):
    return write_suite(SUITE.format(systems=systems, n=n, warmup=warmup))


def _records(folder):
    return [json.loads(line) for line in (folder / "items.jsonl").read_text().splitlines()]


def test_run_writes_store_and_resumes_without_recomputing(write_suite, tmp_path, cli):
    path = _suite(write_suite, "  passthrough: {}\n  q: {system: dummy_codec, params: {bits: [4, 8]}}")
    out = tmp_path / "out"
    proc = cli("run", str(path), "--out", str(out), "--no-progress")
    assert proc.returncode == 0, proc.stderr
    runs = {p.name: p for p in (out / "smoke" / "syn").iterdir()}
    assert set(runs) == {"passthrough", "q@bits=4", "q@bits=8"}
    for folder in runs.values():
        assert len(_records(folder)) == 3
        assert {"run.json", "summary.json", "items.jsonl"} <= {p.name for p in folder.iterdir()}
    summary = {k: json.loads((f / "summary.json").read_text())["metrics"] for k, f in runs.items()}
    # Uniform quantisation gains ~6 dB SNR per bit; 4 extra bits -> ~24 dB more SI-SDR.
    gain = summary["q@bits=8"]["si_sdr"]["value"] - summary["q@bits=4"]["si_sdr"]["value"]
    assert 20 < gain < 28
    assert summary["passthrough"]["pesq_wb"]["value"] > 4.5
    assert summary["passthrough"]["pesq_wb"]["n_scored"] == 3

    run = json.loads((runs["q@bits=4"] / "run.json").read_text())
    assert run["run"]["axes"] == {"bits": 4} and run["system"]["nominal_bitrate"] == 64000
    assert run["metrics"]["pesq_wb"]["settings"]  # mode and library recorded
    env = run["environment"]
    assert env["device"] == "cpu" and "numpy" in env["packages"] and "commit" in env["git"]
    assert run["audio"]["resampler"] == "soxr" and run["finished"]
    assert run["dataset"]["items_sha256"] and run["suite"]["sha256"]
    rec = _records(runs["q@bits=4"])[0]
    assert rec["system"]["encoded_bits"] == 4 * 16000 and rec["system"]["seconds"] > 0

    before = {k: (f / "items.jsonl").read_bytes() for k, f in runs.items()}
    again = cli("run", str(path), "--out", str(out), "--no-progress")
    assert again.returncode == 0, again.stderr
    assert {k: (f / "items.jsonl").read_bytes() for k, f in runs.items()} == before
    assert all(line.rstrip().endswith("0") for line in again.stdout.splitlines()[1:4])  # "new" column


def test_failures_are_recorded_with_reasons_and_the_run_goes_on(write_suite, tmp_path, cli):
    path = _suite(write_suite, "  bad: {system: dummy_codec, params: {fail_calls: [[1]], nan_calls: [[2]], short_calls: [[3]]}}",
                  n=5, warmup=0)
    proc = cli("run", str(path), "--out", str(tmp_path), "--no-progress")
    assert proc.returncode == 0, proc.stderr
    folder = tmp_path / "smoke" / "syn" / "bad"
    recs = {r["id"]: r for r in _records(folder)}
    assert len(recs) == 5
    assert recs["syn000"]["status"] == "ok" and recs["syn004"]["status"] == "ok"
    assert "injected failure" in recs["syn001"]["error"]
    assert "NaN" in recs["syn002"]["error"]
    assert "codec returned 8000 samples" in recs["syn003"]["error"]
    for bad in ("syn001", "syn002", "syn003"):
        for entry in recs[bad]["metrics"].values():
            assert entry["value"] is None and entry["reason"].startswith("system failed")
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["n_system_errors"] == 3
    assert summary["metrics"]["si_sdr"]["n_scored"] == 2 and summary["metrics"]["si_sdr"]["n_failed"] == 3


def test_killed_run_resumes_and_loses_nothing(write_suite, tmp_path, cli):
    path = _suite(write_suite, "  slow: {system: dummy_codec, params: {sleep: 0.3}}", n=8, warmup=0)
    items = tmp_path / "smoke" / "syn" / "slow" / "items.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "qtts_bench.cli", "run", str(path), "--out", str(tmp_path),
                             "--no-progress"], env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin",
                                                    "QTTS_BENCH_CACHE": str(tmp_path / "cache")},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline and (not items.exists() or len(items.read_text().splitlines()) < 2):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    kept = items.read_text().splitlines()
    assert 2 <= len(kept) < 8
    with open(items, "a") as fh:
        fh.write('{"id": "syn00')  # a kill in the middle of a write
    again = cli("run", str(path), "--out", str(tmp_path), "--no-progress")
    assert again.returncode == 0, again.stderr
    lines = items.read_text().splitlines()
    assert lines[: len(kept)] == kept  # earlier records untouched
    ids = [json.loads(line)["id"] for line in lines]
    assert sorted(ids) == [f"syn{i:03d}" for i in range(8)]  # each exactly once


def test_bad_reference_audio_is_a_reasoned_failure(write_suite, tmp_path, cli):
    good = tmp_path / "good.wav"
    write_audio(good, Audio(speech_like(1.0, 16000, 1), 16000))
    write_audio(tmp_path / "silent.wav", Audio(np.zeros(16000, np.float32), 16000))
    (tmp_path / "corrupt.wav").write_bytes(b"RIFF\x00\x00not a wav")
    manifest = tmp_path / "m.jsonl"
    manifest.write_text("".join(json.dumps({"id": i, "audio": f"{i}.wav"}) + "\n" for i in ("good", "silent", "corrupt")))
    path = write_suite(f"""
name: bad
datasets: {{m: {{dataset: manifest, params: {{path: {manifest}}}}}}}
systems: {{passthrough: {{}}}}
metrics: {{si_sdr: {{}}}}
""")
    # An unreadable file is refused before any work (validation reads every audio header).
    proc = cli("run", str(path), "--out", str(tmp_path / "out"), "--no-progress")
    assert proc.returncode == 2 and "corrupt.wav" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists()
    # A file that passes validation but is unusable (silence) is a reasoned per-utterance failure.
    manifest.write_text("".join(json.dumps({"id": i, "audio": f"{i}.wav"}) + "\n" for i in ("good", "silent")))
    proc = cli("run", str(path), "--out", str(tmp_path / "out"), "--no-progress")
    assert proc.returncode == 0, proc.stderr
    recs = {r["id"]: r for r in _records(tmp_path / "out" / "bad" / "m" / "passthrough")}
    assert recs["good"]["status"] == "ok" and recs["good"]["metrics"]["si_sdr"]["value"] > 50
    assert "all silence" in recs["silent"]["error"] and "silent.wav" in recs["silent"]["error"]


def test_malformed_suite_fails_before_any_work(write_suite, tmp_path, cli):
    path = _suite(write_suite, "  q: {system: dummy_codec, params: {bits: 0}}")
    proc = cli("run", str(path), "--out", str(tmp_path / "out"))
    assert proc.returncode == 2
    assert "systems.q.params: bits must be in 1..16" in proc.stderr
    assert not (tmp_path / "out").exists()


def test_changed_settings_refuse_to_mix_results(write_suite, tmp_path, cli):
    path = _suite(write_suite, "  q: {system: dummy_codec, params: {bits: 4}}", n=1)
    assert cli("run", str(path), "--out", str(tmp_path), "--no-progress").returncode == 0
    path.write_text(path.read_text().replace("pesq_wb: {}", "pesq_wb: {params: {align: pad}}"))
    proc = cli("run", str(path), "--out", str(tmp_path), "--no-progress")
    assert proc.returncode == 2 and "different metrics" in proc.stderr


def test_validate_and_list_commands(write_suite, cli):
    path = _suite(write_suite, "  q: {system: dummy_codec, params: {bits: [4, 8]}}")
    proc = cli("validate", str(path))
    assert proc.returncode == 0 and "OK" in proc.stdout and "q@bits=8" in proc.stdout
    listed = cli("list", "metrics")
    assert listed.returncode == 0 and "pesq_wb" in listed.stdout


def test_score_command_matches_the_metric_functions(tmp_path, cli):
    from qtts_bench.metrics.signal import si_sdr

    ref = speech_like(1.5, 16000, 3)
    noisy = ref + 0.01 * np.random.default_rng(0).standard_normal(len(ref)).astype(np.float32)
    write_audio(tmp_path / "ref.wav", Audio(ref, 16000))
    write_audio(tmp_path / "est.wav", Audio(noisy, 16000))
    proc = cli("score", "--reference", str(tmp_path / "ref.wav"), "--estimate", str(tmp_path / "est.wav"), "--json")
    assert proc.returncode == 0, proc.stderr
    values = json.loads(proc.stdout)
    assert set(values) == {"pesq_wb", "pesq_nb", "stoi", "estoi", "si_sdr"}
    # The files are 16-bit PCM: compare against the function on what was written.
    expected = si_sdr(reference=read_audio(tmp_path / "ref.wav").samples,
                      estimate=read_audio(tmp_path / "est.wav").samples)
    assert values["si_sdr"] == pytest.approx(expected, abs=1e-4)
    assert 0 < values["stoi"] <= 1.0 and values["pesq_wb"] > values["pesq_nb"] - 2


def test_score_reports_missing_values_with_reasons(tmp_path, cli):
    write_audio(tmp_path / "ref.wav", Audio(speech_like(1.0, 16000, 3), 16000))
    write_audio(tmp_path / "silent.wav", Audio(np.zeros(16000, np.float32), 16000))
    proc = cli("score", "--reference", str(tmp_path / "ref.wav"), "--estimate", str(tmp_path / "silent.wav"),
               "--metrics", "si_sdr", "--json")
    assert proc.returncode == 1
    assert json.loads(proc.stdout) == {"si_sdr": None}
    assert "si_sdr: not scored" in proc.stderr and "silence" in proc.stderr


TORCH_RUN = """
import sys, torch
from qtts_bench.registry import SYSTEMS
from qtts_bench.runner import run_suite
from qtts_bench.suite import load_suite, validate_suite
from qtts_bench.systems.base import Codec

class TorchCodec(Codec):
    sample_rate = 16000
    def encode(self, audio):
        return audio
    def decode(self, encoded):
        x = torch.from_numpy(encoded)[None, None]
        return torch.nn.functional.conv1d(x, torch.ones(1, 1, 3) / 3, padding=1)[0, 0].numpy()

sys.modules["torch_codec_mod"] = sys.modules[__name__]
SYSTEMS.register("torch_codec", "torch_codec_mod:TorchCodec")
torch.randn(256, 256) @ torch.randn(256, 256)  # start the parent's thread pool before forking
outcomes = run_suite(validate_suite(load_suite(sys.argv[1])), out=sys.argv[2], jobs=2, progress=False)
print("scored", outcomes[0].summary["metrics"]["si_sdr"]["n_scored"])
"""


def test_parallel_workers_do_not_deadlock_after_torch_ran_in_the_parent(write_suite, tmp_path):
    pytest.importorskip("torch", reason="torch not installed (pip install 'qtts-bench[torch]')")
    path = write_suite("""
datasets: {syn: {dataset: synthetic, params: {n: 4, seconds: 0.5}}}
systems: {t: {system: torch_codec}}
metrics: {si_sdr: {}}
""")
    script = tmp_path / "torch_run.py"
    script.write_text(TORCH_RUN)
    proc = subprocess.run([sys.executable, str(script), str(path), str(tmp_path / "out")], capture_output=True,
                          text=True, timeout=60, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin",
                                                       "QTTS_BENCH_CACHE": str(tmp_path / "cache")})
    assert proc.returncode == 0, proc.stderr
    assert "scored 4" in proc.stdout


def test_retry_failed_recomputes_failed_system_calls_and_metric_values_only(write_suite, tmp_path, cli):
    """Resuming keeps failures; --retry-failed recomputes them (a transient system error, a
    metric fault that is gone) in place, keeps every good value, and does not duplicate records."""
    marker = tmp_path / "fault_fixed"
    path = write_suite(f"""
name: retry
warmup: 0
save_audio: true  # metric retries score the saved output (the dummy's call counter would fail a re-run)
datasets:
  syn: {{dataset: synthetic, params: {{n: 4, seconds: 1.0}}}}
systems:
  flaky: {{system: dummy_codec, params: {{fail_calls: [[1]]}}}}
metrics:
  si_sdr: {{}}
  level: {{metric: slow_metric, params: {{fail_items: [syn002], fail_while_missing: "{marker}"}}}}
""")
    folder = tmp_path / "retry" / "syn" / "flaky"
    assert cli("run", str(path), "--out", str(tmp_path), "--no-progress").returncode == 0
    first = {r["id"]: r for r in _records(folder)}
    assert first["syn001"]["status"] == "error" and "injected failure" in first["syn001"]["error"]
    assert "injected transient failure" in first["syn002"]["metrics"]["level"]["reason"]

    resumed = cli("run", str(path), "--out", str(tmp_path), "--no-progress")  # plain resume: nothing to do
    assert resumed.returncode == 0 and _records(folder) == list(first.values())

    marker.touch()
    retried = cli("run", str(path), "--out", str(tmp_path), "--no-progress", "--retry-failed")
    assert retried.returncode == 0, retried.stderr
    assert "retried: 1 utterances whose system had failed" in retried.stdout
    after = {r["id"]: r for r in _records(folder)}
    assert sorted(after) == sorted(first) and len(_records(folder)) == 4  # replaced, not appended
    assert after["syn001"]["status"] == "ok" and after["syn001"]["metrics"]["si_sdr"]["value"] > 0
    assert after["syn002"]["metrics"]["level"]["value"] > 0
    assert after["syn002"]["metrics"]["si_sdr"] == first["syn002"]["metrics"]["si_sdr"]
    for good in ("syn000", "syn003"):
        assert after[good] == first[good]
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["n_system_errors"] == 0 and summary["metrics"]["level"]["n_failed"] == 0
    assert summary["metrics"]["level"]["n_computed"] == 2 and summary["metrics"]["si_sdr"]["n_computed"] == 1

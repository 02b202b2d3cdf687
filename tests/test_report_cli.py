"""`qtts-bench report` and `qtts-bench compare` commands: files written, exit codes, imports."""

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from qtts_bench.commands import compare as compare_cmd
from qtts_bench.commands import report as report_cmd
from report_fixture import PESQ, STOI, WER, codec_store, shifted_copy, sim_meta, write_references, write_run

ROOT = Path(__file__).resolve().parent.parent


def run_command(module, argv):
    parser = argparse.ArgumentParser()
    module.configure(parser)
    return module.main(parser.parse_args(argv))


@pytest.fixture(scope="module")
def pair_store(tmp_path_factory):
    """base / better / worse / flaky runs of one system on 30 utterances."""
    root = tmp_path_factory.mktemp("cmp")
    items = write_references(root / "data", 30)
    metrics = {"pesq_wb": PESQ, "stoi": STOI, "wer": WER}
    runs = {}
    for name, quality, seed, fails in (("base", 0.6, 1, {}), ("same", 0.6, 1, {}), ("worse", 0.45, 2, {}),
                                       ("better", 0.75, 3, {}), ("flaky", 0.6, 1, {"pesq_wb": ["en-u001"]})):
        runs[name] = write_run(root / name, suite="s", dataset="d", label="codec", system="codec", params={},
                               axes={}, metrics=metrics, items=items, quality=quality, seed=seed, failures=fails)
    runs["othersim"] = write_run(root / "othersim", suite="s", dataset="d", label="codec", system="codec",
                                 params={}, axes={}, metrics={**metrics, "sim": sim_meta("ecapa")}, items=items,
                                 quality=0.6, seed=1)
    runs["basesim"] = write_run(root / "basesim", suite="s", dataset="d", label="codec", system="codec",
                                params={}, axes={}, metrics={**metrics, "sim": sim_meta("resemblyzer")},
                                items=items, quality=0.6, seed=1)
    # mean change -0.001 with ±0.02 per-utterance scatter: worse, but not significantly
    runs["noisy"] = shifted_copy(runs["base"], root / "noisy" / "s" / "d" / "codec", "stoi",
                                 [(0.02 if i % 2 else -0.02) - 0.001 for i in range(30)])
    return root, runs


def test_report_writes_every_file(tmp_path, capsys):
    store = codec_store(tmp_path, n=8)
    out = tmp_path / "rep"
    assert run_command(report_cmd, [str(store), "--out", str(out), "--bootstrap", "200", "--no-plots"]) == 0
    printed = capsys.readouterr().out
    for name in ("index.html", "leaderboard.csv", "columns.csv", "ablations.csv",
                 "listen-codec_baselines-bundled.html"):
        assert (out / name).is_file() and str(out / name) in printed
    page = (out / "index.html").read_text()
    assert "mode=wb" in page and "normaliser=whisper-en" in page  # provenance under headers
    assert "on 7 common utt." in page  # one utterance lost to a system error
    assert "Ablation — qdac: n_codebooks" in page and "data:image/png" not in page
    assert "http://" not in page and "https://" not in page  # self-contained


def test_report_copy_audio_makes_the_folder_standalone(tmp_path):
    store = codec_store(tmp_path, n=4)
    out = tmp_path / "rep"
    assert run_command(report_cmd, [str(store), "--out", str(out), "--bootstrap", "50", "--no-plots",
                                    "--copy-audio"]) == 0
    listen = (out / "listen-codec_baselines-bundled.html").read_text()
    assert 'src="audio/' in listen and "../" not in listen
    assert len(list((out / "audio").rglob("*.flac"))) == 4 + 4 + 7 * 4 - 1  # refs, prompts, outputs


def test_report_exit_codes_for_bad_input(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert run_command(report_cmd, [str(tmp_path / "empty"), "--out", str(tmp_path / "o")]) == 2
    assert "no runs found" in capsys.readouterr().err
    items = write_references(tmp_path / "data", 3)
    write_run(tmp_path / "v2", suite="s", dataset="d", label="a", system="a", params={}, axes={},
              metrics={"stoi": STOI}, items=items, quality=0.5, seed=1, schema_version=99)
    assert run_command(report_cmd, [str(tmp_path / "v2"), "--out", str(tmp_path / "o")]) == 2
    assert "schema version 99" in capsys.readouterr().err


def test_report_imports_nothing_heavy(tmp_path):
    store = codec_store(tmp_path, n=4)
    code = (
        "import sys, argparse\n"
        "from qtts_bench.commands import report, compare\n"
        "import qtts_bench.report.plots, qtts_bench.report.compare\n"
        "p = argparse.ArgumentParser(); report.configure(p)\n"
        f"assert report.main(p.parse_args([{str(store)!r}, '--out', {str(tmp_path / 'r')!r}, '--bootstrap', '20',"
        " '--no-plots'])) == 0\n"
        "bad = [m for m in sys.modules if m == 'torch' or m.startswith(('torch.', 'qtts_bench.systems', "
        "'qtts_bench.runner', 'qtts_bench.metrics'))]\n"
        "assert not bad, bad\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def _cmp(runs, a, b, *extra):
    return run_command(compare_cmd, [str(runs[a]), str(runs[b]), "--bootstrap", "500", *extra])


def test_compare_passes_when_nothing_changed(pair_store, capsys):
    _, runs = pair_store
    assert _cmp(runs, "base", "same", "--fail", "pesq_wb:-0.05", "--fail", "wer:+5%") == 0
    assert "passed: 2 gate check(s)" in capsys.readouterr().out


def test_compare_fails_on_regression_only(pair_store, capsys):
    _, runs = pair_store
    assert _cmp(runs, "base", "worse", "--fail", "pesq_wb:-0.05") == 1
    out = capsys.readouterr().out
    assert "FAIL (-0.05)" in out and "worse by" in out
    assert _cmp(runs, "base", "better", "--fail", "pesq_wb:-0.05", "--fail", "wer:+5%") == 0
    # unsigned thresholds use the declared direction too
    assert _cmp(runs, "base", "worse", "--fail", "pesq_wb:0.05") == 1
    assert _cmp(runs, "base", "worse", "--fail", "pesq_wb:-10%") == 1  # 0.48 drop > 10 % of ~3.1
    assert _cmp(runs, "base", "worse", "--fail", "pesq_wb:-20%") == 0


def test_compare_significance_and_new_failures(pair_store):
    _, runs = pair_store
    # a tiny, noisy change crossing a zero-tolerance gate: fails by default, passes when significance is required
    assert _cmp(runs, "base", "noisy", "--fail", "stoi:-0") == 1
    assert _cmp(runs, "base", "noisy", "--fail", "stoi:-0", "--require-significance") == 0
    # same values but one more failed utterance: pairing would hide it, the gate does not
    assert _cmp(runs, "base", "flaky", "--fail", "pesq_wb:-0.05") == 1
    assert _cmp(runs, "base", "flaky", "--fail", "pesq_wb:-0.05", "--allow-new-failures", "1") == 0


def test_compare_usage_errors_exit_2(pair_store, tmp_path, capsys):
    root, runs = pair_store
    assert _cmp(runs, "base", "same", "--fail", "pesq_wb") == 2  # no limit
    assert _cmp(runs, "base", "same", "--fail", "pesq_wb:+0.05") == 2  # wrong sign for higher-is-better
    assert "bad direction is '-'" in capsys.readouterr().err
    assert _cmp(runs, "base", "same", "--fail", "nosuch:-1") == 2
    assert _cmp(runs, "basesim", "othersim", "--fail", "sim:-0.01") == 2  # SIM from two models
    assert "settings differ" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert run_command(compare_cmd, [str(tmp_path / "empty"), str(runs["base"])]) == 2


def test_compare_json_and_results_dirs(pair_store, capsys):
    root, runs = pair_store
    # whole results folders, paired by suite/dataset/label
    assert run_command(compare_cmd, [str(root / "base"), str(root / "worse"), "--bootstrap", "300",
                                     "--fail", "wer:+5%", "--json"]) in (0, 1)
    data = json.loads(capsys.readouterr().out)
    (pair,) = data["pairs"]
    assert pair["name"] == "s/d/codec"
    metrics = {m["metric"]: m for m in pair["metrics"]}
    pesq = metrics["pesq_wb"]
    assert pesq["delta"]["value"] == pytest.approx(pesq["candidate"]["value"] - pesq["baseline"]["value"])
    assert pesq["verdict"] == "worse" and pesq["delta"]["ci_high"] < 0
    assert metrics["wer"]["gate"] == "wer:+5%" and data["passed"] == (not metrics["wer"]["gate_failed"])
    # a metric scored with different settings is shown, not compared
    assert run_command(compare_cmd, [str(runs["basesim"]), str(runs["othersim"]), "--json"]) == 0
    sim = next(m for m in json.loads(capsys.readouterr().out)["pairs"][0]["metrics"] if m["metric"] == "sim")
    assert sim["delta"] is None and "settings differ" in sim["note"]

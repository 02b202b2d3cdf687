"""Issue 10, items 5, 12 and 13: not-applicable is not a failure; validation reads audio headers
and checks metric packages; messages name the file, the real cause and the fix."""

import json
import re
import time

import numpy as np
import pytest

from qtts_bench.audio import Audio, write_audio
from qtts_bench.errors import ConfigError, MetricFailure, NotApplicable
from qtts_bench.metrics.base import Inputs
from qtts_bench.suite import load_suite, validate_suite
from qtts_bench.testing import speech_like


def _inputs(**info) -> Inputs:
    return Inputs("u", Audio(np.zeros(1600, np.float32), 16000), system_info=info)


# ------------------------------------------------------------------ 5: not applicable
def test_metrics_that_do_not_apply_raise_not_applicable():
    from qtts_bench.metrics.codebook import CodebookEntropy, CodebookPerplexity
    from qtts_bench.metrics.speed import PeakMemory, Rtf, Ttft
    from qtts_bench.systems.outside import UNTIMED

    for metric in (CodebookPerplexity(), CodebookEntropy()):
        with pytest.raises(NotApplicable, match="emits no codec tokens"):
            metric.score(_inputs(codebook_size=16))
    with pytest.raises(NotApplicable, match="does not stream"):
        Ttft().score(_inputs(seconds=1.0, audio_seconds=1.0, ttft_seconds=None))
    for metric in (Rtf(), Ttft(), PeakMemory()):
        with pytest.raises(NotApplicable, match="outside the harness"):
            metric.score(_inputs(seconds=None, audio_seconds=1.0, untimed=UNTIMED))
    # a real failure stays a failure: a timed system whose timing is missing is a bug, not n/a
    with pytest.raises(MetricFailure) as err:
        Rtf().score(_inputs(audio_seconds=1.0))
    assert not isinstance(err.value, NotApplicable)


def test_stored_entry_and_summary_count_not_applicable_apart_from_failures():
    from qtts_bench.metrics.codebook import CodebookPerplexity
    from qtts_bench.runner import metric_entry

    entry = metric_entry(NotApplicable("the system emits no codec tokens"))
    assert entry == {"value": None, "reason": "the system emits no codec tokens", "not_applicable": True}
    assert "not_applicable" not in metric_entry(MetricFailure("too short"))
    old = {"value": None, "reason": "the system emits no codec tokens"}  # results written before the flag
    block = CodebookPerplexity().aggregate([entry, entry, {"value": None, "reason": "too short"}, old])
    assert block["n_not_applicable"] == 2 and block["not_applicable_reasons"] == {
        "the system emits no codec tokens": 2}
    assert block["n_failed"] == 2 and block["failure_reasons"] == {
        "too short": 1, "the system emits no codec tokens": 1}
    assert block["n_scored"] == 0 and block["value"] is None


SUITE_NA = """
name: na
datasets:
  syn: {dataset: synthetic, params: {n: 3, seconds: 0.5}}
systems:
  passthrough: {}
  tokens: {system: dummy_token_codec}
metrics:
  si_sdr: {}
  codebook_perplexity: {}
  ttft: {}
"""


@pytest.fixture(scope="module")
def na_results(tmp_path_factory):
    """One run of a classical codec and a token codec with codebook and streaming metrics."""
    import subprocess
    import sys

    from tests.conftest import ROOT

    tmp = tmp_path_factory.mktemp("na")
    suite = tmp / "na.yaml"
    suite.write_text(SUITE_NA)
    proc = subprocess.run([sys.executable, "-m", "qtts_bench.cli", "run", str(suite), "--out", str(tmp / "out"),
                           "--no-progress"], capture_output=True, text=True, timeout=300,
                          env={**__import__("os").environ, "PYTHONPATH": str(ROOT),
                               "QTTS_BENCH_CACHE": str(tmp / "cache")})
    assert proc.returncode == 0, proc.stderr
    return tmp / "out", proc.stdout


def test_run_summary_and_cli_table_do_not_count_not_applicable_as_failed(na_results):
    out, stdout = na_results
    folder = out / "na" / "syn" / "passthrough"
    record = json.loads((folder / "items.jsonl").read_text().splitlines()[0])
    assert record["metrics"]["codebook_perplexity"]["not_applicable"] is True
    summary = json.loads((folder / "summary.json").read_text())["metrics"]
    assert summary["codebook_perplexity"]["n_failed"] == 0 and summary["codebook_perplexity"]["n_not_applicable"] == 3
    assert summary["ttft"]["n_failed"] == 0 and summary["ttft"]["n_not_applicable"] == 3
    lines = stdout.splitlines()
    header = lines[0].split()
    assert header[-4:] == ["n", "failed", "n/a", "new"]
    rows = {line.split()[0]: line.split() for line in lines[1:] if line.startswith("syn/")}
    # passthrough: si_sdr scored; codebook and ttft do not apply; nothing failed
    assert rows["syn/passthrough"][2:] == ["n/a", "n/a", "3", "0", "3", "3"]
    assert rows["syn/tokens"][3] == "n/a" and rows["syn/tokens"][-3:] == ["0", "3", "3"]


def test_report_shows_not_applicable_not_failed(na_results, tmp_path):
    from qtts_bench.report.render import write_report
    from qtts_bench.report.table import ReportOptions

    out, _ = na_results
    report, files = write_report([out], tmp_path / "report", ReportOptions(n_resamples=50), plots=False,
                                 listen=False)
    (table,) = report.tables
    cells = {row.name: row.cells for row in table.rows}
    cell = cells["passthrough"]["codebook_perplexity"]
    assert cell.status == "not_applicable" and cell.n_failed == 0 and cell.n_not_applicable == 3
    assert cells["tokens"]["codebook_perplexity"].status == "ok"
    assert cells["tokens"]["codebook_perplexity"].n_failed == 0
    page = files.index.read_text()
    assert "n/a (not applicable)" in page
    assert "no utterance scored" not in page and "all failed" not in page
    assert '<span class="f">' not in page  # no cell shows a failure count
    assert "not applicable to passthrough" in page  # the table's note
    from qtts_bench.report.csv import leaderboard_rows

    _, rows = leaderboard_rows(report)
    by_run = {r["run"]: r for r in rows}
    assert by_run["passthrough"]["codebook_perplexity.n_failed"] == "0"
    assert by_run["passthrough"]["codebook_perplexity.n_not_applicable"] == "3"
    assert by_run["passthrough"]["codebook_perplexity.status"] == "not_applicable"


def test_report_of_old_results_without_the_flag_keeps_failures(na_results, tmp_path):
    import shutil

    from qtts_bench.report.load import load_runs
    from qtts_bench.report.table import ReportOptions, build_report

    out, _ = na_results
    old = tmp_path / "old"
    shutil.copytree(out, old)
    items = old / "na" / "syn" / "passthrough" / "items.jsonl"
    items.write_text(items.read_text().replace(', "not_applicable": true', ""))
    runs, _ = load_runs([old])
    (table,) = build_report(runs, options=ReportOptions(n_resamples=50)).tables
    cell = {row.name: row.cells for row in table.rows}["passthrough"]["codebook_perplexity"]
    assert cell.status == "all_failed" and cell.n_failed == 3 and cell.n_not_applicable == 0


# ------------------------------------------------------------------ 12: validation checks what it can
def _folder_suite(write_suite, folder, metrics="si_sdr: {}"):
    return write_suite(f"""
name: v
datasets:
  f: {{dataset: folder, params: {{path: {folder}}}}}
systems:
  passthrough: {{}}
metrics:
  {metrics}
""")


def test_validate_refuses_a_folder_of_unreadable_audio(write_suite, tmp_path, cli):
    folder = tmp_path / "audio"
    folder.mkdir()
    write_audio(folder / "good.wav", Audio(speech_like(0.5, 16000, 1), 16000))
    (folder / "bad.wav").write_bytes(b"RIFF\x00\x00not a wav")
    (folder / "text.flac").write_text("this is not audio")
    path = _folder_suite(write_suite, folder)
    with pytest.raises(ConfigError) as err:
        validate_suite(load_suite(path))
    message = str(err.value)
    assert "datasets.f: 2 unreadable audio file(s)" in message
    assert f"item 'bad': audio {folder / 'bad.wav'}" in message
    assert f"item 'text': audio {folder / 'text.flac'}" in message
    proc = cli("validate", str(path))
    assert proc.returncode == 2 and "bad.wav" in proc.stderr and "Traceback" not in proc.stderr


def test_validate_checks_prompt_audio_and_empty_files(write_suite, tmp_path):
    write_audio(tmp_path / "a.wav", Audio(speech_like(0.5, 16000, 1), 16000))
    write_audio(tmp_path / "empty.wav", Audio(np.zeros(0, np.float32), 16000))
    (tmp_path / "p.wav").write_bytes(b"garbage")
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(json.dumps({"id": "u1", "audio": "a.wav", "prompt_audio": "p.wav"}) + "\n"
                        + json.dumps({"id": "u2", "audio": "empty.wav", "prompt_audio": "p.wav"}) + "\n")
    path = write_suite(f"""
datasets: {{m: {{dataset: manifest, params: {{path: {manifest}}}}}}}
systems: {{passthrough: {{}}}}
metrics: {{si_sdr: {{}}}}
""")
    with pytest.raises(ConfigError) as err:
        validate_suite(load_suite(path))
    message = str(err.value)
    assert "3 unreadable audio file(s)" in message
    assert f"item 'u1': prompt_audio {tmp_path / 'p.wav'}: cannot read the audio header" in message
    assert f"item 'u2': audio {tmp_path / 'empty.wav'}: holds no samples" in message


def test_header_check_of_the_bundled_set_is_fast():
    from qtts_bench.registry import DATASETS
    from qtts_bench.suite import check_audio_headers

    dataset = DATASETS.create("bundled", name="bundled")
    started = time.perf_counter()
    n = check_audio_headers(dataset, "bundled")
    elapsed = time.perf_counter() - started
    assert n == len(dataset.items) == 170
    assert elapsed < 2.0, f"{elapsed:.2f} s for {n} headers"  # measured: about 0.03 s


def test_metric_unavailable_is_checked_by_validate(write_suite, tmp_path, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "speechmos" else real(name, *a))
    folder = tmp_path / "audio"
    write_audio(folder / "a.wav", Audio(speech_like(0.5, 16000, 1), 16000))
    path = _folder_suite(write_suite, folder, "dnsmos_ovrl: {}")
    with pytest.raises(ConfigError, match=re.escape("metrics.dnsmos_ovrl: 'speechmos' is not installed (needed "
                                                    "for dnsmos_ovrl). Install it with: pip install 'qtts-bench[mos]'")):
        validate_suite(load_suite(path))


@pytest.mark.parametrize("name, params, module, extra", [
    ("wer", {}, "faster_whisper", "asr"),
    ("wer", {}, "whisper_normalizer", "asr"),
    ("wer", {"backend": "transformers"}, "transformers", "asr-transformers"),
    ("sim_o", {}, "resemblyzer", "speaker"),
    ("sim_r", {"backend": "wavlm_ecapa"}, "torch", "torch"),
    ("plcmos", {}, "onnxruntime", "mos"),
    ("utmos", {}, "torch", "torch"),
])
def test_metric_unavailable_names_the_extra(monkeypatch, tmp_path, name, params, module, extra):
    import importlib.util

    from qtts_bench.registry import METRICS

    if name == "utmos":  # its local files must exist too (they are never downloaded)
        (tmp_path / "hubconf.py").write_text("")
        (tmp_path / "ckpt.pt").write_bytes(b"x")
        params = {"repo": str(tmp_path), "checkpoint": str(tmp_path / "ckpt.pt")}
    metric = METRICS.create(name, **params)
    assert metric.unavailable() is None  # everything is installed here
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == module else real(n, *a))
    why = metric.unavailable()
    assert why and f"pip install 'qtts-bench[{extra}]'" in why


def test_utmos_without_its_local_files_is_unavailable_with_the_reason():
    from qtts_bench.registry import METRICS

    assert "utmos needs 'repo'" in METRICS.create("utmos").unavailable()


def test_metrics_without_extras_are_always_available():
    from qtts_bench.metrics.base import Metric
    from qtts_bench.registry import METRICS

    assert Metric.unavailable(METRICS.create("pesq_wb")) is None
    assert METRICS.create("si_sdr").unavailable() is None


# ------------------------------------------------------------------ 13: messages
def test_cuda_without_cuda_says_so_before_jobs(write_suite, tmp_path):
    import torch

    from qtts_bench.runner import run_suite

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    validated = validate_suite(load_suite(write_suite(SUITE_NA)))
    with pytest.raises(ConfigError) as err:
        run_suite(validated, device="cuda", jobs=2, out=tmp_path / "out", progress=False)
    assert "CUDA is not available" in str(err.value) and "torch.cuda.is_available() is False" in str(err.value)
    assert "jobs" not in str(err.value) and "--device cpu" in str(err.value)
    assert not (tmp_path / "out").exists()


def test_cuda_without_torch_says_torch_is_not_installed(monkeypatch):
    import importlib.util

    from qtts_bench.provenance import resolve_device

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "torch" else real(n, *a))
    with pytest.raises(ConfigError, match="CUDA is not available: torch is not installed"):
        resolve_device("cuda:0")
    assert resolve_device("auto") == "cpu" and resolve_device("cpu") == "cpu"


def test_cli_device_cuda_message(write_suite, cli):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    proc = cli("run", str(write_suite(SUITE_NA)), "--device", "cuda", "--jobs", "2", "--no-progress")
    assert proc.returncode == 2 and "CUDA is not available" in proc.stderr and "jobs" not in proc.stderr


def test_score_text_refuses_an_unknown_language(cli):
    from qtts_bench.commands.score_text import score_transcript

    with pytest.raises(ConfigError, match="--language: unknown language 'klingon'.*: af, am, .* en, .* zh, yue"):
        score_transcript("hello", "hello", language="klingon")
    assert score_transcript("hello", "hello", language="en-US")["language"] == "en"
    proc = cli("score", "--text", "hello", "--hypothesis", "hello", "--language", "klingon", "--json")
    assert proc.returncode == 2 and "unknown language 'klingon'" in proc.stderr


def test_asr_metric_refuses_an_unknown_language(write_suite, tmp_path):
    from qtts_bench.registry import METRICS

    with pytest.raises(ConfigError, match="metric 'wer': language: unknown language 'klingon'"):
        METRICS.create("wer", language="klingon")
    assert METRICS.create("cer", language="zh-CN").params["language"] == "zh-CN"
    folder = tmp_path / "audio"
    write_audio(folder / "a.wav", Audio(speech_like(0.5, 16000, 1), 16000))
    (folder / "a.txt").write_text("hello")
    path = _folder_suite(write_suite, folder, "wer: {params: {language: klingon}}")
    with pytest.raises(ConfigError, match=r"metrics\.wer\.params: metric 'wer': language: unknown language"):
        validate_suite(load_suite(path))


def test_language_list_matches_faster_whisper():
    from qtts_bench.metrics.asr.metric import WHISPER_LANGUAGES

    tokenizer = pytest.importorskip("faster_whisper.tokenizer")
    assert set(WHISPER_LANGUAGES) == set(tokenizer._LANGUAGE_CODES)

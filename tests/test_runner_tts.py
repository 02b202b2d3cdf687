"""End-to-end runs of TTS systems through the one runner path (seconds).

The runner calls ``System.generate`` for every kind of system; these tests drive TTS with
prompts and streaming, a TTS that emits codec tokens, and a system of a kind the runner has never
heard of, then render the report from what the runs stored.
"""

import json

import numpy as np
import pytest

from qtts_bench.audio import Audio, write_audio
from qtts_bench.errors import ConfigError
from qtts_bench.registry import SYSTEMS
from qtts_bench.runner import run_suite
from qtts_bench.suite import load_suite, validate_suite
from qtts_bench.systems.base import Generation, Request, System
from qtts_bench.testing import speech_like


def _run(path, **kwargs):
    return run_suite(validate_suite(load_suite(path)), progress=False, command=["test"], **kwargs)


def _records(outcome):
    return [json.loads(line) for line in (outcome.folder / "items.jsonl").read_text().splitlines()]


def _manifest(tmp_path, silent_prompt_for=()):
    """Three items with text, reference and prompt; the prompt of the ids given is silent."""
    rows = []
    for i in range(3):
        ref, prompt = tmp_path / f"ref{i}.wav", tmp_path / f"prompt{i}.wav"
        write_audio(ref, Audio(speech_like(1.2, 16000, seed=i), 16000))
        silent = f"u{i}" in silent_prompt_for
        samples = np.zeros(16000, np.float32) if silent else speech_like(1.5, 16000, seed=100 + i)
        write_audio(prompt, Audio(samples, 16000))
        rows.append({"id": f"u{i}", "audio": str(ref), "text": f"word{i} alpha bravo", "language": "en",
                     "prompt_audio": str(prompt), "prompt_text": "a prompt", "category": "cat" + "ab"[i % 2],
                     "spoken_text": f"word {i} alpha bravo"})
    path = tmp_path / "items.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_tts_with_prompts_and_streaming_runs_and_reports(write_suite, tmp_path, cli):
    manifest = _manifest(tmp_path)
    path = write_suite(f"""
name: tts_e2e
save_audio: true
datasets:
  set: {{dataset: manifest, params: {{path: {manifest}}}}}
systems:
  plain: {{system: dummy_tts, params: {{require_prompt: true}}}}
  streamed: {{system: dummy_tts, params: {{chunks: 3, first_chunk_delay: 0.05}}}}
metrics:
  rtf: {{}}
  ttft: {{}}
  dnsmos_p808: {{}}
""")
    outcomes = {o.label: o for o in _run(path, out=tmp_path / "out")}
    plain, streamed = _records(outcomes["plain"]), _records(outcomes["streamed"])
    assert [r["status"] for r in plain + streamed] == ["ok"] * 6
    # The prompt reached the system (require_prompt fails without it); items keep category and spoken form.
    assert {r["category"] for r in plain} == {"cata", "catb"} and plain[0]["spoken_text"] == "word 0 alpha bravo"
    for r in streamed:  # TTFT is the first chunk's time, measured, and no later than the whole call
        ttft, seconds = r["metrics"]["ttft"]["value"], r["system"]["seconds"]
        assert 0.05 <= ttft <= seconds
    assert all(r["metrics"]["ttft"]["value"] is None and "does not stream" in r["metrics"]["ttft"]["reason"]
               for r in plain)
    assert all(r["metrics"]["dnsmos_p808"]["value"] is not None for r in plain + streamed)
    summary = json.loads((outcomes["streamed"].folder / "summary.json").read_text())
    assert summary["metrics"]["ttft"]["n_scored"] == 3 and summary["metrics"]["ttft"]["p50"] >= 0.05

    report = tmp_path / "report"
    proc = cli("report", str(tmp_path / "out" / "tts_e2e"), "--out", str(report))
    assert proc.returncode == 0, proc.stderr
    html = (report / "index.html").read_text()
    assert "plain" in html and "streamed" in html and "ttft" in html


def test_codec_token_tts_hands_its_codes_to_the_codebook_metrics(write_suite, tmp_path):
    path = write_suite("""
name: codes
datasets:
  syn: {dataset: synthetic, params: {n: 3}}
systems:
  lm: {system: dummy_codec_lm_tts, params: {n_codebooks: 2, codebook_size: 16, frames_per_word: 4}}
metrics:
  codebook_perplexity: {}
  codebook_entropy: {}
""")
    (outcome,) = _run(path, out=tmp_path / "out")
    records = _records(outcome)
    for r in records:  # 3 words x 4 frames = 12 distinct codes per codebook: perplexity 12, entropy log2 12
        assert r["metrics"]["codebook_perplexity"]["value"] == pytest.approx(12.0)
        assert r["metrics"]["codebook_entropy"]["value"] == pytest.approx(np.log2(12))
        assert r["system"]["codebook_size"] == 16 and r["system"]["n_codebooks"] == 2
    pooled = outcome.summary["metrics"]["codebook_perplexity"]["pooled"]
    assert pooled["frames"] == 36 and pooled["n_utterances"] == 3


class Beeper(System):
    """A system of a kind the runner knows nothing about: it needs no item field at all."""

    kind = "beeper"
    needs = ()

    def generate(self, request: Request) -> Generation:
        t = np.arange(8000) / self.sample_rate
        return Generation((0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), seconds=0.5)


def test_any_kind_of_system_runs_without_a_branch_on_kind(write_suite, tmp_path, monkeypatch):
    monkeypatch.setitem(SYSTEMS._entries, "beeper", type(SYSTEMS.entry("dummy_tts"))(
        "beeper", f"{__name__}:Beeper", "test"))
    path = write_suite("""
name: beep
datasets:
  syn: {dataset: synthetic, params: {n: 2}}
systems:
  beeper: {}
metrics:
  rtf: {}
""")
    (outcome,) = _run(path, out=tmp_path / "out")
    values = [r["metrics"]["rtf"]["value"] for r in _records(outcome)]
    assert values == [pytest.approx(1.0), pytest.approx(1.0)]  # 0.5 s of work for 0.5 s of audio


def test_unusable_prompt_fails_the_system_that_needs_it_and_only_the_metrics_that_need_it(
        write_suite, tmp_path):
    manifest = _manifest(tmp_path, silent_prompt_for=("u1",))
    path = write_suite(f"""
name: prompts
datasets:
  set: {{dataset: manifest, params: {{path: {manifest}}}}}
systems:
  needs_prompt: {{system: dummy_tts, params: {{require_prompt: true}}}}
  no_prompt: {{system: dummy_tts}}
metrics:
  rtf: {{}}
  sim_o: {{}}
""")
    outcomes = {o.label: _records(o) for o in _run(path, out=tmp_path / "out")}
    bad = {r["id"]: r for r in outcomes["needs_prompt"]}["u1"]
    assert bad["status"] == "error" and "prompt audio" in bad["error"] and "silence" in bad["error"]
    other = {r["id"]: r for r in outcomes["no_prompt"]}["u1"]
    assert other["status"] == "ok" and other["metrics"]["rtf"]["value"] is not None
    assert other["metrics"]["sim_o"]["value"] is None and "prompt unusable" in other["metrics"]["sim_o"]["reason"]
    fine = {r["id"]: r for r in outcomes["no_prompt"]}["u0"]
    assert fine["metrics"]["sim_o"]["value"] is not None


@pytest.mark.parametrize("text, reason", [("", "no text"), ("   ", "no text")])
def test_empty_text_is_a_reasoned_failure(text, reason):
    from qtts_bench.testing import DummyTTS

    with pytest.raises(Exception, match=reason):
        DummyTTS().generate(Request("x", text=text))


def test_draws_get_their_own_seeds_and_records(write_suite, tmp_path):
    path = write_suite("""
name: draws
samples: 3
datasets:
  syn: {dataset: synthetic, params: {n: 2}}
systems:
  t: {system: dummy_tts}
metrics:
  rtf: {}
""")
    (outcome,) = _run(path, out=tmp_path / "out")
    records = _records(outcome)
    assert sorted((r["id"], r["draw"]) for r in records) == [(f"syn00{i}", d) for i in range(2) for d in range(3)]
    assert len({r["system"]["seed"] for r in records}) == 6
    assert len(outcome.summary["metrics"]["rtf"]["draws"]["values"]) == 3
    (again,) = _run(path, out=tmp_path / "out")  # resume: every (id, draw) is done
    assert again.computed == 0


def test_unknown_metric_parameter_is_rejected_at_validation(write_suite):
    path = write_suite("""
datasets:
  syn: {dataset: synthetic, params: {n: 1}}
systems:
  t: {system: dummy_tts}
metrics:
  rtf: {params: {batch_size: 64}}
""")
    with pytest.raises(ConfigError, match=r"metrics.rtf.params: .*unknown parameter\(s\) batch_size"):
        validate_suite(load_suite(path))


def test_a_system_that_is_not_installed_fails_validation_unless_optional(write_suite, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no flite on this PATH
    text = """
datasets:
  syn: {{dataset: synthetic, params: {{n: 1}}}}
systems:
  t: {{system: dummy_tts}}
  flite: {{optional: {optional}}}
metrics:
  rtf: {{}}
"""
    with pytest.raises(ConfigError, match="systems.flite: flite is not installed: apt-get install flite"):
        validate_suite(load_suite(write_suite(text.format(optional="false"))))
    validated = validate_suite(load_suite(write_suite(text.format(optional="true"))))
    assert [p.label for p in validated.points] == ["t"]
    assert "apt-get install flite" in validated.skipped["flite"]


def test_an_optional_metric_that_is_not_set_up_is_skipped_but_a_typo_still_fails(write_suite):
    text = """
datasets:
  syn: {{dataset: synthetic, params: {{n: 1}}}}
systems:
  t: {{system: dummy_tts}}
metrics:
  rtf: {{}}
  utmos: {{optional: {optional}{params}}}
"""
    with pytest.raises(ConfigError, match="metrics.utmos"):  # not set up, not optional
        validate_suite(load_suite(write_suite(text.format(optional="false", params=""))))
    validated = validate_suite(load_suite(write_suite(text.format(optional="true", params=""))))
    assert list(validated.metrics) == ["rtf"] and "metric utmos" in validated.skipped
    with pytest.raises(ConfigError, match="unknown parameter"):  # optional never hides a misspelt parameter
        validate_suite(load_suite(write_suite(text.format(optional="true", params=", params: {repoo: x}"))))

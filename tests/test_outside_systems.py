"""TTS run outside the harness: the ``outputs`` and ``command`` systems, and ``--set`` (seconds)."""

import json
import sys
import textwrap
import time

import numpy as np
import pytest

from qtts_bench.audio import Audio, read_audio, write_audio
from qtts_bench.errors import ConfigError, SystemFailure
from qtts_bench.metrics.base import Inputs
from qtts_bench.registry import METRICS, SYSTEMS
from qtts_bench.suite import load_suite, validate_suite
from qtts_bench.systems.base import Request
from qtts_bench.systems.outside import UNTIMED, CommandTTS, OutputsTTS
from qtts_bench.testing import speech_like

from conftest import ROOT


def _records(folder):
    return {r["id"]: r for r in map(json.loads, (folder / "items.jsonl").read_text().splitlines())}


def _summary(folder):
    return json.loads((folder / "summary.json").read_text())


# ------------------------------------------------------------------------------- outputs
def test_outputs_reproduce_a_harness_run_from_its_saved_audio(write_suite, tmp_path, cli):
    """Suite A runs dummy_tts with save_audio; suite B reads A's saved files with ``outputs``.

    The runner saves exactly what it scored (float32 WAV), so B, scoring those files, must
    reproduce A's per-utterance values exactly, and equal the metrics applied to the files.
    (dummy_tts speaks 0.9 s against 1.0 s references: the metrics trim to the shorter.)
    """
    data = tmp_path / "data"
    common = f"""
warmup: 0
datasets:
  syn: {{dataset: synthetic, params: {{n: 3, seconds: 1.0, with_prompt: true, folder: {data}}}}}
metrics:
  stoi: {{params: {{align: trim}}}}
  si_sdr: {{params: {{align: trim}}}}
"""
    out = tmp_path / "out"
    a = write_suite("name: a\nsave_audio: true\nsystems: {tts: {system: dummy_tts}}\n" + common, "a.yaml")
    proc = cli("run", str(a), "--out", str(out), "--no-progress")
    assert proc.returncode == 0, proc.stderr
    run_a = out / "a" / "syn" / "tts"
    saved = run_a / "audio"
    assert sorted(p.name for p in saved.iterdir()) == ["syn000.wav", "syn001.wav", "syn002.wav"]

    b = write_suite("name: b\nsystems: {mytts: {system: outputs, params: {dir: %s, pattern: '{flat_id}'}}}\n" % saved
                    + common + "  rtf: {}\n", "b.yaml")
    proc = cli("run", str(b), "--out", str(out), "--no-progress")
    assert proc.returncode == 0, proc.stderr
    run_b = out / "b" / "syn" / "mytts"
    recs_a, recs_b = _records(run_a), _records(run_b)
    assert set(recs_b) == set(recs_a) == {"syn000", "syn001", "syn002"}

    metrics = {k: METRICS.create(k, align="trim") for k in ("stoi", "si_sdr")}
    for item_id, rec in recs_b.items():
        assert rec["status"] == "ok"
        assert rec["system"]["output_file"] == str(saved / f"{item_id}.wav")
        assert rec["system"]["seconds"] is None and len(rec["system"]["output_sha256"]) == 64
        assert rec["metrics"]["rtf"]["value"] is None and rec["metrics"]["rtf"]["reason"] == UNTIMED
        estimate = read_audio(saved / f"{item_id}.wav")
        reference = read_audio(rec["reference_audio"])
        inputs = Inputs(item_id, estimate, reference, text=rec["text"], language=rec["language"])
        for key, metric in metrics.items():
            direct = metric.score(inputs).value  # in this process: BLAS threading may round differently
            assert rec["metrics"][key]["value"] == pytest.approx(direct, rel=1e-12, abs=1e-12)
            assert rec["metrics"][key]["value"] == recs_a[item_id]["metrics"][key]["value"]  # A exactly
    run = json.loads((run_b / "run.json").read_text())
    prov = run["system"]["provenance"]
    assert prov["n_files"] == 3 and prov["dir"] == str(saved) and len(prov["listing_sha256"]) == 64
    assert run["system"]["sample_rate"] == 16000
    rtf = _summary(run_b)["metrics"]["rtf"]
    assert rtf["value"] is None and rtf["n_scored"] == 0
    assert {**rtf["failure_reasons"], **rtf.get("not_applicable_reasons", {})} == {UNTIMED: 3}


def _seedtts_layout(root, missing="utt1"):
    """seed-tts-eval layout: <root>/en/meta.lst (5 fields, with ground truth), prompt-wavs/, wavs/,
    and <root>/outputs/<utt>.wav for every line but ``missing``."""
    en = root / "en"
    lines = []
    for i in range(3):
        write_audio(en / "prompt-wavs" / f"p{i}.wav", Audio(speech_like(1.0, 16000, 100 + i), 16000))
        write_audio(en / "wavs" / f"utt{i}.wav", Audio(speech_like(1.0, 16000, 200 + i), 16000))
        lines.append(f"utt{i}|the prompt {i}|prompt-wavs/p{i}.wav|alpha bravo charlie {i}|wavs/utt{i}.wav")
    (en / "meta.lst").write_text("\n".join(lines) + "\n")
    outputs = root / "outputs"
    for i in range(3):
        if f"utt{i}" != missing:  # 24 kHz: read at the files' own rate (the first file's)
            write_audio(outputs / f"utt{i}.wav", Audio(speech_like(1.0, 24000, 300 + i), 24000))
    return en / "meta.lst", outputs


def test_seedtts_layout_end_to_end_counts_a_missing_output_as_failed(write_suite, tmp_path, cli):
    meta, outputs = _seedtts_layout(tmp_path / "seed")
    suite = write_suite("""
name: mini_seedtts
warmup: 0
datasets:
  seedtts_en: {dataset: seedtts, params: {path: "SET-ME: --set datasets.seedtts_en.params.path=...", language: en}}
systems:
  mytts: {system: outputs, params: {dir: "SET-ME: --set systems.mytts.params.dir=..."}}
metrics:
  stoi: {}
  rtf: {}
""")
    out = tmp_path / "out"
    proc = cli("run", str(suite), "--out", str(out), "--no-progress",
               "--set", f"datasets.seedtts_en.params.path={meta}", "--set", f"systems.mytts.params.dir={outputs}")
    assert proc.returncode == 0, proc.stderr
    folder = out / "mini_seedtts" / "seedtts_en" / "mytts"
    recs = _records(folder)
    assert set(recs) == {"utt0", "utt1", "utt2"}  # never skipped
    assert recs["utt1"]["status"] == "error" and str(outputs / "utt1.wav") in recs["utt1"]["error"]
    summary = _summary(folder)
    assert summary["n_system_errors"] == 1
    stoi = summary["metrics"]["stoi"]
    assert stoi["n_scored"] == 2 and stoi["n_failed"] == 1
    [reason] = stoi["failure_reasons"]
    assert "output file not found" in reason and str(outputs / "utt1.wav") in reason
    run = json.loads((folder / "run.json").read_text())
    assert run["system"]["sample_rate"] == 24000
    assert run["suite"]["resolved"]["systems"]["mytts"]["params"]["dir"] == str(outputs)
    assert run["suite"]["resolved"]["datasets"]["seedtts_en"]["params"]["path"] == str(meta)


@pytest.mark.parametrize("language", ["en", "zh"])
def test_shipped_seedtts_suites_say_what_to_set_and_where_to_get_it(tmp_path, cli, language):
    suite = str(ROOT / "suites" / f"seedtts_{language}.yaml")
    proc = cli("validate", suite)
    assert proc.returncode == 2
    for needle in (f"--set datasets.seedtts_{language}.params.path=", "--set systems.mytts.params.dir=",
                   "github.com/BytedanceSpeech/seed-tts-eval", "seedtts_testset"):
        assert needle in proc.stderr, proc.stderr
    proc = cli("validate", suite, "--set", f"datasets.seedtts_{language}.params.path={tmp_path}/nope/meta.lst")
    assert proc.returncode == 2 and f"{tmp_path}/nope/meta.lst" in proc.stderr
    assert f"--set datasets.seedtts_{language}.params.path=" in proc.stderr

    meta, outputs = _seedtts_layout(tmp_path / "seed")
    proc = cli("validate", suite, "--set", f"datasets.seedtts_{language}.params.path={meta}")
    assert proc.returncode == 2 and "systems.mytts.params" in proc.stderr and "'dir' is not set" in proc.stderr
    proc = cli("validate", suite, "--set", f"datasets.seedtts_{language}.params.path={meta}",
               "--set", f"systems.mytts.params.dir={tmp_path}/no_outputs")
    assert proc.returncode == 2 and f"not found: {tmp_path}/no_outputs" in proc.stderr
    proc = cli("validate", suite, "--set", f"datasets.seedtts_{language}.params.path={meta}",
               "--set", f"systems.mytts.params.dir={outputs}")
    assert proc.returncode == 0, proc.stderr


def test_outputs_parameter_errors_and_file_failures(tmp_path):
    with pytest.raises(ConfigError, match="not found: .*missing_dir"):
        OutputsTTS(str(tmp_path / "missing_dir"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="holds no .wav or .flac"):
        OutputsTTS(str(tmp_path / "empty"))
    folder = tmp_path / "outs"
    write_audio(folder / "a.wav", Audio(speech_like(0.5, 22050, 1), 22050))
    with pytest.raises(ConfigError, match=r"unknown placeholder \{utt\}"):
        OutputsTTS(str(folder), pattern="{utt}")
    with pytest.raises(ConfigError, match="inside 'dir'"):
        OutputsTTS(str(folder), pattern="../{id}")

    system = OutputsTTS(str(folder), sample_rate=16000)
    system.load()
    gen = system.generate(Request("a"))
    assert system.sample_rate == 16000 and gen.extra["output_sample_rate"] == 22050
    assert len(gen.audio) == pytest.approx(8000, abs=2) and gen.seconds is None
    write_audio(folder / "sub" / "b.flac", Audio(speech_like(0.5, 16000, 2), 16000))
    assert len(OutputsTTS(str(folder), pattern="{basename}").path_for("sub/a")) == 2
    assert OutputsTTS(str(folder), pattern="{id}").generate(Request("sub/b")).extra["output_file"].endswith("b.flac")
    with pytest.raises(SystemFailure, match="outside dir"):
        system.generate(Request("../../etc/passwd"))
    (folder / "corrupt.wav").write_bytes(b"RIFF\x00\x00not a wav")
    with pytest.raises(SystemFailure, match="corrupt.wav"):
        system.generate(Request("corrupt"))
    write_audio(folder / "silent.wav", Audio(np.zeros(1000, np.float32), 16000))
    with pytest.raises(SystemFailure, match="silent.wav is all silence"):
        system.generate(Request("silent"))
    write_audio(folder / "a.flac", Audio(speech_like(0.5, 16000, 3), 16000))
    with pytest.raises(SystemFailure, match="ambiguous"):
        system.generate(Request("a"))


# ------------------------------------------------------------------------------- command
SCRIPT = textwrap.dedent("""
    import json, math, os, subprocess, sys, time, wave
    args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
    with open(os.path.join(args["--log"], args["--id"] + ".json"), "w") as fh:
        json.dump(sys.argv[1:], fh)
    text = args["--text"]
    if text.startswith("FAIL"):
        sys.stderr.write("x" * 600 + " the model broke")
        sys.exit(3)
    if text.startswith("SLEEP"):  # a grandchild in the same process group must die with it
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(1.5); open(%r, 'w')" % args["--marker"]])
        time.sleep(30)
    if text.startswith("NOTHING"):
        sys.exit(0)
    rate = 22050
    with wave.open(args["--out"], "wb") as w:
        w.setnchannels(1); w.setsampwidth(2); w.setframerate(rate)
        w.writeframes(b"".join(int(8000 * math.sin(2 * math.pi * 220 * n / rate)).to_bytes(2, "little", signed=True)
                               for n in range(rate // 2)))
""")


def _command_setup(tmp_path):
    script = tmp_path / "fake_tts.py"
    script.write_text(SCRIPT)
    log = tmp_path / "log"
    log.mkdir()
    injection = f'a "; touch {tmp_path}/pwned_$$; echo " b $(id) `id` c'
    texts = {"ok": "hello there", "inject": injection, "fail": "FAIL now", "slow": "SLEEP now",
             "nothing": "NOTHING now"}
    prompt = tmp_path / "prompt.wav"
    write_audio(prompt, Audio(speech_like(1.0, 16000, 7), 16000))
    manifest = tmp_path / "m.jsonl"
    manifest.write_text("".join(json.dumps({"id": k, "text": t, "language": "en", "prompt_audio": str(prompt),
                                            "prompt_text": "a prompt"}) + "\n" for k, t in texts.items()))
    command = [sys.executable, str(script), "--text", "{text}", "--out", "{out}", "--id", "{id}",
               "--prompt", "{prompt_audio}", "--prompt-text", "{prompt_text}", "--seed", "{seed}",
               "--lang", "{language}", "--log", str(log), "--marker", str(tmp_path / "grandchild_survived")]
    return script, log, texts, manifest, command


def test_command_runs_per_utterance_without_a_shell(write_suite, tmp_path, cli):
    script, log, texts, manifest, command = _command_setup(tmp_path)
    suite = write_suite(f"""
name: cmd
warmup: 0
datasets: {{m: {{dataset: manifest, params: {{path: {manifest}}}}}}}
systems:
  mine: {{system: command, params: {{command: [{json.dumps(command)}], sample_rate: 16000, timeout: 1}}}}
metrics:
  rtf: {{}}
  peak_memory: {{}}
""")
    started = time.time()
    proc = cli("run", str(suite), "--out", str(tmp_path / "out"), "--no-progress")
    assert proc.returncode == 0, proc.stderr
    assert time.time() - started < 60
    folder = tmp_path / "out" / "cmd" / "m" / "mine"
    recs = _records(folder)
    assert set(recs) == set(texts)  # the run went on past every failure

    ok = recs["ok"]
    assert ok["status"] == "ok" and ok["system"]["seconds"] > 0
    assert ok["system"]["output_sample_rate"] == 22050 and ok["system"]["sample_rate"] == 16000
    assert ok["system"]["audio_seconds"] == pytest.approx(0.5, abs=1e-3)
    assert ok["metrics"]["rtf"]["value"] > 0 and ok["metrics"]["peak_memory"]["value"] > 0
    argv = json.loads((log / "ok.json").read_text())
    assert argv[argv.index("--prompt-text") + 1] == "a prompt" and argv[argv.index("--lang") + 1] == "en"
    assert argv[argv.index("--prompt") + 1].endswith("prompt.wav") and argv[argv.index("--seed") + 1].isdigit()

    # Shell syntax in the text arrives verbatim as one argument, and nothing ran it.
    argv = json.loads((log / "inject.json").read_text())
    assert argv[argv.index("--text") + 1] == texts["inject"]
    assert len(argv) == len(command) - 2
    assert recs["inject"]["status"] == "ok"
    assert not list(tmp_path.glob("pwned_*"))

    assert recs["fail"]["status"] == "error"
    assert "exited with code 3" in recs["fail"]["error"] and recs["fail"]["error"].endswith("the model broke")
    assert len(recs["fail"]["error"]) < 600
    assert "timed out after 1 s" in recs["slow"]["error"]
    assert "wrote no audio" in recs["nothing"]["error"]
    summary = _summary(folder)
    assert summary["n_system_errors"] == 3 and summary["metrics"]["rtf"]["n_scored"] == 2
    run = json.loads((folder / "run.json").read_text())
    assert run["system"]["provenance"]["command"] == command and run["system"]["provenance"]["shell"] is False
    time.sleep(2.0)  # the timed-out command's grandchild would have written its marker by now
    assert not (tmp_path / "grandchild_survived").exists()


def test_command_string_form_and_config_errors(tmp_path):
    script, log, texts, manifest, command = _command_setup(tmp_path)
    line = (f"{sys.executable} {script} --text {{text}} --out {{out}} --id {{id}} --log {log} "
            f"--marker {tmp_path / 'm'}")
    system = CommandTTS(line, sample_rate=22050)
    assert system.needs == ("text",) and system.program == sys.executable  # a venv's symlink kept
    system.load()
    text = "two words; $(id) 'quoted' \"dq\""
    gen = system.generate(Request("s1", text=text, seed=3))
    assert len(gen.audio) == 11025 and gen.seconds > 0
    argv = json.loads((log / "s1.json").read_text())
    assert argv[argv.index("--text") + 1] == text
    assert CommandTTS(command).needs == ("text", "prompt")  # {prompt_audio}: prompts are checked by validation
    with pytest.raises(SystemFailure, match="no prompt audio"):
        CommandTTS(command).generate(Request("p", text="hi"))

    with pytest.raises(ConfigError, match=r"unknown placeholder \{txt\}"):
        CommandTTS([sys.executable, str(script), "{txt}", "{out}"])
    with pytest.raises(ConfigError, match=r"\{out\}"):
        CommandTTS([sys.executable, str(script), "{text}"])
    with pytest.raises(ConfigError, match="not found on PATH"):
        CommandTTS(["surely-not-a-program-xyz", "{out}"])
    with pytest.raises(ConfigError, match="timeout"):
        CommandTTS([sys.executable, "{out}"], timeout=0)
    with pytest.raises(ConfigError, match="format spec"):
        CommandTTS([sys.executable, "{seed:04d}", "{out}"])


def test_unknown_placeholder_fails_suite_validation(write_suite, tmp_path):
    _, _, _, manifest, _ = _command_setup(tmp_path)
    path = write_suite(f"""
datasets: {{m: {{dataset: manifest, params: {{path: {manifest}}}}}}}
systems: {{mine: {{system: command, params: {{command: "{sys.executable} x.py --text {{speech}} --out {{out}}"}}}}}}
metrics: {{rtf: {{}}}}
""")
    with pytest.raises(ConfigError, match=r"systems\.mine\.params: .*unknown placeholder \{speech\}"):
        validate_suite(load_suite(path))
    # A bare YAML list under params is a grid axis: the error says to nest it.
    path = write_suite(f"""
datasets: {{m: {{dataset: manifest, params: {{path: {manifest}}}}}}}
systems: {{mine: {{system: command, params: {{command: [{sys.executable}, --out, "{{out}}"]}}}}}}
metrics: {{rtf: {{}}}}
""")
    with pytest.raises(ConfigError, match=r"grid axis .*command: \[\[prog"):
        validate_suite(load_suite(path))


# ------------------------------------------------------------------------------- --set
SET_BASE = """
name: base
datasets:
  syn: {dataset: synthetic, params: {n: 2, seconds: 0.5}}
systems:
  q: {system: dummy_codec, params: {bits: 8}}
  passthrough:
metrics:
  si_sdr: {}
"""


def test_set_overrides_values_and_grids(write_suite):
    path = write_suite(SET_BASE)
    suite = load_suite(path, ["systems.q.params.bits=[4, 6]", "datasets.syn.params.n=3", "name=renamed",
                              "systems.passthrough.params.sample_rate=8000", "metrics.si_sdr.params.align=pad"])
    assert suite.name == "renamed"
    assert [p.label for p in suite.system_points()] == ["q@bits=4", "q@bits=6", "passthrough"]
    assert suite.raw["datasets"]["syn"]["params"] == {"n": 3, "seconds": 0.5}
    assert suite.raw["systems"]["passthrough"] == {"params": {"sample_rate": 8000}}
    assert suite.metrics[0].params == {"align": "pad"}
    assert load_suite(path, ["systems.q.params.bits=12"]).sha256() != load_suite(path).sha256()


@pytest.mark.parametrize("override, message", [
    ("system.q.params.bits=4", "unknown top-level key 'system'; did you mean 'systems'"),
    ("systems.qq.params.bits=4", "no system 'qq' in this suite; did you mean 'q'"),
    ("systems.q.parms.bits=4", "unknown key 'parms'; allowed: 'params', 'system'"),
    ("seed.x=1", "'seed' is a int"),
    ("systems.q.params.bits", "expected KEY.PATH=VALUE"),
    ("systems..params=1", "empty part"),
    ("include=x.yaml", "'include' is resolved before overrides"),
    ("seed=[1", "not valid YAML"),
    ("seed=abc", "seed: expected int"),
])
def test_set_errors_name_the_bad_key(write_suite, override, message):
    path = write_suite(SET_BASE.replace("name: base", "name: base\nseed: 1"))
    with pytest.raises(ConfigError, match=message):
        load_suite(path, [override])


def test_set_on_the_cli_is_recorded_in_run_json(write_suite, tmp_path, cli):
    path = write_suite(SET_BASE)
    out = tmp_path / "out"
    proc = cli("run", str(path), "--out", str(out), "--no-progress", "--systems", "q",
               "--set", "systems.q.params.bits=6", "--set", "datasets.syn.params.n=1")
    assert proc.returncode == 0, proc.stderr
    run = json.loads((out / "base" / "syn" / "q" / "run.json").read_text())
    assert run["suite"]["resolved"]["systems"]["q"]["params"]["bits"] == 6
    assert run["run"]["params"] == {"bits": 6} and run["dataset"]["n_items"] == 1
    assert "--set" in run["command"]
    bad = cli("validate", str(path), "--set", "systems.q.params.bitz=6")
    assert bad.returncode == 2 and "systems.q.params.bitz: unknown parameter; did you mean 'bits'" in bad.stderr
    bad = cli("run", str(path), "--set", "sytems.q.params.bits=6")
    assert bad.returncode == 2 and "--set 'sytems.q.params.bits=6': unknown top-level key 'sytems'" in bad.stderr


def test_registered():
    assert "outputs" in SYSTEMS and "command" in SYSTEMS

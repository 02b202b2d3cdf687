import pytest

from qtts_bench.errors import ConfigError
from qtts_bench.suite import deep_merge, load_suite, validate_suite

BASE = """
name: base
seed: 3
datasets:
  syn: {dataset: synthetic, params: {n: 2, seconds: 0.5}}
systems:
  dummy:
    system: dummy_codec
    params: {bits: [4, 8], sample_rate: 16000}
metrics:
  si_sdr: {}
"""


def test_grid_expands_to_labelled_points(write_suite):
    suite = load_suite(write_suite(BASE))
    points = suite.system_points()
    assert [p.label for p in points] == ["dummy@bits=4", "dummy@bits=8"]
    assert points[0].params == {"bits": 4, "sample_rate": 16000}
    assert points[0].axes == {"bits": 4}
    assert suite.seed == 3 and suite.name == "base"


def test_one_element_list_is_a_fixed_value_and_nested_list_a_literal(write_suite):
    suite = load_suite(write_suite(BASE.replace("bits: [4, 8]", "bits: [4], fail_calls: [[1, 2]]")))
    (point,) = suite.system_points()
    assert point.params == {"bits": 4, "fail_calls": [1, 2], "sample_rate": 16000}
    assert point.axes == {} and point.label == "dummy"


def test_include_deep_merges_and_overrides(write_suite):
    write_suite(BASE, "base.yaml")
    path = write_suite("""
include: base.yaml
name: ablation
systems:
  dummy:
    params: {bits: [2]}
""", "ablation.yaml")
    suite = load_suite(path)
    assert suite.name == "ablation" and suite.seed == 3
    assert suite.systems[0].name == "dummy_codec"
    assert suite.systems[0].params == {"bits": [2], "sample_rate": 16000}
    assert [str(f.name) for f in suite.files] == ["base.yaml", "ablation.yaml"]


def test_deep_merge_does_not_mutate_inputs():
    base = {"a": {"b": 1, "c": [1]}}
    merged = deep_merge(base, {"a": {"b": 2}})
    assert merged == {"a": {"b": 2, "c": [1]}} and base == {"a": {"b": 1, "c": [1]}}


def test_include_cycle_is_reported(write_suite):
    write_suite("include: b.yaml\ndatasets: {}\n", "a.yaml")
    path = write_suite("include: a.yaml\n", "b.yaml")
    with pytest.raises(ConfigError, match="include cycle"):
        load_suite(path)


@pytest.mark.parametrize("patch, message", [
    (("seed: 3", "sede: 3"), "unknown top-level key 'sede'; did you mean 'seed'?"),
    (("seed: 3", "seed: three"), "seed: expected int"),
    (("system: dummy_codec", "system: dummy_codek"), "systems.dummy: unknown system 'dummy_codek'; did you mean 'dummy_codec'"),
    (("bits: [4, 8]", "bitz: [4, 8]"), "systems.dummy.params.bitz: unknown parameter; did you mean 'bits'?"),
    (("bits: [4, 8]", "bits: [4, 99]"), "systems.dummy.params: bits must be in 1..16"),
    (("si_sdr: {}", "si_sdr: {metric: si_sdrr}"), "metrics.si_sdr: unknown metric 'si_sdrr'"),
    (("si_sdr: {}", "si_sdr: {param: {}}"), "metrics.si_sdr: unknown key(s) ['param']"),
    (("dataset: synthetic", "dataset: synthetik"), "datasets.syn: unknown dataset 'synthetik'"),
    (("n: 2,", "n: 0,"), "datasets.syn.params: synthetic dataset: n must be >= 1"),
    (("seed: 3", "seed: 3\ndevice: tpu"), "device: expected one of auto, cpu, cuda"),
])
def test_errors_name_the_file_and_field(write_suite, patch, message):
    path = write_suite(BASE.replace(*patch))
    with pytest.raises(ConfigError) as err:
        validate_suite(load_suite(path))
    assert message in str(err.value)
    assert str(path) in str(err.value)


@pytest.mark.parametrize("value", ["0", "-1", "fast", "true", "null", ".inf", "[1]"])
def test_a_bad_metric_timeout_fails_validation_naming_the_metric(write_suite, value):
    path = write_suite(BASE.replace("si_sdr: {}", f"si_sdr: {{timeout: {value}}}"))
    with pytest.raises(ConfigError) as err:
        validate_suite(load_suite(path))
    assert f"{path}: metrics.si_sdr.timeout: expected a number of seconds > 0" in str(err.value)


def test_a_metric_timeout_is_read_and_only_metrics_have_one(write_suite):
    suite = load_suite(write_suite(BASE.replace("si_sdr: {}", "si_sdr: {timeout: 2}")))
    assert suite.metrics[0].timeout == 2.0
    with pytest.raises(ConfigError, match=r"systems.dummy: unknown key\(s\) \['timeout'\]"):
        load_suite(write_suite(BASE.replace("system: dummy_codec", "system: dummy_codec\n    timeout: 2")))
    overridden = load_suite(write_suite(BASE), ["metrics.si_sdr.timeout=1.5"])
    assert overridden.metrics[0].timeout == 1.5


def test_missing_section(write_suite):
    path = write_suite("name: x\ndatasets: {syn: {dataset: synthetic}}\nsystems: {passthrough: {}}\n")
    with pytest.raises(ConfigError, match="missing required key 'metrics'"):
        load_suite(path)


def test_missing_manifest_file_fails_validation(write_suite, tmp_path):
    path = write_suite(BASE.replace("syn: {dataset: synthetic, params: {n: 2, seconds: 0.5}}",
                                    f"m: {{dataset: manifest, params: {{path: {tmp_path}/nope.jsonl}}}}"))
    with pytest.raises(ConfigError, match="manifest not found"):
        validate_suite(load_suite(path))


def test_unmet_metric_requirement_is_caught_before_running(write_suite, tmp_path):
    (tmp_path / "a.wav").write_bytes(b"")  # existence is all the manifest checks
    manifest = tmp_path / "m.jsonl"
    manifest.write_text('{"id": "u1", "audio": "a.wav"}\n')
    path = write_suite(f"""
datasets:
  notext: {{dataset: manifest, params: {{path: {manifest}}}}}
systems:
  tts: {{system: dummy_tts}}
metrics:
  si_sdr: {{}}
""")
    with pytest.raises(ConfigError, match="'dummy_tts' needs 'text' on every item, but dataset 'notext' lacks it"):
        validate_suite(load_suite(path))


def test_select_systems_unknown_key(write_suite):
    suite = load_suite(write_suite(BASE))
    with pytest.raises(ConfigError, match="no system 'dumy' in this suite; did you mean 'dummy'"):
        suite.select_systems(["dumy"])


def test_shipped_suites_validate():
    from qtts_bench.suite import shipped_suites

    suites = list(shipped_suites().values())  # qtts_bench/suites/ (package data)
    assert suites, "no shipped suites found"
    for path in suites:
        if "SET-ME" in path.read_text():  # needs the user's files (--set); must say so
            with pytest.raises(ConfigError, match="--set"):
                validate_suite(load_suite(path))
            continue
        validate_suite(load_suite(path))


# --- names that become paths (issue 10, item 8) ------------------------------------------------
@pytest.mark.parametrize("patch, field", [
    (("name: base", "name: ../../../tmp/escape"), "name: name '../../../tmp/escape' becomes a folder"),
    (("name: base", "name: a/b"), "name: name 'a/b'"),
    (("name: base", "name: '..'"), "name: name '..'"),
    (("name: base", "name: '.'"), "name: name '.'"),
    (("syn: {dataset", "'../syn': {dataset"), "datasets.../syn: the dataset key '../syn'"),
    (("dummy:\n", "'x/../../y':\n"), "systems.x/../../y: the system key 'x/../../y'"),
    (("bits: [4, 8]", "bits: [4, 8], fail_calls: [[1], [2]]"),
     "systems.dummy.params.fail_calls: the grid value '[1]' (in the run label 'dummy@bits=4,fail_calls=[1]')"),
])
def test_names_that_become_folders_are_validated(write_suite, patch, field):
    path = write_suite(BASE.replace(*patch))
    with pytest.raises(ConfigError) as err:
        validate_suite(load_suite(path))
    assert field in str(err.value) and str(path) in str(err.value)
    assert "letters, digits and . _ - @ = , only" in str(err.value)


def test_escaping_suite_name_writes_nothing_outside_out(write_suite, tmp_path, cli):
    path = write_suite(BASE.replace("name: base", "name: ../../escape"))
    proc = cli("run", str(path), "--out", str(tmp_path / "out" / "a"), "--no-progress")
    assert proc.returncode == 2 and "name: name '../../escape'" in proc.stderr
    assert not (tmp_path / "escape").exists() and not (tmp_path / "out").exists()


def test_safe_names_and_grid_labels_pass(write_suite):
    suite = load_suite(write_suite(BASE.replace("name: base", "name: my-suite_v1.2@x=1,y")))
    assert suite.name == "my-suite_v1.2@x=1,y"
    assert [p.label for p in suite.system_points()] == ["dummy@bits=4", "dummy@bits=8"]


def test_default_name_from_an_unsafe_file_name_asks_for_name(write_suite):
    path = write_suite(BASE.replace("name: base\n", ""), "my suite.yaml")
    with pytest.raises(ConfigError, match="the suite's file name .* 'my suite'"):
        load_suite(path)


# --- duplicate keys (issue 10, item 11) ---------------------------------------------------------
def test_duplicate_keys_are_refused_with_their_lines(write_suite):
    path = write_suite("""name: dup
datasets:
  syn: {dataset: synthetic}
systems:
  opus: {params: {bitrate: 6000}}
  passthrough: {}
  opus: {params: {bitrate: 12000}}
metrics:
  si_sdr: {}
""")
    with pytest.raises(ConfigError) as err:
        load_suite(path)
    assert f"{path}:7: duplicate key 'opus' on lines 5 and 7" in str(err.value)


@pytest.mark.parametrize("text, lines", [
    ("name: a\nseed: 1\nname: b\n", "lines 1 and 3"),
    ("metrics:\n  si_sdr: {params: {align: pad, align: trim}}\n", "duplicate key 'align' on lines 2 and 2"),
])
def test_duplicate_keys_anywhere(write_suite, text, lines):
    with pytest.raises(ConfigError, match=lines):
        load_suite(write_suite(text))


def test_merge_keys_may_be_overridden(write_suite):
    suite = load_suite(write_suite("""
name: merged
datasets:
  a: &base {dataset: synthetic, params: {n: 2, seconds: 0.5}}
  b: {<<: *base, params: {n: 3, seconds: 0.5}}
systems: {passthrough: {}}
metrics: {si_sdr: {}}
"""))
    assert [d.params for d in suite.datasets] == [{"n": 2, "seconds": 0.5}, {"n": 3, "seconds": 0.5}]


def test_duplicate_keys_in_a_set_value(write_suite):
    with pytest.raises(ConfigError, match="duplicate key 'n'"):
        load_suite(write_suite(BASE), ["datasets.syn.params={n: 1, n: 2}"])


# --- datasets: restrictions on systems and metrics ------------------------------------------------
RESTRICTED = """
name: restricted
datasets:
  a: {dataset: synthetic, params: {n: 2, seconds: 0.5}}
  b: {dataset: synthetic, params: {n: 2, seconds: 0.5, seed: 1}}
systems:
  passthrough: {}
  only_b: {system: dummy_codec, params: {bits: 8}, datasets: [b]}
metrics:
  si_sdr: {}
  snr_a: {metric: si_sdr, datasets: [a]}
"""


def test_dataset_restrictions_choose_systems_and_metrics_per_dataset(write_suite):
    validated = validate_suite(load_suite(write_suite(RESTRICTED)))
    assert [p.label for p in validated.points_for("a")] == ["passthrough"]
    assert [p.label for p in validated.points_for("b")] == ["passthrough", "only_b"]
    assert list(validated.metrics_for("a")) == ["si_sdr", "snr_a"]
    assert list(validated.metrics_for("b")) == ["si_sdr"]


def test_a_restriction_lifts_requirements_on_other_datasets(write_suite, tmp_path):
    from qtts_bench.audio import Audio, write_audio
    from qtts_bench.testing import speech_like

    write_audio(tmp_path / "a.wav", Audio(speech_like(0.5, 16000, seed=0), 16000))
    manifest = tmp_path / "m.jsonl"
    manifest.write_text('{"id": "u1", "audio": "a.wav"}\n')  # no text: a TTS cannot run on it
    text = f"""
datasets:
  notext: {{dataset: manifest, params: {{path: {manifest}}}}}
  syn: {{dataset: synthetic, params: {{n: 2, seconds: 0.5}}}}
systems:
  tts: {{system: dummy_tts, datasets: [syn]}}
metrics:
  si_sdr: {{}}
"""
    validated = validate_suite(load_suite(write_suite(text)))  # the TTS never meets the text-less dataset
    assert validated.points_for("notext") == [] and [p.key for p in validated.points_for("syn")] == ["tts"]
    with pytest.raises(ConfigError, match="'dummy_tts' needs 'text' on every item, but dataset 'notext' lacks it"):
        validate_suite(load_suite(write_suite(text.replace(", datasets: [syn]", ""))))


@pytest.mark.parametrize("patch, message", [
    (("datasets: [b]", "datasets: [c]"), r"systems.only_b.datasets: no dataset 'c' in this suite"),
    (("datasets: [a]}", "datasets: [bb]}"), r"metrics.snr_a.datasets: no dataset 'bb' in this suite; did you mean 'b'"),
    (("datasets: [b]", "datasets: []"), r"systems.only_b.datasets: expected a list of dataset keys"),
    (("datasets: [b]", "datasets: 3"), r"systems.only_b.datasets: expected a list of dataset keys"),
])
def test_bad_dataset_restrictions_name_the_entry(write_suite, patch, message):
    with pytest.raises(ConfigError, match=message):
        load_suite(write_suite(RESTRICTED.replace(*patch)))


def test_restricted_run_writes_only_the_chosen_pairs(write_suite, tmp_path, cli):
    import json

    out = tmp_path / "out"
    proc = cli("run", str(write_suite(RESTRICTED)), "--out", str(out), "--no-progress")
    assert proc.returncode == 0, proc.stderr
    runs = sorted(str(p.relative_to(out / "restricted")) for p in (out / "restricted").glob("*/*") if p.is_dir())
    assert runs == ["a/passthrough", "b/only_b", "b/passthrough"]
    metrics_a = json.loads((out / "restricted" / "a" / "passthrough" / "summary.json").read_text())["metrics"]
    metrics_b = json.loads((out / "restricted" / "b" / "only_b" / "summary.json").read_text())["metrics"]
    assert set(metrics_a) == {"si_sdr", "snr_a"} and set(metrics_b) == {"si_sdr"}
    assert metrics_a["snr_a"]["value"] == metrics_a["si_sdr"]["value"]


def test_a_timed_metric_restricted_to_one_dataset_runs_only_there(write_suite, tmp_path):
    # A metric with a timeout is scored in its own worker; restricting it to one dataset must not
    # break the runs of the other (their metric set lacks it).
    import json

    from qtts_bench.runner import run_suite

    text = """
name: timed
datasets:
  a: {dataset: synthetic, params: {n: 2, seconds: 0.5}}
  b: {dataset: synthetic, params: {n: 2, seconds: 0.5, seed: 1}}
systems:
  passthrough: {}
metrics:
  si_sdr: {}
  slow: {metric: slow_metric, timeout: 30, datasets: [a], params: {sleep: 0}}
"""
    out = tmp_path / "out"
    run_suite(validate_suite(load_suite(write_suite(text))), out=out, progress=False)
    summary = {d: json.loads((out / "timed" / d / "passthrough" / "summary.json").read_text())["metrics"]
               for d in ("a", "b")}
    assert summary["a"]["slow"]["n_scored"] == 2 and "slow" not in summary["b"]
    run_a = json.loads((out / "timed" / "a" / "passthrough" / "run.json").read_text())
    assert run_a["metrics"]["slow"]["timeout_seconds"] == 30

"""The output cache: system outputs shared across run folders (qtts_bench/output_cache.py).

Runs on synthetic data with the test systems, in process (run_suite) or through the CLI;
seconds each. conftest turns the cache off for other tests; these suites turn it on.
"""

import json
import multiprocessing
import sys

import numpy as np
import pytest

from qtts_bench.output_cache import NOT_TIMED, OutputCache, code_sha256, request_material, resolve_mode
from qtts_bench.runner import run_suite
from qtts_bench.suite import load_suite, validate_suite
from qtts_bench.systems.base import Request
from qtts_bench.testing import DummyCodec

SUITE = """
name: oc
warmup: 1
seed: {seed}
{cache}
datasets:
  syn: {{dataset: synthetic, params: {{n: {n}, seconds: 1.0}}}}
systems:
{systems}
metrics:
{metrics}
"""
CODEC = "  q: {system: dummy_codec, params: {bits: 6}}"
TOKENS = "  tok: {system: dummy_token_codec, params: {n_codebooks: 2, codebook_size: 64}}"
SIGNAL = "  si_sdr: {}\n  bitrate: {}\n  codebook_perplexity: {}"


def _write(write_suite, systems=CODEC, metrics=SIGNAL, cache="output_cache: true", n=3, seed=0,
           name="suite.yaml"):
    return write_suite(SUITE.format(systems=systems, metrics=metrics, cache=cache, n=n, seed=seed), name)


def _run(path, out, **kw):
    return {o.label: o for o in run_suite(validate_suite(load_suite(path)), out=out, progress=False,
                                          command=["test"], **kw)}


def _records(outcome):
    return {r["id"]: r for r in map(json.loads, (outcome.folder / "items.jsonl").read_text().splitlines())}


def _values(outcome):
    return {(i, k): e["value"] for i, r in _records(outcome).items() for k, e in r["metrics"].items()}


def _counts(outcome):
    c = outcome.summary["system_outputs"]
    return c["n_computed"], c["n_from_cache"]


def _entries(root):
    return sorted(root.glob("system-outputs/*/*/*.npz"))


def _assert_same_values(a, b):
    one, two = _values(a), _values(b)
    assert one.keys() == two.keys()
    for key in one:
        if one[key] is None or two[key] is None:
            assert one[key] is None and two[key] is None, key
        else:
            assert two[key] == pytest.approx(one[key], abs=1e-6), key


# ------------------------------------------------------------------------------------- reuse
def test_a_second_run_into_a_new_folder_reuses_every_output(write_suite, tmp_path):
    path = _write(write_suite, systems=f"{CODEC}\n{TOKENS}")
    first = _run(path, tmp_path / "a")
    assert {k: _counts(o) for k, o in first.items()} == {"q": (3, 0), "tok": (3, 0)}
    assert len(_entries(tmp_path / "cache")) == 6
    second = _run(path, tmp_path / "b")
    assert {k: _counts(o) for k, o in second.items()} == {"q": (0, 3), "tok": (0, 3)}
    for label in ("q", "tok"):
        _assert_same_values(first[label], second[label])
        old, new = _records(first[label]), _records(second[label])
        for item_id, record in new.items():
            assert record["output_cache"]["status"] == "reused"
            assert record["output_cache"]["key"] == old[item_id]["output_cache"]["key"]
            assert record["output_sha256"] == old[item_id]["output_sha256"]
            assert record["system"]["encoded_bits"] == old[item_id]["system"]["encoded_bits"]
        timing = second[label].summary["timing"]
        assert timing["system_seconds"] == 0.0  # the system was never called, not even to warm up
        assert timing["harness_seconds"]["warmup"] == 0.0
    # the token codec's codes came back from the cache: the pooled codebook usage is the same
    pooled = [o["tok"].summary["metrics"]["codebook_perplexity"]["pooled"] for o in (first, second)]
    assert pooled[1] == pooled[0] and pooled[0]["frames"] > 0
    run = json.loads((second["q"].folder / "run.json").read_text())
    assert run["output_cache"]["reads"] and run["output_cache"]["identity_sha256"]


def test_a_metric_added_to_a_folder_takes_the_codes_from_the_cache(write_suite, tmp_path):
    first = _run(_write(write_suite, systems=TOKENS, metrics="  si_sdr: {}"), tmp_path)["tok"]
    assert first.summary["timing"]["system_seconds"] > 0
    added = _run(_write(write_suite, systems=TOKENS, metrics=SIGNAL, name="added.yaml"), tmp_path)["tok"]
    assert added.filled == 3 and added.summary["timing"]["system_seconds"] == 0.0
    assert added.summary["metrics"]["codebook_perplexity"]["n_scored"] == 3


def test_jobs_2_reuses_what_jobs_1_stored(write_suite, tmp_path):
    path = _write(write_suite, n=4)
    [first] = _run(path, tmp_path / "a").values()
    [second] = _run(path, tmp_path / "b", jobs=2).values()
    assert _counts(second) == (0, 4)
    _assert_same_values(first, second)


def test_a_changed_parameter_seed_or_identity_is_computed_again(write_suite, tmp_path, monkeypatch):
    _run(_write(write_suite), tmp_path / "a")
    changed = _run(_write(write_suite, systems="  q: {system: dummy_codec, params: {bits: 7}}", name="b.yaml"),
                   tmp_path / "b")
    assert _counts(changed["q"]) == (3, 0)
    reseeded = _run(_write(write_suite, seed=1, name="c.yaml"), tmp_path / "c")
    assert _counts(reseeded["q"]) == (3, 0)
    # a parameter the system's provenance does not mention (DummyTTS has none) changes the key too
    tts = "  t: {{system: dummy_tts, params: {{seconds_per_word: {}}}}}"
    _run(_write(write_suite, systems=tts.format(0.3), metrics="  si_sdr: {}", name="t1.yaml"), tmp_path / "t1")
    slower = _run(_write(write_suite, systems=tts.format(0.31), metrics="  si_sdr: {}", name="t2.yaml"), tmp_path / "t2")
    assert _counts(slower["t"]) == (3, 0)
    # a new checkpoint shows in the loaded system's provenance (a weights hash): computed again
    monkeypatch.setattr(DummyCodec, "provenance", lambda self: {"bits": self.bits, "weights_sha256": "other"})
    retrained = _run(_write(write_suite, name="d.yaml"), tmp_path / "d")
    assert _counts(retrained["q"]) == (3, 0)


def test_the_key_covers_every_input_the_system_is_handed():
    audio = np.linspace(-0.5, 0.5, 800, dtype=np.float32)
    base = Request("x", text="hello", language="en", reference=audio, prompt_audio=audio[:400],
                   prompt_text="hi", seed=7)
    cache = OutputCache({"system": "s"}, root=None)
    key = cache.key(base, 16000)
    variants = [Request("x", text="hello!", language="en", reference=audio, prompt_audio=audio[:400],
                        prompt_text="hi", seed=7),
                Request("x", text="hello", language="fr", reference=audio, prompt_audio=audio[:400],
                        prompt_text="hi", seed=7),
                Request("x", text="hello", language="en", reference=audio * 0.5, prompt_audio=audio[:400],
                        prompt_text="hi", seed=7),
                Request("x", text="hello", language="en", reference=audio, prompt_audio=audio[:401],
                        prompt_text="hi", seed=7),
                Request("x", text="hello", language="en", reference=audio, prompt_audio=audio[:400],
                        prompt_text="hey", seed=7),
                Request("x", text="hello", language="en", reference=audio, prompt_audio=audio[:400],
                        prompt_text="hi", seed=8)]
    keys = {cache.key(r, 16000) for r in variants} | {cache.key(base, 24000), key}
    assert len(keys) == len(variants) + 2
    assert OutputCache({"system": "s", "params": {"a": 1}}).key(base, 16000) != key  # identity
    assert cache.key(Request("other id", text="hello", language="en", reference=audio, prompt_audio=audio[:400],
                             prompt_text="hi", seed=7), 16000) == key  # the id reaches the key via the seed
    assert request_material(base, 16000)["reference"] != request_material(base, 16000)["prompt_audio"]


def test_an_edit_to_the_system_s_code_changes_its_code_hash(tmp_path, monkeypatch):
    package = tmp_path / "plug"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "helper.py").write_text("SCALE = 1.0\n")
    (package / "system.py").write_text("def run():\n    from . import helper\n    return helper.SCALE\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    before, modules = code_sha256("plug.system")
    assert "plug.helper" in modules  # a lazy import inside a function is followed
    (package / "helper.py").write_text("SCALE = 2.0\n")
    code_sha256.cache_clear()
    assert code_sha256("plug.system")[0] != before
    code_sha256.cache_clear()


# ------------------------------------------------------------------------------------- damage
def test_a_corrupt_or_truncated_entry_is_computed_again_and_rewritten(write_suite, tmp_path):
    path = _write(write_suite, n=4)
    first = _run(path, tmp_path / "a")["q"]
    files = {r["id"]: r["output_cache"]["file"] for r in _records(first).values()}
    truncated, garbled, foreign = files["syn000"], files["syn001"], files["syn002"]
    with open(truncated, "r+b") as fh:
        fh.truncate(fh.seek(0, 2) // 2)
    data = bytearray(open(garbled, "rb").read())
    data[len(data) // 2:len(data) // 2 + 64] = bytes(64)  # zeroed bytes inside the audio
    open(garbled, "wb").write(bytes(data))
    open(foreign, "wb").write(open(files["syn003"], "rb").read())  # a valid entry of another key
    second = _run(path, tmp_path / "b")["q"]
    assert _counts(second) == (3, 1)
    assert {i: r["output_cache"]["status"] for i, r in _records(second).items()} == {
        "syn000": "computed", "syn001": "computed", "syn002": "computed", "syn003": "reused"}
    _assert_same_values(first, second)
    third = _run(path, tmp_path / "c")["q"]  # rewritten: every entry is valid again
    assert _counts(third) == (0, 4)


def test_two_concurrent_writers_of_one_key_leave_a_valid_entry(tmp_path):
    """Two processes store the same key over and over while this one reads it: every read is
    either nothing (not written yet) or the whole entry, and the last one stands."""
    cache = OutputCache({"system": "race"}, root=tmp_path / "outputs")
    key = "ab" + "0" * 62
    audio = np.sin(np.arange(48000) / 7).astype(np.float32)
    ctx = multiprocessing.get_context("fork")
    writers = [ctx.Process(target=_write_many, args=(cache, key, audio, 40)) for _ in range(2)]
    for w in writers:
        w.start()
    reads = 0
    while any(w.is_alive() for w in writers):
        entry = cache.get(key)
        if entry is not None:
            reads += 1
            np.testing.assert_array_equal(entry.audio, audio)
    for w in writers:
        w.join()
        assert w.exitcode == 0
    entry = cache.get(key)
    assert entry is not None and np.array_equal(entry.audio, audio) and reads > 0
    assert not list(cache.dir.rglob("*.tmp"))  # no writer's temporary file left behind


def _write_many(cache, key, audio, times):
    for i in range(times):
        cache.put(key, audio, np.arange(6).reshape(2, 3), {"writer": i})


# ------------------------------------------------------------------------------------- speed
SPEED = "  rtf: {}\n  ttft: {}\n  si_sdr: {}"
STREAMING = "  t: {system: dummy_tts, params: {sleep: 0.02, chunks: 2}}"


def test_speed_metrics_are_never_reported_for_a_reused_output(write_suite, tmp_path, monkeypatch):
    # auto (the default): a run scoring speed metrics computes and times every output, and stores it
    monkeypatch.delenv("QTTS_BENCH_OUTPUT_CACHE")
    auto = _write(write_suite, systems=STREAMING, metrics=SPEED, cache="")
    first = _run(auto, tmp_path / "a")["t"]
    assert _counts(first) == (3, 0) and len(_entries(tmp_path / "cache")) == 3
    second = _run(auto, tmp_path / "b")["t"]
    assert _counts(second) == (3, 0)
    assert second.summary["system_outputs"]["output_cache"]["reads"] is False
    assert "rtf, ttft" in second.summary["system_outputs"]["output_cache"]["reason"]
    for record in _records(second).values():
        assert record["metrics"]["rtf"]["value"] > 0 and record["metrics"]["ttft"]["value"] > 0
        assert record["system"]["seconds"] >= 0.02
    # on: reused outputs, and their speed metrics say why they have no value
    on = _write(write_suite, systems=STREAMING, metrics=SPEED, name="on.yaml")
    third = _run(on, tmp_path / "c")["t"]
    assert _counts(third) == (0, 3)
    for record in _records(third).values():
        for key in ("rtf", "ttft"):
            assert record["metrics"][key] == {"value": None, "reason": NOT_TIMED, "not_applicable": True}
        assert record["system"]["seconds"] is None and record["system"]["untimed"] == NOT_TIMED
        assert record["metrics"]["si_sdr"]["value"] is not None or record["metrics"]["si_sdr"]["reason"]
    rtf = third.summary["metrics"]["rtf"]
    assert rtf["value"] is None and rtf["n_scored"] == 0 and rtf["not_applicable_reasons"] == {NOT_TIMED: 3}


# ------------------------------------------------------------------------------------- off / not cacheable
def test_turned_off_it_neither_reads_nor_writes(write_suite, tmp_path, cli):
    off = _write(write_suite, cache="output_cache: false")
    for out in ("a", "b"):
        assert _counts(_run(off, tmp_path / out)["q"]) == (3, 0)
    assert not (tmp_path / "cache" / "system-outputs").exists()
    record = next(iter(_records(_run(off, tmp_path / "c")["q"]).values()))
    assert record["output_cache"] == {"status": "computed"}

    on = _write(write_suite, name="on.yaml")
    assert _counts(_run(on, tmp_path / "d")["q"]) == (3, 0)
    proc = cli("run", str(on), "--out", str(tmp_path / "e"), "--no-progress", "--output-cache", "off")
    assert proc.returncode == 0, proc.stderr
    assert "system outputs: 3 computed, 0 reused from the output cache" in proc.stdout
    proc = cli("run", str(on), "--out", str(tmp_path / "f"), "--no-progress")
    assert proc.returncode == 0, proc.stderr
    assert "system outputs: 0 computed, 3 reused from the output cache" in proc.stdout


def test_the_location_can_be_chosen(write_suite, tmp_path, cli):
    path = _write(write_suite)
    elsewhere = tmp_path / "elsewhere"
    proc = cli("run", str(path), "--out", str(tmp_path / "a"), "--no-progress", "--output-cache-path", str(elsewhere))
    assert proc.returncode == 0, proc.stderr
    assert len(list(elsewhere.glob("*/*/*.npz"))) == 3 and not _entries(tmp_path / "cache")
    assert len(list(elsewhere.glob("*/identity.json"))) == 1
    run = json.loads((tmp_path / "a" / "oc" / "syn" / "q" / "run.json").read_text())
    assert run["output_cache"]["location"] == str(elsewhere)


def test_an_unwritable_location_costs_reuse_not_the_run(write_suite, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    path = _write(write_suite, cache=f"output_cache: true\noutput_cache_path: '{blocker}/outputs'")
    outcome = _run(path, tmp_path / "a")["q"]
    assert _counts(outcome) == (3, 0) and outcome.summary["n_system_errors"] == 0
    assert all(r["output_cache"]["file"] is None for r in _records(outcome).values())


def test_a_bad_setting_fails_validation_naming_it(write_suite, monkeypatch):
    from qtts_bench.errors import ConfigError

    with pytest.raises(ConfigError, match="output_cache: expected true, false or 'auto'"):
        load_suite(_write(write_suite, cache="output_cache: maybe"))
    monkeypatch.setenv("QTTS_BENCH_OUTPUT_CACHE", "sometimes")
    with pytest.raises(ConfigError, match="QTTS_BENCH_OUTPUT_CACHE"):
        resolve_mode(None)


def test_env_variable_is_the_default_and_the_suite_wins(write_suite, tmp_path, monkeypatch):
    unset = _write(write_suite, cache="")
    monkeypatch.setenv("QTTS_BENCH_OUTPUT_CACHE", "on")
    _run(unset, tmp_path / "a")
    assert _counts(_run(unset, tmp_path / "b")["q"]) == (0, 3)
    monkeypatch.setenv("QTTS_BENCH_OUTPUT_CACHE", "off")
    assert _counts(_run(unset, tmp_path / "c")["q"]) == (3, 0)
    assert _counts(_run(_write(write_suite, name="on.yaml"), tmp_path / "d")["q"]) == (0, 3)


def test_a_system_that_is_not_deterministic_is_not_cached(write_suite, tmp_path):
    noisy = _write(write_suite, systems="  t: {system: dummy_tts, params: {noise: 0.01}}", metrics="  si_sdr: {}")
    for out in ("a", "b"):
        outcome = _run(noisy, tmp_path / out)["t"]
        assert _counts(outcome) == (3, 0)
    assert not _entries(tmp_path / "cache")
    info = outcome.summary["system_outputs"]["output_cache"]
    assert info["reads"] is False and info["writes"] is False and "deterministic" in info["reason"]
    run = json.loads((outcome.folder / "run.json").read_text())
    assert "deterministic" in run["output_cache"]["reason"]
    # the same system without noise declares itself deterministic and is cached
    quiet = _write(write_suite, systems="  t: {system: dummy_tts}", metrics="  si_sdr: {}", name="quiet.yaml")
    _run(quiet, tmp_path / "c")
    assert _counts(_run(quiet, tmp_path / "d")["t"]) == (0, 3)


def test_outside_outputs_are_never_cached(write_suite, tmp_path):
    first = _run(_write(write_suite, systems="  t: {system: dummy_tts}", metrics="  si_sdr: {}"), tmp_path / "a")["t"]
    outputs = tmp_path / "made"
    outputs.mkdir()
    from qtts_bench.audio import Audio, write_audio
    from qtts_bench.testing import speech_like

    for item_id in _records(first):
        write_audio(outputs / f"{item_id}.wav", Audio(speech_like(1.0, 16000, 1), 16000))
    path = _write(write_suite, systems=f"  o: {{system: outputs, params: {{dir: '{outputs}'}}}}",
                  metrics="  si_sdr: {}", name="o.yaml")
    outcome = _run(path, tmp_path / "b")["o"]
    assert _counts(outcome) == (3, 0)
    assert "files" in outcome.summary["system_outputs"]["output_cache"]["reason"]


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))


# ------------------------------------------------------------------------------ size and eviction
def _filled_cache(root, ages_days):
    """Two system identities, one entry per age (1 s of audio each); mtime = now - age.
    -> ({age: path}, now)."""
    import os
    import time

    now = time.time()
    paths = {}
    for i, age in enumerate(ages_days):
        cache = OutputCache({"system": "s", "params": {"which": i % 2}}, root=root)
        key = f"{i:064x}"
        paths[age] = cache.put(key, np.full(16000, 0.1 * (i + 1), dtype=np.float32), None, {})
        os.utime(paths[age], (now - age * 86400, now - age * 86400))
    return paths, now


def test_prune_removes_the_least_recently_used_first_down_to_the_size(tmp_path):
    from qtts_bench.output_cache import cache_folders, prune_outputs

    paths, now = _filled_cache(tmp_path, [5, 1, 3, 2])
    size = paths[1].stat().st_size
    report = prune_outputs(tmp_path, max_bytes=2 * size, dry_run=True, now=now)
    assert report["removed"] == 2 and all(p.exists() for p in paths.values())  # a dry run removes nothing
    report = prune_outputs(tmp_path, max_bytes=2 * size, now=now)
    assert report == {"removed": 2, "removed_bytes": 2 * size, "kept": 2, "kept_bytes": 2 * size}
    assert {age for age, p in paths.items() if p.exists()} == {1, 2}
    # entries 0 and 2 (ages 5 and 3) were the only ones of identity "which=0": its folder is gone
    assert [f.params for f in cache_folders(tmp_path)] == [{"which": 1}]


def test_prune_by_age_and_a_read_counts_as_a_use(tmp_path):
    from qtts_bench.output_cache import prune_outputs

    paths, now = _filled_cache(tmp_path, [10, 1, 40])
    cache = OutputCache({"system": "s", "params": {"which": 0}}, root=tmp_path)
    assert cache.get(f"{2:064x}") is not None  # the 40-day-old entry is read: now recently used
    prune_outputs(tmp_path, older_than_seconds=7 * 86400)
    assert {age for age, p in paths.items() if p.exists()} == {1, 40}
    assert cache.get(f"{0:064x}") is None  # a pruned entry is simply missing (computed again by a run)


def test_cache_command_lists_and_prunes(tmp_path, cli):
    paths, _ = _filled_cache(tmp_path, [3, 1])
    info = cli("cache", "--path", str(tmp_path))
    assert info.returncode == 0, info.stderr
    assert "which=0" in info.stdout and "which=1" in info.stdout and ": 2 outputs" in info.stdout
    pruned = cli("cache", "prune", "--older-than", "2", "--path", str(tmp_path))
    assert pruned.returncode == 0 and "removed 1 outputs" in pruned.stdout
    assert not paths[3].exists() and paths[1].exists()
    bad = cli("cache", "prune", "--max-size", "2X", "--path", str(tmp_path))
    assert bad.returncode == 2 and "--max-size" in bad.stderr
    assert cli("cache", "prune", "--path", str(tmp_path)).returncode == 2  # no criterion: an error, not a wipe


def test_run_keeps_the_cache_under_its_size_limit_removing_old_outputs_first(write_suite, tmp_path, cli,
                                                                            monkeypatch):
    cache_root = tmp_path / "shared"
    paths, _ = _filled_cache(cache_root, [30, 20])
    path = _write(write_suite, n=2)
    common = ("--output-cache", "on", "--output-cache-path", str(cache_root), "--no-progress")
    bad = cli("run", str(path), "--out", str(tmp_path / "r0"), *common, "--output-cache-max-size", "lots")
    assert bad.returncode == 2 and "--output-cache-max-size" in bad.stderr
    assert not (tmp_path / "r0").exists()  # refused before any work

    assert cli("run", str(path), "--out", str(tmp_path / "r1"), *common).returncode == 0  # no limit: all kept
    new = [p for p in cache_root.glob("*/??/*.npz") if p not in paths.values()]
    assert len(new) == 2
    new_bytes = sum(p.stat().st_size for p in new)
    limit = new_bytes + paths[20].stat().st_size
    done = cli("run", str(path), "--out", str(tmp_path / "r2"), *common, "--output-cache-max-size", str(limit))
    assert done.returncode == 0, done.stderr
    assert "removed 1 least recently used outputs" in done.stdout
    assert not paths[30].exists() and paths[20].exists() and all(p.exists() for p in new)

    monkeypatch.setenv("QTTS_BENCH_OUTPUT_CACHE_MAX_SIZE", str(new_bytes))
    again = cli("run", str(path), "--out", str(tmp_path / "r3"), *common)
    assert again.returncode == 0, again.stderr
    assert not paths[20].exists() and all(p.exists() for p in new)  # the variable applies without the option

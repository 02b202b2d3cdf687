import subprocess
import sys

import pytest

from qtts_bench.errors import ConfigError, UnknownNameError
from qtts_bench.registry import METRICS, SYSTEMS, Registry


def test_unknown_name_suggests_close_match():
    with pytest.raises(UnknownNameError, match="did you mean 'opus'"):
        SYSTEMS.entry("opsu")


def test_unknown_name_without_close_match_points_to_list():
    with pytest.raises(UnknownNameError, match="qtts-bench list metrics"):
        METRICS.entry("zzzzzz")


def test_variant_defaults_are_overridable():
    reg = Registry("thing", "qtts_bench.test_none")
    reg.register("small", "qtts_bench.testing:DummyCodec", "", bits=4)
    assert reg.create("small").bits == 4
    assert reg.create("small", bits=6).bits == 6


def test_conflicting_registration_is_refused():
    reg = Registry("thing", "qtts_bench.test_none")
    reg.register("a", "x:y")
    with pytest.raises(ConfigError, match="registered twice"):
        reg.register("a", "x:z")


def test_bad_target_names_the_entry():
    reg = Registry("thing", "qtts_bench.test_none")
    reg.register("broken", "qtts_bench.no_such_module:X")
    with pytest.raises(ConfigError, match="cannot load 'broken'"):
        reg.get("broken")


def test_list_and_validate_paths_import_no_torch():
    code = ("import sys, qtts_bench.cli as c; c.main(['list', 'systems']); c.main(['list', 'metrics']);"
            "from qtts_bench.registry import SYSTEMS, METRICS;"
            "[SYSTEMS.get(n) for n in SYSTEMS.names()]; [METRICS.get(n) for n in METRICS.names()];"
            "assert 'torch' not in sys.modules, 'torch was imported'")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_entry_point_plugins_are_listed(monkeypatch):
    from importlib.metadata import EntryPoint

    import qtts_bench.registry as registry

    ep = EntryPoint(name="my_codec", value="qtts_bench.testing:DummyCodec", group="qtts_bench.systems")
    monkeypatch.setattr(registry, "entry_points", lambda group: [ep] if group == "qtts_bench.systems" else [])
    reg = Registry("system", "qtts_bench.systems")
    assert "my_codec" in reg.names()
    assert reg.create("my_codec", bits=3).bits == 3


TEST_DOUBLES = {"systems": {"dummy_codec", "dummy_token_codec", "dummy_codec_lm_tts", "dummy_tts"},
                "datasets": {"synthetic"}, "metrics": {"slow_metric"}}


def test_test_doubles_are_flagged_and_still_resolve():
    from qtts_bench.registry import DATASETS

    for kind, registry in (("systems", SYSTEMS), ("datasets", DATASETS), ("metrics", METRICS)):
        flagged = {e.name for e in registry.entries() if e.testing}
        assert flagged == TEST_DOUBLES[kind]
        shown = {e.name for e in registry.entries(include_testing=False)}
        assert not shown & TEST_DOUBLES[kind] and shown
    assert SYSTEMS.create("dummy_codec", bits=4).bits == 4  # suites and tests still use them


def test_list_hides_test_doubles_unless_all():
    for kind in TEST_DOUBLES:
        code = f"import qtts_bench.cli as c; c.main(['list', '{kind}'])"
        users = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout
        code_all = f"import qtts_bench.cli as c; c.main(['list', '{kind}', '--all'])"
        everything = subprocess.run([sys.executable, "-c", code_all], capture_output=True, text=True).stdout
        names = {line.split()[0] for line in users.splitlines()}
        names_all = {line.split()[0] for line in everything.splitlines()}
        assert not names & TEST_DOUBLES[kind] and names_all >= TEST_DOUBLES[kind] | names
        assert "[test double]" in everything and "[test double]" not in users


def test_register_testing_flag():
    reg = Registry("thing", "qtts_bench.test_none")
    reg.register("real", "qtts_bench.testing:DummyCodec", "a real one")
    reg.register("double", "qtts_bench.testing:DummyCodec", "a test double", testing=True, bits=3)
    assert [e.name for e in reg.entries(include_testing=False)] == ["real"]
    assert reg.entry("double").testing and reg.create("double").bits == 3


def test_every_dataset_loader_takes_the_suite_key_as_name():
    # Suites call loaders with name=<their dataset key>; a loader without it fails every suite using it.
    import inspect

    import qtts_bench.catalog  # noqa: F401  (registers the built-in entries)
    from qtts_bench.registry import DATASETS

    missing = [e.name for e in DATASETS.entries() if "name" not in inspect.signature(e.load()).parameters]
    assert missing == []

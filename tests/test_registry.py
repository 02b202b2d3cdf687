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

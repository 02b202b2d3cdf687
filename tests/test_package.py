"""qtts-bench as an installed package: suites by name, ``python -m qtts_bench``, one version number,
and (marked ``wheel``) the built wheel in a fresh virtual environment outside the checkout."""

import json
import os
import re
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

import qtts_bench
from qtts_bench.errors import ConfigError
from qtts_bench.suite import SHIPPED_SUITES, load_suite, resolve_suite, shipped_suites

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = {"codec_baselines", "codec_model_metrics", "pgc_hard", "qdac_codebooks", "seedtts_en", "seedtts_zh",
           "ablations/qdac_asr_supervision", "ablations/decoding"}


def _env(**extra) -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT), **extra}


# --- suites by name ---------------------------------------------------------------------------
def test_suites_live_in_the_package_and_the_checkout_links_to_them():
    assert SHIPPED_SUITES == ROOT / "qtts_bench" / "suites"
    assert SHIPPED <= set(shipped_suites())
    link = ROOT / "suites"
    assert link.is_symlink() and link.resolve() == SHIPPED_SUITES.resolve()


@pytest.mark.parametrize("given", ["codec_baselines", "codec_baselines.yaml", "suites/codec_baselines.yaml",
                                   "./suites/codec_baselines.yml"])
def test_a_name_resolves_to_the_shipped_suite_from_any_folder(given, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert resolve_suite(given) == SHIPPED_SUITES / "codec_baselines.yaml"


def test_ablations_resolve_by_their_name_and_include_relative_to_their_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    suite = load_suite("ablations/qdac_asr_supervision")
    assert suite.path == SHIPPED_SUITES / "ablations" / "qdac_asr_supervision.yaml"
    assert suite.name == "qdac_asr_supervision"


def test_a_local_file_always_wins(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    local = tmp_path / "codec_baselines.yaml"
    local.write_text("name: mine\ndatasets: {bundled: {}}\nsystems: {passthrough: {}}\nmetrics: {si_sdr: {}}\n")
    assert resolve_suite("codec_baselines") == Path("codec_baselines.yaml")
    assert resolve_suite("codec_baselines.yaml") == Path("codec_baselines.yaml")
    assert load_suite("codec_baselines").name == "mine"
    (tmp_path / "suites").mkdir()
    (tmp_path / "suites" / "pgc_hard.yaml").write_text(local.read_text().replace("mine", "my_pgc"))
    assert load_suite("suites/pgc_hard.yaml").name == "my_pgc"
    assert load_suite("pgc_hard").name == "pgc_hard"  # no ./pgc_hard[.yaml]: the shipped one


def test_an_unknown_name_lists_the_shipped_suites_with_did_you_mean(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as info:
        resolve_suite("codec_baseline")
    message = str(info.value)
    assert "suite file not found: codec_baseline" in message and "did you mean 'codec_baselines'" in message
    assert all(name in message for name in SHIPPED) and "qtts-bench list suites" in message
    with pytest.raises(ConfigError, match=r"^suite file not found: /nowhere/x.yaml$"):
        resolve_suite("/nowhere/x.yaml")
    (tmp_path / "folder").mkdir()
    with pytest.raises(ConfigError, match="is a folder, not a suite file"):
        resolve_suite("folder")


def test_include_is_relative_to_the_including_file_else_a_shipped_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    mine = tmp_path / "elsewhere" / "mine.yaml"
    mine.parent.mkdir()
    mine.write_text("include: codec_baselines\nname: mine\nsystems: {passthrough: {}}\n")
    suite = load_suite(mine)
    assert suite.name == "mine" and [m.key for m in suite.metrics][:2] == ["pesq_wb", "pesq_nb"]
    assert suite.files[0] == SHIPPED_SUITES / "codec_baselines.yaml"
    # a file of that name beside the including file wins over the shipped suite
    (mine.parent / "codec_baselines.yaml").write_text("datasets: {bundled: {}}\nmetrics: {si_sdr: {}}\n")
    assert [m.key for m in load_suite(mine).metrics] == ["si_sdr"]
    mine.write_text("include: no_such_base.yaml\nname: mine\n")
    with pytest.raises(ConfigError, match="include: file not found: .*no_such_base.yaml .*shipped suite"):
        load_suite(mine)


def test_list_suites_shows_each_with_the_first_sentence_of_its_description():
    proc = subprocess.run([sys.executable, "-m", "qtts_bench", "list", "suites"], capture_output=True, text=True,
                          env=_env(), cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = {line.split()[0]: line for line in proc.stdout.splitlines() if line.strip()}
    assert SHIPPED <= set(lines)
    assert lines["pgc_hard"].split(None, 1)[1] == "TTS on hard English text."
    assert "Classical codecs on the bundled real-speech set" in lines["codec_baselines"]
    assert "Opus, MP3" in lines["codec_baselines"] and "Note:" not in lines["codec_baselines"]


def test_run_by_name_writes_results_into_the_working_folder(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    proc = subprocess.run([sys.executable, "-m", "qtts_bench", "run", "codec_baselines", "--limit", "1",
                           "--systems", "passthrough", "--no-progress"], capture_output=True, text=True,
                          env=_env(), cwd=work, timeout=300)
    assert proc.returncode == 0, proc.stderr
    folder = work / "results" / "codec_baselines" / "bundled" / "passthrough"
    assert (folder / "summary.json").is_file() and (folder / "run.json").is_file()
    assert list((folder / "audio").glob("*.wav")), "codec_baselines keeps its outputs (save_audio: true)"
    assert not (SHIPPED_SUITES / "results").exists()


# --- one version, python -m ------------------------------------------------------------------
def test_one_version_number():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in project["project"] and "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "qtts_bench.__version__"}
    assert re.fullmatch(r"\d+\.\d+\.\d+([.-]?\w+)?", qtts_bench.__version__)
    proc = subprocess.run([sys.executable, "-m", "qtts_bench", "--version"], capture_output=True, text=True,
                          env=_env(), timeout=60)
    assert proc.returncode == 0 and proc.stdout.strip() == f"qtts-bench {qtts_bench.__version__}"


# --- the wheel -----------------------------------------------------------------------------------
PYPI_LIMIT = 100 * 1024 * 1024  # PyPI's default upload limit per file


def _run(args, cwd, env, timeout=900):
    proc = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(map(str, args))} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


@pytest.mark.wheel
def test_built_wheel_works_in_a_fresh_environment_outside_the_checkout(tmp_path):
    """python -m build (sdist, then the wheel from the sdist) -> a new venv with only that wheel and
    its core dependencies -> from an empty folder: list suites, run codec_baselines --limit 2."""
    pytest.importorskip("build", reason="the 'build' package is not installed (pip install -e '.[test]')")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    dist = tmp_path / "dist"
    _run([sys.executable, "-m", "build", "--outdir", dist, ROOT], ROOT, env)
    wheels = list(dist.glob("qtts_bench-*.whl"))
    assert len(wheels) == 1 and list(dist.glob("qtts_bench-*.tar.gz"))
    wheel = wheels[0]
    assert wheel.name.startswith(f"qtts_bench-{qtts_bench.__version__}-")
    size = wheel.stat().st_size
    print(f"wheel {wheel.name}: {size / 1e6:.1f} MB")
    assert size < PYPI_LIMIT
    names = set(zipfile.ZipFile(wheel).namelist())
    for needed in ("qtts_bench/__main__.py", "qtts_bench/suites/codec_baselines.yaml",
                   "qtts_bench/suites/ablations/qdac_asr_supervision.yaml",
                   "qtts_bench/data/bundled/manifest.jsonl", "qtts_bench/data/bundled/ATTRIBUTION.md",
                   "qtts_bench/data/bundled/LICENSES/CC-BY-SA-3.0.txt", "qtts_bench/data/pgc_hard_standin/items.yaml",
                   "qtts_bench/qdac/checkpoints/qdac16-50hz-asr/model.safetensors"):
        assert needed in names, needed
    assert sum(n.startswith("qtts_bench/data/bundled/audio/") for n in names) == 170
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", venv], tmp_path, env)
    python, exe = venv / "bin" / "python", venv / "bin" / "qtts-bench"
    _run([python, "-m", "pip", "install", "-q", wheel], tmp_path, env)  # the core dependencies only

    work = tmp_path / "work"
    work.mkdir()
    where = _run([python, "-c", "import qtts_bench; print(qtts_bench.__file__)"], work, env).stdout.strip()
    assert where.startswith(str(venv)), where
    listed = _run([exe, "list", "suites"], work, env).stdout
    assert SHIPPED <= {line.split()[0] for line in listed.splitlines() if line.strip()}
    text = _run([exe, "list", "systems"], work, env).stdout
    systems = {line.split()[0]: line for line in text.splitlines()}
    assert "ready" in systems["opus"] and "not installed" in systems["qdac"]  # no torch in this environment
    assert "not installed" in systems["kokoro"] and "pip install 'qtts-bench[torch]'" in text
    assert "usage: qtts-bench" in _run([python, "-m", "qtts_bench", "--help"], work, env).stdout

    _run([exe, "run", "codec_baselines", "--limit", "2", "--no-progress"], work, env)
    runs = sorted((work / "results" / "codec_baselines" / "bundled").iterdir())
    assert len(runs) == 9, runs
    for folder in runs:
        summary = json.loads((folder / "summary.json").read_text())
        assert summary["n_done"] == 2 and summary["n_system_errors"] == 0, folder
        assert len(list((folder / "audio").glob("*.wav"))) == 2, folder
    assert not list(venv.rglob("results"))  # never into site-packages


# --- list systems / metrics: what each entry needs, and whether it is installed here -------------------
def _listing(kind: str) -> dict[str, str]:
    proc = subprocess.run([sys.executable, "-m", "qtts_bench", "list", kind], capture_output=True, text=True,
                          env=_env(), timeout=120)
    assert proc.returncode == 0, proc.stderr
    return {line.split()[0]: line for line in proc.stdout.splitlines() if line.strip()}


def test_list_says_what_each_entry_needs_and_whether_it_is_installed():
    systems, metrics = _listing("systems"), _listing("metrics")
    assert systems["NAME"].split() == ["NAME", "NEEDS", "HERE", "WHAT"]
    assert systems["opus"].split()[1:3] == ["core", "ready"]
    assert systems["kokoro"].split()[1] == "[tts]" and systems["qdac"].split()[1] == "[torch]"
    assert "apt flite" in systems["flite"] and "apt festival festvox-kallpc16k" in systems["festival"]
    assert "needs parameters (dir)" in systems["outputs"] and "needs parameters (path)" in systems["encodec"]
    assert metrics["wer"].split()[1] == "[asr]" and metrics["sim_o"].split()[1] == "[speaker]"
    assert metrics["dnsmos_ovrl"].split()[1] == "[mos]" and metrics["pesq_wb"].split()[1:3] == ["core", "ready"]
    for line in [*systems.values(), *metrics.values()]:
        if line.split()[0] not in ("NAME", "NEEDS:", "not", "pip", "apt-get", "needs"):
            assert any(s in line for s in ("ready", "not installed", "needs parameters", "needs setup")), line
    assert "needs setup" in metrics["utmos"]  # local weights, never downloaded: not a package to install


def test_list_names_the_install_command_of_what_is_missing(monkeypatch, capsys):
    import importlib.util

    from qtts_bench.commands import list as list_command

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name.split(".")[0] in ("kokoro_onnx", "torch") else real(name, *a))
    import qtts_bench.registry as registry

    monkeypatch.setattr(registry, "extra_missing", lambda extra, distribution="qtts-bench":
                        ["torch", "safetensors"] if extra == "torch" else [])
    assert list_command.main(type("Args", (), {"kind": "systems", "show_all": False})()) == 0
    out = capsys.readouterr().out
    lines = {line.split()[0]: line for line in out.splitlines() if line.strip()}
    assert "not installed" in lines["kokoro"] and "not installed" in lines["qdac"]  # qdac: by its extra
    assert "ready" in lines["opus"]
    assert re.search(r"pip install 'qtts-bench\[tts\]'\s+\(kokoro\)", out)
    assert re.search(r"pip install 'qtts-bench\[torch\]'\s+\(qdac, qdac-1,", out)


def test_declared_needs_match_what_each_class_asks_to_install(monkeypatch):
    """With no optional module and no program installed, every entry's unavailable() names the
    extra (or Debian package) that BUILTIN_NEEDS declares for it; core entries need nothing."""
    import importlib.util
    import shutil

    from qtts_bench.registry import METRICS, SYSTEMS, entry_needs, extras_of

    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None)
    checked = 0
    for registry in (SYSTEMS, METRICS):
        for entry in registry.entries():
            try:
                obj = registry.create(entry.name)
            except Exception:
                continue  # needs parameters
            needs, why = entry_needs(entry), obj.unavailable()
            if needs == "core":
                assert why is None, (entry.name, why)
                continue
            checked += 1
            if needs.startswith("apt "):
                assert why and f"apt-get install {needs.split()[1]}" in why, (entry.name, needs, why)
            elif why is not None:  # a class that does not say (qdac): list checks its extra's distributions
                assert any(f"qtts-bench[{extra}]" in why for extra in extras_of(needs)), (entry.name, needs, why)
    assert checked > 20

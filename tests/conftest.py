import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    """Every test gets its own cache folder (synthetic audio, transcripts) under tmp_path."""
    monkeypatch.setenv("QTTS_BENCH_CACHE", str(tmp_path / "cache"))


@pytest.fixture
def write_suite(tmp_path):
    """Write a suite YAML into tmp_path and return its path."""
    def _write(text: str, name: str = "suite.yaml") -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path
    return _write


def cli(*args: str, cwd: Path | None = None, timeout: float = 300):
    """Run the installed CLI in a subprocess (as a user would) -> CompletedProcess."""
    import subprocess

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "qtts_bench.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)

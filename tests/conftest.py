import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    """Every test gets its own cache folder (synthetic audio, transcripts) under tmp_path."""
    monkeypatch.setenv("QTTS_BENCH_CACHE", str(tmp_path / "cache"))
    # Tests that run a suite twice (jobs 1 vs 2, Ray vs local) must call the system both times;
    # tests of the output cache turn it on in their suite (tests/test_output_cache.py).
    monkeypatch.setenv("QTTS_BENCH_OUTPUT_CACHE", "off")


@pytest.fixture
def one_torch_thread():
    """Tiny models on a shared CPU: 2 threads spin-wait on every small op (100x slower under load).
    Use with ``pytestmark = pytest.mark.usefixtures("one_torch_thread")`` in a module that has torch."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def write_suite(tmp_path):
    """Write a suite YAML into tmp_path and return its path."""
    def _write(text: str, name: str = "suite.yaml") -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path
    return _write


@pytest.fixture
def cli():
    """Run the CLI in a subprocess (as a user would) -> CompletedProcess."""
    import subprocess

    def _cli(*args: str, timeout: float = 300):
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        return subprocess.run([sys.executable, "-m", "qtts_bench.cli", *args], env=env,
                              capture_output=True, text=True, timeout=timeout)
    return _cli

"""Environment provenance for run.json: git state, versions, hardware, device."""

from __future__ import annotations

import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from . import __version__

TRACKED_PACKAGES = ("numpy", "scipy", "soundfile", "soxr", "pesq", "pystoi", "av", "pycodec2",
                    "torch", "safetensors", "faster-whisper", "ctranslate2", "resemblyzer",
                    "speechmos", "onnxruntime", "jiwer")


def git_state(path: Path | None = None) -> dict:
    """Commit and dirty flag of the qtts-bench source tree, or the reason it is unknown."""
    root = path or Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                                text=True, timeout=10)
        if commit.returncode != 0:
            return {"commit": None, "dirty": None, "reason": "not a git checkout (installed package)"}
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                                capture_output=True, text=True, timeout=10)
        return {"commit": commit.stdout.strip(), "dirty": bool(status.stdout.strip())}
    except (OSError, subprocess.TimeoutExpired) as exc:
        return {"commit": None, "dirty": None, "reason": f"git unavailable: {exc}"}


def package_version(name: str) -> str | None:
    """The installed version of distribution ``name``, or None when it is not installed."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def package_versions(names=TRACKED_PACKAGES) -> dict:
    """{distribution: version} for those of ``names`` that are installed."""
    return {name: v for name in names if (v := package_version(name)) is not None}


def _gpu_driver_visible() -> bool:
    """Whether a GPU driver is visible to this process, checked without importing torch."""
    import glob
    import os

    if not sys.platform.startswith("linux"):
        return True  # cannot tell cheaply: let torch decide
    return bool(os.path.exists("/proc/driver/nvidia") or glob.glob("/dev/nvidia[0-9]*")
                or os.path.exists("/dev/kfd") or os.path.exists("/dev/dxg"))


def resolve_device(requested: str) -> str:
    """``auto`` -> ``cuda`` when torch is installed and sees a GPU, else ``cpu``.

    On Linux with no GPU driver visible, ``auto`` is ``cpu`` without importing torch (about 2 s
    of start-up for runs that never use it).

    ``cuda`` / ``cuda:N`` are checked here, before anything else about the run: without torch,
    without a visible GPU or with N out of range, ConfigError says so and what to use instead.
    """
    import importlib.util

    if requested == "cpu":
        return requested
    if requested == "auto" and "torch" not in sys.modules and not _gpu_driver_visible():
        return "cpu"
    has_torch = importlib.util.find_spec("torch") is not None
    if requested == "auto":
        if not has_torch:
            return "cpu"
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested.split(":")[0] != "cuda":
        return requested
    from .errors import ConfigError

    fix = "use --device cpu (or auto: CUDA when available, else CPU)"
    if not has_torch:
        raise ConfigError(f"device '{requested}': CUDA is not available: torch is not installed "
                          f"(pip install 'qtts-bench[torch]' with a CUDA build of torch); {fix}")
    import torch

    if not torch.cuda.is_available():
        raise ConfigError(f"device '{requested}': CUDA is not available on this machine "
                          f"(torch.cuda.is_available() is False; torch {torch.__version__}, "
                          f"CUDA build: {torch.version.cuda or 'none'}); {fix}")
    index = requested.partition(":")[2]
    if index and (not index.isdigit() or int(index) >= torch.cuda.device_count()):
        raise ConfigError(f"device '{requested}': no such CUDA device (this machine has "
                          f"{torch.cuda.device_count()}: cuda:0..cuda:{torch.cuda.device_count() - 1})")
    return requested


def environment(device: str) -> dict:
    import os

    from .timing import device_name, provenance as timing_provenance

    return {
        "qtts_bench": __version__,
        "git": git_state(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu": device_name("cpu"),
        "cpu_count": os.cpu_count(),
        "device": device,
        "device_name": device_name(device),
        "timing": timing_provenance(device),
        "packages": package_versions(),
    }

"""Exceptions shared across the harness.

Each carries a message meant for a user: it names the file, field, utterance or extra involved.
"""


class QttsBenchError(Exception):
    """Base class for errors the CLI reports without a traceback."""


class ConfigError(QttsBenchError):
    """A suite, manifest or parameter is invalid. Raised before any work starts."""


class UnknownNameError(ConfigError):
    """A registry lookup failed; the message carries did-you-mean suggestions."""


class MissingExtraError(QttsBenchError):
    """An optional dependency is absent; the message names the extra to install."""

    def __init__(self, package: str, extra: str, purpose: str = "", install: str | None = None):
        """``extra``: a key of pyproject's optional-dependencies, or "core" for a base dependency.

        ``install`` replaces the suggested command where a plain extra cannot install it.
        """
        what = f" (needed for {purpose})" if purpose else ""
        if install is None:
            install = ("pip install --force-reinstall qtts-bench (it is a core dependency)" if extra == "core"
                       else f"pip install 'qtts-bench[{extra}]'")
        super().__init__(f"'{package}' is not installed{what}. Install it with: {install}")
        self.package, self.extra = package, extra


class MetricFailure(QttsBenchError):
    """A metric cannot score this utterance; recorded as a missing value with this reason."""


class NotApplicable(MetricFailure):
    """The metric does not apply to this system or utterance (not a failure): e.g. codebook usage
    of a codec that emits no tokens, time to first chunk of a system that does not stream, or
    compute time of audio made outside the harness. Recorded as a missing value with the reason
    and ``"not_applicable": true``; summaries count it apart from failures."""


class SystemFailure(QttsBenchError):
    """A system failed or returned unusable audio for this utterance."""


class StoreError(QttsBenchError):
    """A results folder cannot be read or written (corrupt items.jsonl, unwritable folder)."""


class RunLockedError(StoreError):
    """Another run holds the results folder; the message names it (pid, host, command, start)."""


def did_you_mean(name, choices, n: int = 1, cutoff: float = 0.6) -> str:
    """``"; did you mean 'x'?"`` (up to ``n`` suggestions) for a misspelt ``name``, or ``""``."""
    import difflib

    close = difflib.get_close_matches(str(name), [str(c) for c in choices], n=n, cutoff=cutoff)
    return f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""


def require(module: str, extra: str, purpose: str = "", package: str | None = None):
    """Import an optional module, or raise MissingExtraError naming the extra to install.

    ``package``: the distribution to name in the message when it differs from ``module``.
    """
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(package or module, extra, purpose) from exc


def not_installed(modules: dict[str, str], extra: str, purpose: str = "") -> str | None:
    """Why a set of optional modules is unusable, without importing them, or None.

    ``modules``: importable name -> distribution name, e.g. {"kokoro_onnx": "kokoro-onnx"}.
    """
    import importlib.util

    for module, package in modules.items():
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            return str(MissingExtraError(package, extra, purpose))
    return None

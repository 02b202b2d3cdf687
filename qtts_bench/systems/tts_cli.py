"""Classical TTS baselines run as Debian programs: espeak-ng, Flite and Festival (``text2wave``).

Each utterance is one subprocess call with an argument list (no shell): the text goes in a
UTF-8 temporary file whose path is an argument, so quotes, ``;``, ``$(...)`` and leading dashes
in the text are spoken, never interpreted. The engine writes a WAV into the same temporary
folder, read back with soundfile at the rate the engine really wrote. ``load()`` checks the
program (a missing one names its apt package), checks the voice, and synthesizes a short probe
to learn the voice's true sample rate, which becomes ``sample_rate``.

Every call has a ``timeout`` (seconds, default 60): on expiry the engine's whole process group
is killed and the utterance fails with "timed out after N s". Text over ``max_chars``
(default 5000) fails without running the engine. All three engines are deterministic: the same
text gives bit-identical audio. None of them streams (each writes one complete file).

- ``espeak_ng``: formant synthesis, many languages; ``voice`` (default ``en-us``; see
  ``espeak-ng --voices``), ``speed`` in words per minute (80..450, default 175); 22.05 kHz.
  espeak-ng reads ``[[...]]`` in text as phoneme mnemonics (its own input syntax).
- ``flite``: CMU Flite, English; ``voice`` one of ``flite -lv`` (``slt`` default, ``kal16``,
  ``awb``, ``rms``: 16 kHz; ``kal``: 8 kHz). ``awb_time`` speaks only clock times and is refused.
- ``festival``: Festival 2.5 ``text2wave``, English; ``voice`` ``kal_diphone`` (Debian package
  ``festvox-kallpc16k``, 16 kHz). Every call starts Festival afresh (about 1 s of start-up,
  included in the measured time).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import ClassVar

import numpy as np

from ..errors import ConfigError, SystemFailure
from ..provenance import package_versions
from .base import TTS
from .tts_common import (
    DEFAULT_MAX_CHARS,
    PROMPT_NOTE,
    as_audio,
    check_common,
    check_language,
    check_name,
    check_number,
    check_text,
    kill_group,
    tail,
)

DEFAULT_TIMEOUT = 60.0
PROBE_TEXT = "Hello."
_TEXT_FILE, _WAV_FILE = "input.txt", "output.wav"


def run_program(command: list[str], timeout: float, label: str) -> tuple[int, bytes]:
    """Run ``command`` (an argument list, no shell) -> ``(returncode, stderr)``.

    The program runs in its own session; on timeout the whole process group is killed and
    SystemFailure says so. stdin is empty; stdout is discarded.
    """
    try:
        proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, start_new_session=True)
    except OSError as exc:
        raise SystemFailure(f"{label}: cannot start {command[0]}: {exc}") from None
    try:
        _, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        raise SystemFailure(f"{label} timed out after {timeout:g} s (process killed)") from None
    except BaseException:  # KeyboardInterrupt and the like: leave no engine behind
        _kill_group(proc)
        raise
    return proc.returncode, stderr or b""


def _kill_group(proc: subprocess.Popen) -> None:
    kill_group(proc)
    proc.communicate()


def _exit_reason(code: int) -> str:
    return f"killed by signal {-code}" if code < 0 else f"exit code {code}"


def debian_version(package: str) -> str | None:
    """Installed version of a Debian package (dpkg-query), or None when unknown."""
    if shutil.which("dpkg-query") is None:
        return None
    try:
        out = subprocess.run(["dpkg-query", "-W", "-f=${Version}", package], check=False,
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return None
    return out.stdout.strip() or None


def program_version(command: list[str]) -> str | None:
    """The version banner of a program (its output lines joined), or None."""
    try:
        out = subprocess.run(command, check=False, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = " ".join(line.strip() for line in (out.stdout + out.stderr).splitlines() if line.strip())
    return text or None


class CliTTS(TTS):
    """Shared machinery: program lookup, probe, one temp-folder subprocess call per utterance.

    Subclasses set the class attributes and implement ``_command``; ``_check_voice`` may verify
    the voice with the program at load.
    """

    label: ClassVar[str]
    program: ClassVar[str]  # executable run per utterance
    apt_package: ClassVar[str]  # Debian package providing it
    version_program: ClassVar[str]  # executable whose version banner is recorded
    version_args: ClassVar[tuple[str, ...]] = ("--version",)
    voice_pattern: ClassVar[str] = r"[a-z0-9_]{1,64}"
    streaming = False
    deterministic = True  # the same text gives the same audio (the engine's version is in provenance)

    def __init__(self, voice: str, timeout: float = DEFAULT_TIMEOUT, max_chars: int = DEFAULT_MAX_CHARS):
        self.voice = check_name("voice", voice, self.voice_pattern, self.label, self._voice_hint())
        self.timeout, self.max_chars = check_common(timeout, max_chars, self.label)
        self._exe: str | None = None
        self._info: dict = {}

    # subclasses ------------------------------------------------------------------------------
    def _command(self, exe: str, text_file: str, wav_file: str) -> list[str]:
        raise NotImplementedError

    def _voice_hint(self) -> str:
        return ""

    def _check_voice(self, exe: str) -> None:
        """Raise ConfigError when the program does not have ``self.voice`` (default: the probe tells)."""

    @property
    def language(self) -> str:
        """The language this voice speaks (items in another language fail)."""
        return "en"

    def _settings(self) -> dict:
        return {}

    # TTS API ---------------------------------------------------------------------------------
    def unavailable(self) -> str | None:
        if shutil.which(self.program) is None:
            return f"{self.program} is not installed: apt-get install {self.apt_package}"
        return None

    def load(self, device: str = "cpu") -> None:
        if self._exe is not None:
            return
        exe = shutil.which(self.program)
        if exe is None:
            raise ConfigError(f"{self.program} is not installed: apt-get install {self.apt_package}")
        self._check_voice(exe)
        try:
            _, rate = self._run(exe, PROBE_TEXT)
        except SystemFailure as exc:
            raise ConfigError(f"{self.label}: voice {self.voice!r} does not work ({exc}){self._install_hint()}") \
                from None
        self.sample_rate = rate
        self.device = device
        version_exe = shutil.which(self.version_program)
        self._info = {"program": exe,
                      "program_version": program_version([version_exe, *self.version_args]) if version_exe else None,
                      "debian_package": self.apt_package, "debian_version": debian_version(self.apt_package)}
        self._exe = exe

    def _install_hint(self) -> str:
        return ""

    def _run(self, exe: str, text: str) -> tuple[np.ndarray, int]:
        import soundfile as sf

        with tempfile.TemporaryDirectory(prefix=f"qtts-{self.label}-") as tmp:
            text_file, wav_file = Path(tmp) / _TEXT_FILE, Path(tmp) / _WAV_FILE
            text_file.write_text(text + "\n", encoding="utf-8")
            code, stderr = run_program(self._command(exe, str(text_file), str(wav_file)), self.timeout, self.label)
            if code != 0:
                raise SystemFailure(f"{self.label} failed ({_exit_reason(code)}): {tail(stderr)}")
            if not wav_file.is_file() or wav_file.stat().st_size == 0:
                raise SystemFailure(f"{self.label} wrote no audio: {tail(stderr)}")
            try:
                audio, rate = sf.read(str(wav_file), dtype="float32", always_2d=True)
            except (sf.LibsndfileError, RuntimeError) as exc:
                raise SystemFailure(f"{self.label} wrote an unreadable WAV ({exc}): {tail(stderr)}") from None
        mono = audio.mean(axis=1) if audio.shape[1] > 1 else audio[:, 0]
        return as_audio(mono, self.label), int(rate)

    def synthesize(self, text, *, prompt_audio=None, prompt_text=None, language=None, seed=None) -> np.ndarray:
        if self._exe is None:
            raise SystemFailure(f"{self.label}: call load() before synthesize()")
        check_text(text, self.max_chars, self.label)
        check_language(language, self.language, self.label)
        audio, rate = self._run(self._exe, text)
        if rate != self.sample_rate:
            raise SystemFailure(f"{self.label} wrote {rate} Hz audio; this voice gave {self.sample_rate} Hz at load")
        return audio

    def provenance(self) -> dict:
        return {"engine": self.label, "voice": self.voice, "language": self.language, **self._settings(),
                "sample_rate": self.sample_rate, "timeout": self.timeout, "max_chars": self.max_chars,
                "command": self._command(self._exe or self.program, f"<{_TEXT_FILE}>", f"<{_WAV_FILE}>"),
                "text_input": "UTF-8 temporary file", "deterministic": True, "streaming": False,
                "seed": "ignored (deterministic)", "prompt": PROMPT_NOTE,
                "versions": package_versions(("soundfile",)), **self._info}


class EspeakNgTTS(CliTTS):
    """espeak-ng (formant synthesis), ``voice`` (default en-us), ``speed`` in words/minute; 22.05 kHz."""

    label = "espeak_ng"
    program = "espeak-ng"
    apt_package = "espeak-ng"
    version_program = "espeak-ng"
    voice_pattern = r"[A-Za-z0-9][A-Za-z0-9_+/-]{0,63}"
    sample_rate = 22050

    def __init__(self, voice: str = "en-us", speed: int = 175, timeout: float = DEFAULT_TIMEOUT,
                 max_chars: int = DEFAULT_MAX_CHARS):
        super().__init__(voice, timeout, max_chars)
        self.speed = check_number("speed", speed, 80, 450, self.label, integer=True)

    def _voice_hint(self) -> str:
        return "expected an espeak-ng voice name such as 'en-us', 'en-gb', 'fr', 'en-us+f3' (espeak-ng --voices)"

    @property
    def language(self) -> str:
        return re.split(r"[+]", self.voice)[0].rsplit("/", 1)[-1]

    def _settings(self) -> dict:
        return {"speed_wpm": self.speed}

    def _command(self, exe, text_file, wav_file):
        return [exe, "-v", self.voice, "-s", str(self.speed), "-b", "1", "-w", wav_file, "-f", text_file]


# Flite 2.2's built-in voices; awb_time is a limited-domain voice that only says clock times.
FLITE_LIMITED_DOMAIN = ("awb_time",)


class FliteTTS(CliTTS):
    """CMU Flite, English; ``voice`` from ``flite -lv`` (slt, kal16, awb, rms: 16 kHz; kal: 8 kHz)."""

    label = "flite"
    program = "flite"
    apt_package = "flite"
    version_program = "flite"
    sample_rate = 16000

    def __init__(self, voice: str = "slt", timeout: float = DEFAULT_TIMEOUT, max_chars: int = DEFAULT_MAX_CHARS):
        super().__init__(voice, timeout, max_chars)
        if voice in FLITE_LIMITED_DOMAIN:
            raise ConfigError(f"flite: voice {voice!r} is a limited-domain voice (it only speaks clock times); "
                              "use slt, kal16, awb, rms or kal")
        if voice == "kal":
            self.sample_rate = 8000

    def _voice_hint(self) -> str:
        return "expected a flite voice name such as 'slt', 'kal16', 'awb', 'rms', 'kal' (flite -lv)"

    def _check_voice(self, exe: str) -> None:
        # flite falls back to its default voice for an unknown name (exit code 0), so ask it.
        try:
            out = subprocess.run([exe, "-lv"], check=False, capture_output=True, text=True, timeout=self.timeout)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ConfigError(f"flite: cannot list voices with `flite -lv`: {exc}") from None
        listed = out.stdout.split(":", 1)[-1].split()
        if self.voice not in listed:
            raise ConfigError(f"flite: voice {self.voice!r} is not built into this flite; it has "
                              f"{', '.join(v for v in listed if v not in FLITE_LIMITED_DOMAIN)}")

    def _command(self, exe, text_file, wav_file):
        return [exe, "-voice", self.voice, "-f", text_file, "-o", wav_file]


# Debian packages of Festival voices, for the install hint.
FESTIVAL_VOICE_PACKAGES = {"kal_diphone": "festvox-kallpc16k", "ked_diphone": "festvox-kdlpc16k",
                           "rab_diphone": "festvox-rablpc16k"}
FESTIVAL_VOICE_DIR = Path("/usr/share/festival/voices")


class FestivalTTS(CliTTS):
    """Festival ``text2wave``, English; ``voice`` kal_diphone (festvox-kallpc16k, 16 kHz)."""

    label = "festival"
    program = "text2wave"
    apt_package = "festival"
    version_program = "festival"
    sample_rate = 16000

    def __init__(self, voice: str = "kal_diphone", timeout: float = DEFAULT_TIMEOUT,
                 max_chars: int = DEFAULT_MAX_CHARS):
        super().__init__(voice, timeout, max_chars)

    def _voice_hint(self) -> str:
        return "expected a Festival voice name such as 'kal_diphone' (lower-case letters, digits, _)"

    def _install_hint(self) -> str:
        installed = sorted(p.name for p in FESTIVAL_VOICE_DIR.glob("*/*") if p.is_dir())
        package = FESTIVAL_VOICE_PACKAGES.get(self.voice, "the festvox-* package of that voice")
        return f"; installed voices: {', '.join(installed) or 'none'}; apt-get install {package}"

    def _command(self, exe, text_file, wav_file):
        # The voice name is checked against [a-z0-9_]+ at construction, so this expression is inert.
        return [exe, "-eval", f"(voice_{self.voice})", "-o", wav_file, text_file]

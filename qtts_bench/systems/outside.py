"""TTS that runs outside the harness: pre-generated audio (``outputs``) or a user's command (``command``).

``outputs`` — audio made elsewhere, one file per item (how seed-tts-eval is used)
------------------------------------------------------------------------------
Parameters: ``dir`` (the folder), ``pattern`` (default ``"{id}"``), ``sample_rate`` (optional).

* File of an item: ``<dir>/<pattern>.wav``, else ``.flac``. ``pattern`` may use ``{id}`` (the
  item id; a ``/`` in it is a subfolder), ``{flat_id}`` (the id with ``/`` replaced by ``__``:
  the layout ``save_audio: true`` writes, ``<run folder>/audio/<flat_id>.wav``) and
  ``{basename}`` (the part of the id after its last ``/``). A pattern ending in ``.wav`` or
  ``.flac`` names the file exactly. seed-tts-eval's layout, ``<dir>/<utt>.wav``, is the default:
  the ``seedtts`` dataset's ids are meta.lst's ``utt`` without ``.wav``. When both ``x.wav`` and
  ``x.flac`` exist the item fails (which one was meant is unknown).
* Sample rate: ``sample_rate`` when given; otherwise the rate of the first audio file under
  ``dir`` in sorted path order, read at ``load()``. Files at another rate are resampled to it
  (soxr VHQ); each record's ``system`` block carries ``output_sample_rate`` (the file's own).
* A missing, unreadable, empty or silent file fails that utterance with a reason naming the
  path: it counts as failed in summary.json and is never skipped (seed-tts-eval skips missing
  files silently, so a system that fails on hard items scores better there).
* No compute time: ``seconds`` is None, so ``rtf``/``peak_memory`` are missing with the reason
  "the audio was generated outside the harness (outputs system): no compute time".
* Provenance: ``dir``, ``pattern``, the number of .wav/.flac files under ``dir`` and
  ``listing_sha256``, a sha256 over their sorted (relative path, size in bytes) pairs — file
  contents are not hashed there (slow for big sets); each record instead carries the
  ``output_file`` it read and that file's ``output_sha256``.

``command`` — run your TTS's command line once per utterance
----------------------------------------------------------
Parameters: ``command`` (a list of arguments, or a string split with ``shlex.split`` before
substitution), ``sample_rate`` (of the audio the command writes; default 16000), ``timeout``
(seconds, default 300), ``env`` (extra environment variables), ``cwd``.

* Placeholders, substituted inside single arguments only (the text can never add an argument or
  reach a shell: no shell is used): ``{text}``, ``{prompt_audio}`` (a temporary 16-bit WAV of the
  item's prompt, resampled to ``sample_rate``), ``{prompt_text}``, ``{language}``, ``{seed}``,
  ``{id}``, ``{out}`` (the temporary .wav path the command must write). ``{{``/``}}`` are
  literal braces. An unknown placeholder, or a command without ``{out}``, is a ConfigError.
  ``{prompt_text}`` and ``{language}`` are empty strings when the item has none; a command using
  ``{prompt_audio}`` makes the system need a prompt on every item (checked by validation).
* Each call runs in a new session (process group). Past ``timeout`` the whole group is killed
  and the utterance fails with "timed out after N s". A non-zero exit fails it with the exit
  code and the last 500 characters of stderr; an absent or empty ``{out}`` fails it too.
  Either way the run goes on.
* ``seconds`` (for RTF) is the wall time of the whole command, process start-up and any model
  loading the command does included, measured with :func:`qtts_bench.timing.measure`.
  ``peak_memory`` is the command's own peak RSS (``wait4`` rusage), not the harness's.
* A written file at another rate than ``sample_rate`` is resampled (soxr VHQ) and the record
  carries ``output_sample_rate``.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import shutil
import string
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import ClassVar

import numpy as np

from ..audio import Audio, AudioError, check_usable, read_audio, resample, write_audio
from ..errors import ConfigError, SystemFailure
from ..hashing import sha256_file
from .base import Generation, Request, System
from .tts_common import kill_group, tail

OUTPUT_SUFFIXES = (".wav", ".flac")
PATTERN_FIELDS = ("id", "flat_id", "basename")
COMMAND_FIELDS = ("text", "prompt_audio", "prompt_text", "language", "seed", "id", "out")
UNTIMED = "the audio was generated outside the harness (outputs system): no compute time"
PLACEHOLDER = "SET-ME"  # shipped suites use values starting with this for paths the user must set
STDERR_TAIL = 500


def _fields(template: str, allowed: tuple[str, ...], what: str) -> set[str]:
    """Placeholder names in ``template``; ConfigError for unknown names, conversions or bad braces."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ConfigError(f"{what} {template!r}: {exc} (write {{{{ and }}}} for literal braces)") from None
    names = set()
    for _, name, spec, conversion in parsed:
        if name is None:
            continue
        if name not in allowed:
            raise ConfigError(f"{what} {template!r}: unknown placeholder {{{name}}}; "
                              f"allowed: {', '.join('{' + a + '}' for a in allowed)}")
        if spec or conversion:
            raise ConfigError(f"{what} {template!r}: {{{name}}} takes no format spec or conversion")
        names.add(name)
    return names


def _read_output(path: Path, rate: int, what: str) -> tuple[np.ndarray, int]:
    """Read ``path`` -> (mono float32 samples resampled to ``rate``, the file's own rate)."""
    try:
        audio = read_audio(path)
        check_usable(audio.samples, f"{what} {path}")
    except AudioError as exc:
        raise SystemFailure(str(exc)) from None
    return resample(audio.samples, audio.sample_rate, rate), audio.sample_rate


# ------------------------------------------------------------------------------- outputs
class OutputsTTS(System):
    """Pre-generated audio, one file per item: ``<dir>/<pattern>.wav|.flac`` (see module doc)."""

    kind = "tts"
    needs: ClassVar[tuple[str, ...]] = ()

    def __init__(self, dir: str, pattern: str = "{id}", sample_rate: int | None = None):
        if not isinstance(dir, str) or not dir.strip():
            raise ConfigError("outputs: 'dir' must be the path of the folder holding the generated audio")
        if dir.startswith(PLACEHOLDER):
            raise ConfigError(f"outputs: 'dir' is not set ({dir}): point it at the folder holding your "
                              f"system's audio, one <id>.wav (or .flac) per item")
        root = Path(dir).expanduser()
        if not root.is_dir():
            raise ConfigError(f"outputs: folder of generated audio not found: {root} (set the system's "
                              f"'dir', e.g. --set systems.<label>.params.dir=/data/outputs/en)")
        if not isinstance(pattern, str) or not pattern:
            raise ConfigError("outputs: 'pattern' must be a non-empty string such as '{id}'")
        _fields(pattern, PATTERN_FIELDS, "outputs: pattern")
        if Path(pattern).is_absolute() or ".." in Path(pattern).parts:
            raise ConfigError(f"outputs: pattern {pattern!r} must stay inside 'dir' (no absolute path, no '..')")
        if sample_rate is not None and (isinstance(sample_rate, bool) or not isinstance(sample_rate, int)
                                        or sample_rate <= 0):
            raise ConfigError(f"outputs: sample_rate must be a positive integer (Hz), got {sample_rate!r}")
        self.root = root.resolve()
        self.pattern = pattern
        self.fixed_rate = sample_rate
        self._listing: list[tuple[str, int]] | None = None
        first = next((p for p in self.root.rglob("*") if p.suffix.lower() in OUTPUT_SUFFIXES), None)
        if first is None:
            raise ConfigError(f"outputs: {self.root} holds no {' or '.join(OUTPUT_SUFFIXES)} files")
        self.sample_rate = sample_rate or 16000  # the real rate is read at load() when not given
        self.rate_rule = ("the 'sample_rate' parameter" if sample_rate else
                          "the rate of the first audio file under dir (sorted path order), read at load()")

    def _files(self) -> list[tuple[str, int]]:
        if self._listing is None:
            files = sorted(p for p in self.root.rglob("*") if p.is_file() and p.suffix.lower() in OUTPUT_SUFFIXES)
            self._listing = [(p.relative_to(self.root).as_posix(), p.stat().st_size) for p in files]
        return self._listing

    def load(self, device: str = "cpu") -> None:
        super().load(device)
        if self.fixed_rate is None:
            files = self._files()
            if not files:
                raise ConfigError(f"outputs: {self.root} holds no {' or '.join(OUTPUT_SUFFIXES)} files")
            first = self.root / files[0][0]
            try:
                import soundfile as sf

                self.sample_rate = int(sf.info(str(first)).samplerate)
            except Exception as exc:  # libsndfile raises several types
                raise ConfigError(f"outputs: cannot read the sample rate of {first}: {exc} "
                                  f"(or set the system's 'sample_rate')") from None

    def provenance(self) -> dict:
        files = self._files()
        h = hashlib.sha256()
        for name, size in files:
            h.update(f"{name}\t{size}\n".encode())
        return {"dir": str(self.root), "pattern": self.pattern, "n_files": len(files),
                "listing_sha256": h.hexdigest(),
                "listing_hash": "sha256 over the sorted 'relative path<TAB>size in bytes' lines of every "
                                ".wav/.flac under dir; contents are not hashed here (each record's "
                                "output_sha256 is the hash of the file scored)",
                "sample_rate": self.sample_rate, "sample_rate_rule": self.rate_rule,
                "timing": UNTIMED}

    def not_cacheable(self) -> str | None:
        return ("it reads outputs made elsewhere from files: nothing to save by caching, and the files' "
                "contents are not part of its identity (a file rewritten in place would be stale)")

    def path_for(self, item_id: str) -> list[Path]:
        """Candidate files for ``item_id``, in the order they are looked for."""
        rel = self.pattern.format(id=item_id, flat_id=item_id.replace("/", "__"),
                                  basename=item_id.rsplit("/", 1)[-1])
        path = self.root / rel
        if not path.resolve().is_relative_to(self.root):
            raise SystemFailure(f"item id {item_id!r} points outside dir ({path})")
        if path.suffix.lower() in OUTPUT_SUFFIXES:
            return [path]
        return [path.with_name(path.name + s) for s in OUTPUT_SUFFIXES]

    def generate(self, request: Request) -> Generation:
        candidates = self.path_for(request.item_id)
        found = [p for p in candidates if p.is_file()]
        if not found:
            names = " or ".join(str(p) for p in candidates)
            raise SystemFailure(f"output file not found: {names}")
        if len(found) > 1:
            raise SystemFailure(f"ambiguous output: both {found[0]} and {found[1]} exist")
        path = found[0]
        samples, file_rate = _read_output(path, self.sample_rate, "output file")
        extra = {"output_file": str(path), "output_sha256": sha256_file(path), "output_sample_rate": file_rate,
                 "untimed": UNTIMED}
        return Generation(samples, seconds=None, extra=extra)


# ------------------------------------------------------------------------------- command
class CommandTTS(System):
    """A user's command line run once per utterance, writing ``{out}`` (see module doc)."""

    kind = "tts"
    needs: tuple[str, ...] = ("text",)

    def __init__(self, command: list | str, sample_rate: int = 16000, timeout: float = 300.0,
                 env: dict | None = None, cwd: str | None = None):
        if isinstance(command, str):
            try:
                argv = shlex.split(command)
            except ValueError as exc:
                raise ConfigError(f"command: cannot split {command!r}: {exc}") from None
        elif isinstance(command, (list, tuple)):
            argv = list(command)
        else:
            raise ConfigError(f"command: expected a list of arguments or a string, got {type(command).__name__}")
        if not argv:
            raise ConfigError("command: empty")
        for arg in argv:
            if isinstance(arg, bool) or not isinstance(arg, (str, int, float)):
                raise ConfigError(f"command: every argument must be a string, got {arg!r}")
        argv = [str(a) for a in argv]
        used = set()
        for arg in argv:
            used |= _fields(arg, COMMAND_FIELDS, "command: argument")
        if _fields(argv[0], COMMAND_FIELDS, "command: program"):
            raise ConfigError(f"command: the program (first argument {argv[0]!r}) cannot be a placeholder")
        if "out" not in used:
            hint = ("; in a suite a YAML list under params is a grid axis (one run per element), so write the "
                    "argument list inside a second list, command: [[prog, --out, '{out}']], or as one string"
                    if isinstance(command, str) and len(argv) == 1 else "")
            raise ConfigError(f"command: no argument uses {{out}}, the .wav path the command must write{hint}")
        if isinstance(sample_rate, bool) or not isinstance(sample_rate, int) or sample_rate <= 0:
            raise ConfigError(f"command: sample_rate must be a positive integer (Hz), got {sample_rate!r}")
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
            raise ConfigError(f"command: timeout must be a positive number of seconds, got {timeout!r}")
        env = env or {}
        if not isinstance(env, dict):
            raise ConfigError("command: env must be a mapping of NAME: value")
        for key, value in env.items():
            if not isinstance(key, str) or isinstance(value, (dict, list)) or value is None:
                raise ConfigError(f"command: env {key!r}: expected a string value, got {value!r}")
        if cwd is not None and not Path(cwd).expanduser().is_dir():
            raise ConfigError(f"command: cwd folder not found: {cwd}")
        self.argv, self.used = argv, used
        self.sample_rate, self.timeout = sample_rate, float(timeout)
        self.env = {k: str(v) for k, v in env.items()}
        self.cwd = str(Path(cwd).expanduser().resolve()) if cwd is not None else None
        self.program = self._find_program(argv[0].replace("{{", "{").replace("}}", "}"))
        self.needs = ("text", "prompt") if "prompt_audio" in used else ("text",)

    def _find_program(self, program: str) -> str:
        if "/" in program:
            path = Path(program).expanduser()
            if not path.is_absolute() and self.cwd:
                path = Path(self.cwd) / path
            if not path.is_file():
                raise ConfigError(f"command: program not found: {path}")
            if not os.access(path, os.X_OK):
                raise ConfigError(f"command: program is not executable: {path}")
            return os.path.abspath(path)  # not resolve(): a venv's python is a symlink that must stay one
        search = self.env.get("PATH", os.environ.get("PATH", os.defpath))
        found = shutil.which(program, path=search)
        if found is None:
            raise ConfigError(f"command: program '{program}' not found on PATH")
        return found

    def not_cacheable(self) -> str | None:
        return ("it runs an external command: qtts-bench cannot see which model it runs or whether "
                "its output is deterministic")

    def provenance(self) -> dict:
        program = Path(self.program)
        return {"command": self.argv, "program": str(program),
                "program_sha256": sha256_file(program) if program.is_file() else None,
                "sample_rate": self.sample_rate, "timeout_seconds": self.timeout,
                "env": self.env, "cwd": self.cwd, "shell": False,
                "timing": "wall time of the whole command per utterance, process start-up and any model "
                          "loading inside the command included",
                "peak_memory": "peak RSS of the command's process (wait4 rusage ru_maxrss)"}

    def generate(self, request: Request) -> Generation:
        from ..timing import measure

        if request.text is None or not request.text.strip():
            raise SystemFailure("the item has no text to synthesize")
        with tempfile.TemporaryDirectory(prefix="qtts-command-") as tmp:
            out = Path(tmp) / "out.wav"
            values = {"text": request.text, "prompt_text": request.prompt_text or "",
                      "language": request.language or "", "seed": "" if request.seed is None else str(request.seed),
                      "id": request.item_id, "out": str(out), "prompt_audio": ""}
            if "prompt_audio" in self.used:
                if request.prompt_audio is None:
                    raise SystemFailure("the command uses {prompt_audio} but the item has no prompt audio")
                prompt = Path(tmp) / "prompt.wav"
                write_audio(prompt, Audio(np.asarray(request.prompt_audio, np.float32), self.sample_rate))
                values["prompt_audio"] = str(prompt)
            argv = [self.program] + [arg.format(**values) for arg in self.argv[1:]]
            (code, stderr, peak), seconds, _ = measure(lambda: self._run(argv), self.device)
            if code is None:
                raise SystemFailure(f"command timed out after {self.timeout:g} s (process group killed)"
                                    + (f"; stderr: {tail(stderr, STDERR_TAIL)}" if stderr.strip() else ""))
            if code != 0:
                how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
                raise SystemFailure(f"command {how}; stderr: {tail(stderr, STDERR_TAIL)}")
            if not out.is_file() or out.stat().st_size == 0:
                raise SystemFailure(f"command exited 0 but wrote no audio to {{out}} ({out})"
                                    + (f"; stderr: {tail(stderr, STDERR_TAIL)}" if stderr.strip() else ""))
            samples, file_rate = _read_output(out, self.sample_rate, "command output")
        return Generation(samples, seconds=seconds, peak_memory=peak, extra={"output_sample_rate": file_rate})

    def _run(self, argv: list[str]) -> tuple[int | None, bytes, int | None]:
        """-> (exit code, None on timeout; stderr; peak RSS bytes of the command or None)."""
        env = {**os.environ, **self.env}
        with tempfile.TemporaryFile() as err:
            try:
                proc = subprocess.Popen(argv, cwd=self.cwd, env=env, stdin=subprocess.DEVNULL,
                                        stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)
            except OSError as exc:
                raise SystemFailure(f"cannot start command {argv[0]}: {exc}") from None
            result: dict = {}

            def reap():  # wait4 gives the child's own resource usage (peak RSS)
                _, status, usage = os.wait4(proc.pid, 0)
                result.update(status=status, usage=usage)

            waiter = threading.Thread(target=reap, daemon=True)
            waiter.start()
            waiter.join(self.timeout)
            timed_out = waiter.is_alive()
            if timed_out:
                kill_group(proc)
                waiter.join(10)
            else:
                kill_group(proc)  # leftovers the command started in its group
            proc.returncode = os.waitstatus_to_exitcode(result["status"]) if "status" in result else -9
            err.seek(0)
            stderr = err.read()
        usage = result.get("usage")
        scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux
        peak = int(usage.ru_maxrss * scale) if usage is not None and usage.ru_maxrss > 0 else None
        return (None if timed_out else proc.returncode), stderr, peak

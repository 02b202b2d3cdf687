"""Dataset items and importers.

Manifest (JSONL), one object per line::

    {"id": "u1", "audio": "wavs/u1.flac", "text": "hello", "language": "en", "speaker": "s1",
     "prompt_audio": "p/s1.wav", "prompt_text": "a prompt"}

Only ``id`` is required; ``audio`` is the ground-truth recording (the codec input, or the TTS
reference). Relative paths are relative to the manifest's folder. Two optional fields serve hard
TTS sets: ``spoken_text``, the reference that WER is scored against where it differs from the
written ``text`` a TTS reads ("Main St." -> "main street"), and ``category``, which reports
break down by.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..errors import ConfigError

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")
ITEM_FIELDS = ("id", "audio", "text", "language", "speaker", "prompt_audio", "prompt_text",
               "spoken_text", "category")


@dataclass(frozen=True)
class Item:
    """One utterance. Paths are absolute (resolved at import)."""

    id: str
    audio: str | None = None
    text: str | None = None
    language: str | None = None
    speaker: str | None = None
    prompt_audio: str | None = None
    prompt_text: str | None = None
    spoken_text: str | None = None  # what WER scores against when it differs from ``text``
    category: str | None = None     # e.g. "numbers"; reports break down by it

    def provides(self) -> set[str]:
        """Which metric requirements this item can satisfy."""
        have = set()
        if self.audio:
            have.add("reference")
        if self.text:
            have.add("text")
        if self.prompt_audio:
            have.add("prompt")
        return have


@dataclass
class Dataset:
    name: str
    items: list[Item]
    source: str  # where it came from (path or description)
    params: dict = field(default_factory=dict)

    def __post_init__(self):
        seen = set()
        for item in self.items:
            if item.id in seen:
                raise ConfigError(f"dataset '{self.name}' ({self.source}): duplicate id '{item.id}'")
            seen.add(item.id)

    def items_sha256(self) -> str:
        """Hash of the item list (ids, texts, paths): identifies exactly what was evaluated."""
        h = hashlib.sha256()
        for item in self.items:
            fields = asdict(item)
            for late in ("spoken_text", "category"):  # added later: hashes of older sets stay the same
                if fields[late] is None:
                    del fields[late]
            h.update(json.dumps(fields, sort_keys=True).encode())
        return h.hexdigest()

    def provides(self) -> set[str]:
        """Requirements that every item satisfies."""
        if not self.items:
            return set()
        return set.intersection(*(item.provides() for item in self.items))


def read_utf8(path: Path) -> str:
    """The text of ``path``, or ConfigError naming the file, line and byte when it is not UTF-8."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")  # as read_text()
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise ConfigError(
            f"{path}:{line}: not UTF-8 (byte 0x{data[exc.start]:02x} at column {column}; Latin-1 or "
            f"Windows-1252 text?); convert it with iconv -f latin1 -t utf-8 '{path}' > '{path}.utf8' "
            f"&& mv '{path}.utf8' '{path}'") from None


def _resolve(base: Path, value: str | None) -> str | None:
    if not value:
        return None
    path = Path(value)
    return str(path if path.is_absolute() else (base / path).resolve())


def _check_files(items: list[Item], source: str) -> None:
    for item in items:
        for name in ("audio", "prompt_audio"):
            path = getattr(item, name)
            if path and not Path(path).is_file():
                raise ConfigError(f"{source}: utterance '{item.id}': {name} file not found: {path}")


def load_manifest(path: str, name: str | None = None) -> Dataset:
    """Read a JSONL manifest. Errors name the file, line and field."""
    manifest = Path(path)
    if not manifest.is_file():
        raise ConfigError(f"manifest not found: {manifest}")
    items = []
    for lineno, line in enumerate(read_utf8(manifest).splitlines(), 1):
        if not line.strip():
            continue
        where = f"{manifest}:{lineno}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{where}: not valid JSON ({exc.msg})") from None
        if not isinstance(row, dict):
            raise ConfigError(f"{where}: expected a JSON object")
        unknown = set(row) - set(ITEM_FIELDS)
        if unknown:
            raise ConfigError(f"{where}: unknown field(s) {sorted(unknown)}; allowed: {list(ITEM_FIELDS)}")
        if not isinstance(row.get("id"), str) or not row["id"]:
            raise ConfigError(f"{where}: field 'id' is required and must be a non-empty string")
        for key, value in row.items():
            if value is not None and not isinstance(value, str):
                raise ConfigError(f"{where}: field '{key}' must be a string")
        base = manifest.parent
        row["audio"] = _resolve(base, row.get("audio"))
        row["prompt_audio"] = _resolve(base, row.get("prompt_audio"))
        items.append(Item(**row))
    _check_files(items, str(manifest))
    return Dataset(name or manifest.stem, items, str(manifest.resolve()), {"path": str(path)})


def load_seedtts(path: str, language: str | None = None, name: str | None = None) -> Dataset:
    """Import seed-tts-eval's ``meta.lst``: ``utt|prompt_text|prompt_wav|target_text[|gt_wav]``.

    Paths are relative to the list's folder; ``utt`` may omit ``.wav``.
    """
    meta = Path(path)
    if not meta.is_file():
        get = ("Get the test set (seedtts_testset.tar: en/meta.lst, zh/meta.lst, zh/hardcase.lst and their "
               "prompt wavs) from the link in https://github.com/BytedanceSpeech/seed-tts-eval's README "
               "(https://drive.google.com/file/d/1GlSjVfSHkW3-leKKBlfrjuuTGqQ_xaLP) and unpack it")
        if str(path).startswith("SET-ME"):  # a shipped suite's placeholder, which says what to --set
            raise ConfigError(f"the seed-tts-eval list is not set ({path}). {get}.")
        raise ConfigError(f"seed-tts-eval list not found: {meta}. {get}, then point the dataset at a list: "
                          f"--set datasets.{name or '<label>'}.params.path=/data/seedtts_testset/"
                          f"{language or 'en'}/meta.lst")
    items = []
    for lineno, line in enumerate(read_utf8(meta).splitlines(), 1):
        if not line.strip():
            continue
        fields = line.rstrip("\n").split("|")
        if len(fields) not in (4, 5):
            raise ConfigError(
                f"{meta}:{lineno}: expected 4 or 5 '|'-separated fields "
                f"(utt|prompt_text|prompt_wav|target_text[|gt_wav]), got {len(fields)}"
            )
        utt, prompt_text, prompt_wav, target_text = fields[:4]
        gt = fields[4] if len(fields) == 5 and fields[4] else None
        utt_id = utt[:-4] if utt.endswith(".wav") else utt
        items.append(Item(
            id=utt_id,
            audio=_resolve(meta.parent, gt),
            text=target_text,
            language=language,
            prompt_audio=_resolve(meta.parent, prompt_wav),
            prompt_text=prompt_text or None,
        ))
    _check_files(items, str(meta))
    return Dataset(name or meta.parent.name or meta.stem, items, str(meta.resolve()),
                   {"path": str(path), "language": language})


def load_folder(path: str, language: str | None = None, name: str | None = None) -> Dataset:
    """Every audio file under ``path`` (recursive); ``x.txt`` beside ``x.wav`` is its transcript."""
    root = Path(path)
    if not root.is_dir():
        raise ConfigError(f"dataset folder not found: {root}")
    items = []
    for audio in sorted(p for p in root.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES):
        transcript = audio.with_suffix(".txt")
        text = read_utf8(transcript).strip() if transcript.is_file() else None
        rel = audio.relative_to(root).with_suffix("")
        items.append(Item(id=rel.as_posix(), audio=str(audio.resolve()), text=text, language=language,
                          speaker=rel.parent.as_posix() if rel.parent != Path(".") else None))
    if not items:
        raise ConfigError(f"dataset folder {root} holds no audio files ({', '.join(AUDIO_SUFFIXES)})")
    return Dataset(name or root.name, items, str(root.resolve()), {"path": str(path), "language": language})


FLITE_SLT_HELDOUT = Path(__file__).resolve().parent / "flite_slt_heldout" / "manifest.jsonl"


def load_flite_slt_heldout(name: str = "flite_slt_heldout") -> Dataset:
    """The bundled held-out sentences of QTTS's training voice (flite slt, 16 kHz; README beside it).
    ``name``: the suite's key for it (suites pass their dataset key)."""
    return load_manifest(str(FLITE_SLT_HELDOUT), name=name)

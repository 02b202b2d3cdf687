"""Character tokenizer for QTTS (no torch).

Text is normalised, then split into characters of a fixed vocabulary: the printable ASCII
characters except upper-case letters (69 characters) plus one padding token (id 0).

Normalisation, in order (documented so that a user can predict what the model reads):

1. Unicode NFKC (full-width forms, ligatures, superscripts -> plain forms);
2. the mapping :data:`MAPPING` (typographic quotes, dashes, ellipsis, non-breaking spaces ...);
3. accents removed (NFKD, combining marks dropped: "café" -> "cafe");
4. lower case; runs of whitespace (tabs, newlines) -> one space; leading/trailing space removed.

Any character still outside the vocabulary (e.g. Chinese, Cyrillic, emoji) raises
:class:`TokenizerError` naming the characters: never silently dropped, never a crash.
"""

from __future__ import annotations

import re
import unicodedata

from ..errors import ConfigError

PAD = "<pad>"
# Printable ASCII (32..126) without A-Z: text is lower-cased first.
CHARACTERS = "".join(chr(c) for c in range(32, 127) if not "A" <= chr(c) <= "Z")
MAPPING = {
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'", "`": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u00ab": '"', "\u00bb": '"', "\u2033": '"',
    "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2014": "-", "\u2015": "-", "\u2212": "-",
    "\u2026": "...", "\u00a0": " ", "\u2009": " ", "\u202f": " ", "\u200b": "",
    "\u00df": "ss", "\u00e6": "ae", "\u0153": "oe", "\u00f8": "o", "\u0142": "l", "\u00f0": "d", "\u00fe": "th",
    "\u00d7": "x", "\u00b0": " degrees", "\u20ac": " euros", "\u00a3": " pounds",
}
_SPACES = re.compile(r"\s+")


class TokenizerError(ConfigError):
    """Text the tokenizer cannot represent (the message lists the characters)."""


class CharTokenizer:
    """Characters -> ids. ``encode`` raises TokenizerError on out-of-vocabulary characters."""

    kind = "chars"

    def __init__(self, characters: str = CHARACTERS):
        if len(set(characters)) != len(characters):
            raise ConfigError("tokenizer: duplicate characters in the vocabulary")
        self.characters = characters
        self.index = {c: i + 1 for i, c in enumerate(characters)}  # 0 is padding

    @property
    def vocab_size(self) -> int:
        return len(self.characters) + 1

    @staticmethod
    def normalize(text: str) -> str:
        text = unicodedata.normalize("NFKC", text)
        text = "".join(MAPPING.get(c, c) for c in text)
        text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
        return _SPACES.sub(" ", text.lower()).strip()

    def encode(self, text: str) -> list[int]:
        """Normalised text -> ids (no padding). TokenizerError on empty text or unknown characters."""
        if not isinstance(text, str):
            raise TokenizerError(f"tokenizer: expected a string, got {type(text).__name__}")
        norm = self.normalize(text)
        if not norm:
            raise TokenizerError("tokenizer: the text is empty after normalisation")
        unknown = sorted({c for c in norm if c not in self.index})
        if unknown:
            shown = ", ".join(f"{c!r} (U+{ord(c):04X})" for c in unknown[:8])
            more = f" and {len(unknown) - 8} more" if len(unknown) > 8 else ""
            raise TokenizerError(f"tokenizer: {len(unknown)} character(s) outside the vocabulary: {shown}{more} "
                                 "(the QTTS character vocabulary is lower-case printable ASCII after the "
                                 "normalisation in qtts_bench/qtts/tokenizer.py)")
        return [self.index[c] for c in norm]

    def decode(self, ids) -> str:
        return "".join(self.characters[i - 1] for i in ids if i > 0)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "characters": self.characters}

    @classmethod
    def from_dict(cls, data: dict, source: str = "tokenizer") -> "CharTokenizer":
        if not isinstance(data, dict) or data.get("kind") != cls.kind or not isinstance(data.get("characters"), str):
            raise ConfigError(f"{source}: expected {{kind: chars, characters: ...}}, got {data!r:.80}")
        return cls(data["characters"])


DEFAULT_VOCAB_SIZE = CharTokenizer().vocab_size

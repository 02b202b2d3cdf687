"""Classical codec baselines: Opus, MP3, AMR-NB, G.722 (FFmpeg via PyAV), Codec2 (pycodec2).

Each codec works at its own ``sample_rate`` (the runner resamples to it): mono float32 in,
packets kept in memory (:class:`EncodedStream`), mono float32 out, same length as the input.

Delay: every codec's algorithmic delay is measured at ``load()`` by encoding and decoding a
deterministic speech-like calibration signal and cross-correlating output and input
(:mod:`qtts_bench.systems.delay`); ``decode`` drops that many leading samples and cuts or pads
to the input length. The measured delay and method are in ``provenance()``. Measurements are
kept on disk (``<cache>/codec-delay-*/``, :func:`qtts_bench.cache.cache_root`), keyed by the
class, its configuration, the codec library versions, the sample rate and the calibration
recipe (including the code that measures), so a later load reads it instead of calibrating;
provenance says which (``delay.from_cache``).

Bits: ``encoded_bits`` counts the codec bitstream only, no container. What exactly is counted
is stated per class (``bit_accounting`` in provenance).

Input is clipped to [-1, 1] before encoding (integer-PCM encoders need it; applied to all
codecs for consistency). Construction only validates parameters; PyAV / pycodec2 are imported
in ``load()``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..audio import AudioError, provenance as audio_provenance
from ..cache import ResultCache
from ..errors import ConfigError, require
from ..provenance import package_version
from .base import Codec
from .delay import calibration_signal, estimate_delay, remove_delay

# Delay calibration: five 2-s speech-like signals, correlations summed (see delay.estimate_delay).
CALIBRATION = {"seconds": 2.0, "seeds": (0, 1, 2, 3, 4), "max_lag_s": 0.3}
_DELAY_CACHE: dict[tuple, dict] = {}  # (class, configuration) -> delay info; calibration is deterministic
# On-disk delay cache: bump DELAY_CACHE_FORMAT when what a cache file holds changes.
DELAY_CACHE_FORMAT = 1
DELAY_FIELDS = ("samples", "ms", "method", "per_signal_samples", "mean_peak_correlation", "calibration_signals",
                "max_lag_s", "tail_padding")  # what _measure_delay returns; a cache file must hold exactly these

log = logging.getLogger("qtts_bench")


@dataclass(frozen=True)
class EncodedStream:
    """One encoded utterance.

    ``packets``: the codec's packets/frames in order (bytes); ``n_samples``: input length at
    the codec's sample rate, restored by ``decode``; ``header``: out-of-band codec setup the
    decoder needs (Opus ID header), not counted as transmitted bits.
    """

    packets: tuple[bytes, ...]
    n_samples: int
    header: bytes = b""


@lru_cache(maxsize=1)
def _measuring_code_sha256() -> str:
    """sha256 of the code that measures a delay (this module and delay.py): an edit re-measures."""
    from . import delay

    digest = hashlib.sha256()
    for module_file in (__file__, delay.__file__):
        digest.update(Path(module_file).read_bytes())
    return digest.hexdigest()


def _json_norm(obj):
    return json.loads(json.dumps(obj, sort_keys=True, default=str))


@lru_cache(maxsize=8)
def _calibration_signals(sample_rate: int) -> tuple[np.ndarray, ...]:
    signals = tuple(calibration_signal(sample_rate, CALIBRATION["seconds"], seed)
                    for seed in CALIBRATION["seeds"])
    for s in signals:
        s.flags.writeable = False
    return signals


def _check_choice(name: str, value, allowed, what: str):
    """Return ``value`` as int if it is one of ``allowed``; else raise ConfigError listing them."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or float(value) != int(value) or int(value) not in allowed:
        shown = ", ".join(str(a) for a in sorted(allowed))
        raise ConfigError(f"{what}: invalid {name}={value!r}; allowed values: {shown}")
    return int(value)


def _check_range(name: str, value, low: int, high: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or float(value) != int(value) or not low <= int(value) <= high:
        raise ConfigError(f"{what}: invalid {name}={value!r}; allowed values: integers {low}..{high}")
    return int(value)


def _as_input(audio: np.ndarray, what: str) -> np.ndarray:
    """Mono float32 (n,) clipped to [-1, 1]; AudioError for other shapes or non-finite values."""
    x = np.asarray(audio, dtype=np.float32)
    if x.ndim != 1:
        raise AudioError(f"{what} expects mono audio of shape (n,), got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise AudioError(f"{what} input contains NaN or infinite samples")
    return np.clip(x, -1.0, 1.0)


def _to_int16(x: np.ndarray) -> np.ndarray:
    return np.round(x * 32767.0).astype(np.int16)


class Passthrough(Codec):
    """Identity codec: decode(encode(x)) == x exactly. No bitrate (None)."""

    reference = True  # the input itself (ground truth): reports mark its rows and never rank them best
    deterministic = True

    def __init__(self, sample_rate: int = 16000):
        self.sample_rate = _check_range("sample_rate", sample_rate, 1, 10**6, "passthrough")

    def encode(self, audio: np.ndarray) -> np.ndarray:
        return _as_input(audio, "passthrough").copy()

    def decode(self, encoded: np.ndarray) -> np.ndarray:
        return np.asarray(encoded, dtype=np.float32).copy()

    def provenance(self) -> dict:
        return {"codec": "passthrough", "sample_rate": self.sample_rate,
                "delay": {"samples": 0, "method": "identity"}, "input": "clipped to [-1, 1]"}


class _MeasuredDelayCodec(Codec):
    """Shared machinery: lazy library loading, delay calibration, length restoration.

    Subclasses implement ``_load_libraries``, ``_encode_raw(x) -> (packets, header)``,
    ``_decode_raw(EncodedStream) -> float32 at sample_rate`` and ``_packet_bits``.
    """

    codec_label: str = ""
    delay_method: str = "waveform"
    # Same packets and samples for the same input (Codec2's decoder noise is reset per utterance).
    deterministic = True
    # True when the encoder is not flushed past its own lookahead (G.722, Codec2): encode then
    # appends ``delay_samples`` zeros so the decoded output still covers the whole input.
    pads_tail: bool = False
    bit_accounting: str = ""

    def __init__(self) -> None:
        self.delay_samples: int | None = None
        self._delay_info: dict = {}

    # --- lifecycle -------------------------------------------------------------------------
    def load(self, device: str = "cpu") -> None:
        """Import the codec library and measure the delay (CPU only; ``device`` is ignored).

        The measurement is cached per class and configuration for the life of the process, and
        on disk across processes (:meth:`_disk_cached_delay`).
        """
        if "_lib" not in self.__dict__:
            self._lib = self._load_libraries()
        if self.delay_samples is not None:
            return
        key = (type(self).__name__, self._config_key())
        if key not in _DELAY_CACHE:
            _DELAY_CACHE[key] = self._disk_cached_delay()
        self._delay_info = dict(_DELAY_CACHE[key])
        self.delay_samples = int(self._delay_info["samples"])

    def delay_identity(self) -> dict:
        """Everything the measured delay depends on: the disk cache's key (JSON-able)."""
        identity = {
            "system": f"{type(self).__module__}.{type(self).__qualname__}",
            "config": dict(self._config_key()),
            "libraries": self._library_versions(),
            "resampler": audio_provenance(),  # Opus decodes at 48 kHz and is resampled back
            "sample_rate": self.sample_rate,
            "calibration": {**CALIBRATION, "method": self.delay_method, "pads_tail": self.pads_tail,
                            "code_sha256": _measuring_code_sha256()},
        }
        return _json_norm(identity)

    def _disk_cached_delay(self) -> dict:
        """The delay info from the disk cache, else measured and written there (atomically).

        -> the fields of :meth:`_measure_delay` plus ``from_cache`` (bool) and ``cache_file`` (the
        file read or written; None when it could not be written). An unreadable, corrupt or
        foreign cache file is ignored (measured again and rewritten); an unwritable cache folder
        only costs the next load a calibration.
        """
        identity = self.delay_identity()
        cache = ResultCache("codec-delay", {"format": DELAY_CACHE_FORMAT})
        name = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()
        path = cache.json_path(name)
        stored = cache.get_json(name)
        if (isinstance(stored, dict) and stored.get("identity") == identity and isinstance(stored.get("delay"), dict)
                and sorted(stored["delay"]) == sorted(DELAY_FIELDS)
                and type(stored["delay"]["samples"]) is int):
            return {**stored["delay"], "from_cache": True, "cache_file": str(path)}
        if os.path.exists(path):  # (never raises)
            log.warning("%s: ignoring the delay cache file %s (unreadable or not this codec's); measuring again",
                        self.codec_label, path)
        info = self._measure_delay()
        try:
            cache.put_json(name, {"identity": identity, "delay": info})
        except OSError as exc:
            log.warning("%s: cannot write the delay cache file %s (%s); the next load measures again",
                        self.codec_label, path, exc.strerror or exc)
            path = None
        return {**info, "from_cache": False, "cache_file": str(path) if path else None}

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state.pop("_lib", None)  # modules do not pickle; load() imports again
        return state

    def _config_key(self) -> tuple:
        """The public constructor parameters (what changes the codec's output)."""
        return tuple(sorted((k, v) for k, v in vars(self).items()
                            if not k.startswith("_") and k not in ("delay_samples", "device")))

    def _measure_delay(self) -> dict:
        signals, decoded = _calibration_signals(self.sample_rate), []
        for signal in signals:
            packets, header = self._encode_raw(signal)
            decoded.append(self._decode_raw(EncodedStream(tuple(packets), len(signal), header)))
        est = estimate_delay(reference=signals, estimate=decoded, sample_rate=self.sample_rate,
                             max_lag_s=CALIBRATION["max_lag_s"], method=self.delay_method)
        return {
            "samples": est.samples,
            "ms": round(1000.0 * est.samples / self.sample_rate, 4),
            "method": (f"argmax of {est.method} cross-correlation (decoded vs input), summed over "
                       f"{len(signals)} calibration signals"),
            "per_signal_samples": list(est.per_signal),
            "mean_peak_correlation": round(est.peak, 4),
            "calibration_signals": (f"qtts_bench.systems.delay.calibration_signal(seconds="
                                    f"{CALIBRATION['seconds']}, seed in {list(CALIBRATION['seeds'])}) "
                                    f"at {self.sample_rate} Hz"),
            "max_lag_s": CALIBRATION["max_lag_s"],
            "tail_padding": "delay_samples zeros appended before encoding" if self.pads_tail
                            else "none (encoder flush covers its lookahead)",
        }

    def _load_libraries(self):
        """Import and return the codec library module."""
        raise NotImplementedError

    def _library_versions(self) -> dict:
        """Versions of the codec libraries doing the work (provenance; part of the delay cache key)."""
        raise NotImplementedError

    # --- codec interface -------------------------------------------------------------------
    def encode(self, audio: np.ndarray) -> EncodedStream:
        """float32 (n,) at ``sample_rate`` -> :class:`EncodedStream`."""
        self.load()
        x = _as_input(audio, self.codec_label)
        n = len(x)
        if n == 0:
            return EncodedStream((), 0)
        if self.pads_tail and self.delay_samples > 0:
            x = np.concatenate([x, np.zeros(self.delay_samples, dtype=np.float32)])
        packets, header = self._encode_raw(x)
        return EncodedStream(tuple(packets), n, header)

    def decode(self, encoded: EncodedStream) -> np.ndarray:
        """:class:`EncodedStream` -> float32 (n_samples,) at ``sample_rate``, delay removed."""
        self.load()
        if not encoded.packets:
            return np.zeros(encoded.n_samples, dtype=np.float32)
        decoded = self._decode_raw(encoded)
        return remove_delay(decoded, self.delay_samples, encoded.n_samples)

    def encoded_bits(self, encoded: EncodedStream) -> int:
        """Codec bitstream bits of one utterance (see ``bit_accounting``)."""
        self.load()
        return int(sum(self._packet_bits(p) for p in encoded.packets))

    def _packet_bits(self, packet: bytes) -> int:
        return 8 * len(packet)

    def _encode_raw(self, x: np.ndarray) -> tuple[list[bytes], bytes]:
        raise NotImplementedError

    def _decode_raw(self, encoded: EncodedStream) -> np.ndarray:
        raise NotImplementedError

    def _base_provenance(self) -> dict:
        self.load()
        return {
            "codec": self.codec_label,
            "sample_rate": self.sample_rate,
            "nominal_bitrate": self.nominal_bitrate,
            "bit_accounting": self.bit_accounting,
            "delay": dict(self._delay_info),
            "input": "float32 clipped to [-1, 1]",
        }


# --- FFmpeg codecs through PyAV -----------------------------------------------------------------

class _PyAvCodec(_MeasuredDelayCodec):
    """Encoder/decoder pair from the FFmpeg inside the PyAV wheel."""

    encoder_name: str
    decoder_name: str
    sample_format: str  # encoder input format: "flt", "fltp" or "s16"
    decoder_rate: int | None = None  # rate the decoder outputs, when it differs (Opus: 48000)
    bundled_libraries: tuple[str, ...] = ()  # av.libs file prefixes recorded in provenance
    bitrate: int  # bit/s, validated by each subclass
    sets_encoder_bit_rate: bool = True  # False where the encoder has one fixed rate (G.722)

    def _load_libraries(self):
        return require("av", "core", f"the {self.codec_label} codec")

    @property
    def nominal_bitrate(self) -> float:
        return float(self.bitrate)

    def _bit_rate(self) -> int | None:
        return self.bitrate if self.sets_encoder_bit_rate else None

    def _encoder_options(self) -> dict[str, str]:
        return {}

    def _encode_raw(self, x: np.ndarray) -> tuple[list[bytes], bytes]:
        av = self._lib
        enc = av.CodecContext.create(self.encoder_name, "w")
        enc.sample_rate = self.sample_rate
        enc.layout = "mono"
        enc.format = self.sample_format
        enc.time_base = Fraction(1, self.sample_rate)
        if self._bit_rate() is not None:
            enc.bit_rate = self._bit_rate()
        enc.options = self._encoder_options()
        enc.open()
        frame_size = enc.frame_size or 1024
        n_frames = -(-len(x) // frame_size)
        padded = np.zeros(n_frames * frame_size, dtype=np.float32)  # zero-pad the last frame
        padded[: len(x)] = x
        if self.sample_format == "s16":
            padded = _to_int16(padded)
        packets: list[bytes] = []
        for i in range(n_frames):
            chunk = padded[i * frame_size : (i + 1) * frame_size][None, :]
            frame = av.AudioFrame.from_ndarray(chunk, format=self.sample_format, layout="mono")
            frame.sample_rate = self.sample_rate
            frame.time_base = Fraction(1, self.sample_rate)
            frame.pts = i * frame_size
            packets.extend(bytes(p) for p in enc.encode(frame))
        packets.extend(bytes(p) for p in enc.encode(None))  # flush
        return packets, bytes(enc.extradata or b"")

    def _decode_raw(self, encoded: EncodedStream) -> np.ndarray:
        av = self._lib
        rate = self.decoder_rate or self.sample_rate
        dec = av.CodecContext.create(self.decoder_name, "r")
        dec.sample_rate = rate
        dec.layout = "mono"
        if encoded.header:
            dec.extradata = encoded.header
        dec.open()
        chunks = []
        for data in encoded.packets:
            chunks.extend(_frame_samples(f) for f in dec.decode(av.Packet(data)))
        chunks.extend(_frame_samples(f) for f in dec.decode(None))
        out = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.float32)
        if rate != self.sample_rate:
            from ..audio import resample

            out = resample(out, rate, self.sample_rate)
        return out.astype(np.float32, copy=False)

    def _library_versions(self) -> dict:
        av = self._lib
        return {"pyav_version": av.__version__, "ffmpeg_version": getattr(av, "ffmpeg_version_info", None),
                "ffmpeg_libraries": {k: ".".join(map(str, v)) for k, v in av.library_versions.items()},
                "bundled_libraries": _bundled_libraries("av", self.bundled_libraries)}

    def provenance(self) -> dict:
        info = self._base_provenance()
        info.update({
            "encoder": self.encoder_name,
            "decoder": self.decoder_name,
            "encoder_input_format": self.sample_format,
            "encoder_bit_rate": self._bit_rate(),
            "encoder_options": self._encoder_options(),
            "decoder_output_rate": self.decoder_rate or self.sample_rate,
            **self._library_versions(),
        })
        if self.decoder_rate and self.decoder_rate != self.sample_rate:
            from .. import audio

            info["output_resampling"] = {"from": self.decoder_rate, "to": self.sample_rate,
                                         **audio.provenance()}
        return info


def _frame_samples(frame) -> np.ndarray:
    """Mono float32 samples of a decoded PyAV audio frame (int16 scaled by 1/32768)."""
    arr = frame.to_ndarray().reshape(-1)
    if arr.dtype == np.int16:
        return arr.astype(np.float32) / 32768.0
    return arr.astype(np.float32, copy=False)


def _bundled_libraries(distribution: str, prefixes: tuple[str, ...]) -> dict:
    """File names (with soname versions) and, where the library reports one, version strings."""
    import ctypes
    from importlib.metadata import PackageNotFoundError, files

    try:
        paths = [p for p in (files(distribution) or []) if p.parent.name.endswith(".libs")]
    except PackageNotFoundError:
        return {}
    getters = {"libopus": "opus_get_version_string", "libmp3lame": "get_lame_version"}
    found = {}
    for prefix in prefixes:
        for p in paths:
            if p.name.startswith(prefix + "-"):
                entry = {"file": p.name}
                getter = getters.get(prefix)
                if getter:
                    try:
                        fn = getattr(ctypes.CDLL(str(p.locate())), getter)
                        fn.restype = ctypes.c_char_p
                        entry["version"] = fn().decode()
                    except (OSError, AttributeError):
                        pass
                found[prefix] = entry
    return found


class OpusCodec(_PyAvCodec):
    """Opus (libopus encoder and decoder), mono, at ``sample_rate`` (default 16 kHz).

    16 kHz: the benchmark's speech and its wide-band metrics (PESQ-WB, STOI) live in 0-8 kHz;
    fed 16 kHz, libopus codes at most that band (wide-band), so no bits go to content the
    metrics discard and the comparison with 16 kHz neural codecs is like for like. The libopus
    decoder always outputs 48 kHz; it is resampled back with the harness resampler (soxr VHQ).

    ``vbr``: "constrained" (default: libopus VBR whose average never exceeds the target, as in
    VoIP; pauses cost less, so it spends a little under nominal, e.g. 5.70 / 11.85 kbit/s at
    6 / 12 kbit/s on LibriVox speech, and at 6 kbit/s scores ~0.5 PESQ-WB above hard CBR,
    which pads packets), "off" (hard CBR: every packet has bitrate * frame_ms / 8000 bytes) or
    "on" (unconstrained VBR; identical to constrained in SILK-only modes below ~20 kbit/s).
    ``encoded_bits`` reports what was really spent either way.
    Bits: Opus packet bytes x 8 (TOC byte included; no Ogg/RTP framing; ID header not counted).
    """

    codec_label = "opus"
    encoder_name = "libopus"
    decoder_name = "libopus"
    sample_format = "flt"
    decoder_rate = 48000
    bundled_libraries = ("libopus",)
    bit_accounting = "Opus packet bytes x 8 (TOC included; no Ogg/RTP framing; ID header excluded)"

    SAMPLE_RATES = (8000, 12000, 16000, 24000, 48000)
    FRAME_MS = (2.5, 5, 10, 20, 40, 60)
    VBR = ("off", "constrained", "on")
    APPLICATIONS = ("voip", "audio", "lowdelay")

    def __init__(self, bitrate: int = 12000, sample_rate: int = 16000, vbr: str = "constrained",
                 application: str = "voip", frame_ms: float = 20, complexity: int = 10):
        super().__init__()
        what = "opus"
        self.bitrate = _check_range("bitrate", bitrate, 6000, 510000, what)
        self.sample_rate = _check_choice("sample_rate", sample_rate, self.SAMPLE_RATES, what)
        if vbr not in self.VBR:
            raise ConfigError(f"{what}: invalid vbr={vbr!r}; allowed values: {', '.join(self.VBR)}")
        if application not in self.APPLICATIONS:
            raise ConfigError(f"{what}: invalid application={application!r}; allowed values: "
                              f"{', '.join(self.APPLICATIONS)}")
        if frame_ms not in self.FRAME_MS:
            raise ConfigError(f"{what}: invalid frame_ms={frame_ms!r}; allowed values: "
                              f"{', '.join(str(f) for f in self.FRAME_MS)}")
        self.vbr, self.application, self.frame_ms = vbr, application, float(frame_ms)
        self.complexity = _check_range("complexity", complexity, 0, 10, what)

    def _encoder_options(self) -> dict[str, str]:
        return {"vbr": self.vbr, "application": self.application,
                "frame_duration": f"{self.frame_ms:g}", "compression_level": str(self.complexity)}


class Mp3Codec(_PyAvCodec):
    """MP3 (LAME encoder, FFmpeg float decoder), CBR, mono, 16 kHz (MPEG-2 Layer III).

    16 kHz keeps the whole wide band (0-8 kHz) the speech metrics see, with 576-sample frames
    (36 ms); at 32 kbit/s that is 144 bytes per frame. Higher MPEG-1 rates would spend the same
    bits on >8 kHz content that 16 kHz material does not have. LAME's own defaults otherwise
    (quality, bit reservoir on, automatic lowpass).
    Bits: MP3 frame bytes x 8 (frame header and side info included; no ID3/Xing tags).
    """

    codec_label = "mp3"
    encoder_name = "libmp3lame"
    decoder_name = "mp3float"
    sample_format = "fltp"
    bundled_libraries = ("libmp3lame",)
    bit_accounting = "MP3 frame bytes x 8 (headers and side info included; no ID3/Xing/Info tags)"
    BITRATES = (8000, 16000, 24000, 32000, 40000, 48000, 56000, 64000, 80000, 96000, 112000,
                128000, 144000, 160000)  # MPEG-2 Layer III at 16 kHz

    def __init__(self, bitrate: int = 32000):
        super().__init__()
        self.bitrate = _check_choice("bitrate", bitrate, self.BITRATES, "mp3 (16 kHz, CBR)")
        self.sample_rate = 16000

    def _encoder_options(self) -> dict[str, str]:
        return {"abr": "0", "reservoir": "1"}


# 3GPP TS 26.101 table 1a: speech bits per 20 ms frame for frame types 0..7, SID (8) = 39.
_AMR_NB_FRAME_BITS = {0: 95, 1: 103, 2: 118, 3: 134, 4: 148, 5: 159, 6: 204, 7: 244, 8: 39}


class AmrNbCodec(_PyAvCodec):
    """AMR-NB (opencore-amr encoder and decoder), 8 kHz, 20 ms frames, DTX off.

    Bits: each packet is one frame in the RFC 4867 storage format (1 header byte + payload
    padded to whole bytes). Counted: the frame type's speech bits from 3GPP TS 26.101
    (e.g. 244 per frame at 12.2 kbit/s), read from each frame's header; the header byte and
    the octet padding are storage-format overhead and not counted.
    """

    codec_label = "amr_nb"
    encoder_name = "libopencore_amrnb"
    decoder_name = "libopencore_amrnb"
    sample_format = "s16"
    bundled_libraries = ("libopencore-amrnb",)
    bit_accounting = ("speech bits of each frame's type per 3GPP TS 26.101 (header byte and octet "
                      "padding of the RFC 4867 storage format excluded)")
    BITRATES = (4750, 5150, 5900, 6700, 7400, 7950, 10200, 12200)

    def __init__(self, bitrate: int = 12200):
        super().__init__()
        self.bitrate = _check_choice("bitrate", bitrate, self.BITRATES, "amr_nb")
        self.sample_rate = 8000

    def _encoder_options(self) -> dict[str, str]:
        return {"dtx": "0"}

    def _packet_bits(self, packet: bytes) -> int:
        if not packet:
            return 0
        frame_type = (packet[0] >> 3) & 0x0F
        return _AMR_NB_FRAME_BITS.get(frame_type, 0)  # 15 = NO_DATA


class G722Codec(_PyAvCodec):
    """G.722 sub-band ADPCM (FFmpeg), 16 kHz, 64 kbit/s (the only mode FFmpeg encodes).

    Bits: packet bytes x 8 (4 bits per input sample). FFmpeg's encoder is not flushed past the
    QMF delay, so ``delay_samples`` zeros are appended before encoding.
    """

    codec_label = "g722"
    encoder_name = "g722"
    decoder_name = "g722"
    sample_format = "s16"
    pads_tail = True
    bit_accounting = "G.722 packet bytes x 8 (4 bits per 16 kHz sample)"
    BITRATES = (64000,)
    sets_encoder_bit_rate = False

    def __init__(self, bitrate: int = 64000):
        super().__init__()
        self.bitrate = _check_choice("bitrate", bitrate, self.BITRATES, "g722 (FFmpeg encodes mode 1 only)")
        self.sample_rate = 16000



# --- Codec2 -------------------------------------------------------------------------------------

class Codec2Codec(_MeasuredDelayCodec):
    """Codec2 (pycodec2, libcodec2), 8 kHz, ``mode`` = bit/s (3200, 2400, 1600, 1400, 1300,
    1200, 700 = 700C).

    A parametric vocoder that does not keep the waveform's phase, so its delay is measured on
    multi-band energy envelopes (``delay.estimate_delay(method="envelope")``, about +-2 ms;
    PESQ aligns itself, STOI tolerates that).
    Deterministic per utterance: the decoder draws unvoiced phases and postfilter noise from
    libcodec2's process-wide random generator (``codec2_rand``, an LCG whose state is a static
    ``next`` with no exported seed function; pycodec2 exposes nothing either), so left alone an
    utterance's output would depend on what the process decoded before it (``--jobs``, resume
    order). :class:`_Codec2RandomState` finds that static through the library's symbol table,
    checks it really is the generator's state, and every decode resets it to its initial value
    (1): each utterance decodes as in a freshly loaded library, its output a function of its
    bitstream. Where the state cannot be found (a stripped or non-ELF library) the provenance
    says so and outputs are not reproducible. Not flushed: ``delay_samples`` zeros are
    appended before encoding. Bits: the mode's bits per frame x frames (the byte padding of
    the 1300 and 700C frames in .c2 files is not counted).
    """

    codec_label = "codec2"
    delay_method = "envelope"
    pads_tail = True
    bit_accounting = "codec2 bits_per_frame x frames (byte padding of packed frames excluded)"
    MODES = (700, 1200, 1300, 1400, 1600, 2400, 3200)

    def __init__(self, mode: int = 1200):
        super().__init__()
        self.mode = _check_choice("mode", mode, self.MODES, "codec2")
        self.sample_rate = 8000

    @property
    def nominal_bitrate(self) -> float:
        return float(self.mode)

    def __getstate__(self) -> dict:
        state = super().__getstate__()
        state.pop("_random", None)  # process-local handle; load() finds it again
        return state

    def _load_libraries(self):
        pycodec2 = require("pycodec2", "core", "the Codec2 codec")
        probe = pycodec2.Codec2(self.mode)
        self._frame_samples = probe.samples_per_frame()
        self._frame_bits = probe.bits_per_frame()
        self._random = _Codec2RandomState.get()
        return pycodec2

    def _packet_bits(self, packet: bytes) -> int:
        return self._frame_bits

    def _encode_raw(self, x: np.ndarray) -> tuple[list[bytes], bytes]:
        codec = self._lib.Codec2(self.mode)
        spf = self._frame_samples
        n_frames = -(-len(x) // spf)
        padded = np.zeros(n_frames * spf, dtype=np.int16)
        padded[: len(x)] = _to_int16(x)
        return [codec.encode(padded[i * spf : (i + 1) * spf]) for i in range(n_frames)], b""

    def _decode_raw(self, encoded: EncodedStream) -> np.ndarray:
        codec = self._lib.Codec2(self.mode)
        with self._random.fresh():  # the library's initial random state for every utterance
            chunks = [codec.decode(p) for p in encoded.packets]
        if not chunks:
            return np.zeros(0, dtype=np.float32)
        return np.concatenate(chunks).astype(np.float32) / 32768.0

    def provenance(self) -> dict:
        info = self._base_provenance()
        info.update({
            "mode": self.mode,
            "decoder_randomness": self._random.describe(),
            "samples_per_frame": self._frame_samples,
            "bits_per_frame": self._frame_bits,
            **self._library_versions(),
        })
        return info

    def _library_versions(self) -> dict:
        return {"pycodec2_version": package_version("pycodec2"),
                "bundled_libraries": _bundled_libraries("pycodec2", ("libcodec2",))}


class _Codec2RandomState:
    """libcodec2's process-wide random generator, reset before every decode.

    ``codec2_rand()`` (unvoiced phases in ``phase_synth_zero_order``, noise in ``postfilter``)
    is ``next = next * 1103515245 + 12345; return (next >> 16) & 0x7fff`` over a file-static
    ``unsigned long next = 1``. Its address is the loaded library's base plus the symbol's
    value in the ELF ``.symtab`` (pycodec2's bundled libcodec2 is not stripped); the candidate
    is accepted only if one call of ``codec2_rand`` moves it exactly as that LCG does. One
    instance per process (forked workers inherit it: the library is mapped at the same address).
    """

    INITIAL = 1
    _instance: "_Codec2RandomState | None" = None

    def __init__(self) -> None:
        import threading

        self._lock = threading.Lock()
        self._cell = None
        self.library: str | None = None
        try:
            self.library, self._cell = self._locate()
            self.problem = None
        except Exception as exc:  # any failure: outputs stay correct, only not reproducible
            self.problem = f"{type(exc).__name__}: {exc}"

    @classmethod
    def get(cls) -> "_Codec2RandomState":
        if cls._instance is None:
            cls._instance = cls()
        return cls._instance

    @property
    def controlled(self) -> bool:
        return self._cell is not None

    def fresh(self):
        """Context: the generator at its initial state, held against other threads."""
        import contextlib

        @contextlib.contextmanager
        def _fresh():
            with self._lock:
                if self._cell is not None:
                    self._cell.value = self.INITIAL
                yield

        return _fresh()

    def describe(self) -> str:
        if self.controlled:
            return (f"unvoiced phases and postfilter noise from libcodec2's process-wide codec2_rand(); its "
                    f"state (static 'next' in {self.library}, found via the ELF symbol table and checked "
                    f"against the LCG) is reset to {self.INITIAL} before every utterance's decode, so each "
                    "utterance decodes as in a freshly loaded library: deterministic, independent of order "
                    "and worker process")
        return (f"unvoiced phases from libcodec2's process-wide codec2_rand(), NOT controlled ({self.problem}): "
                "an utterance's output depends on what the process decoded before it")

    @staticmethod
    def _locate():
        import ctypes
        import os

        import pycodec2.pycodec2  # noqa: F401  (maps libcodec2 into the process)

        path = None
        with open("/proc/self/maps", encoding="utf-8") as fh:  # Linux: the file really mapped
            for line in fh:
                name = line.rstrip("\n").split(maxsplit=5)[-1]
                if os.path.basename(name).startswith("libcodec2"):
                    path = name
                    break
        if path is None:
            raise RuntimeError("libcodec2 not found in /proc/self/maps")
        lib = ctypes.CDLL(path, mode=os.RTLD_NOLOAD | os.RTLD_LAZY)  # the copy pycodec2 uses, never a new one
        symbols = _elf_symbols(path, {"next", "codec2_rand"})
        funcs = [value for value, size, kind in symbols.get("codec2_rand", []) if kind == 2]
        states = [value for value, size, kind in symbols.get("next", []) if kind == 1 and size == 8]
        if len(funcs) != 1 or not states:
            raise RuntimeError(f"{path}: symbols codec2_rand / next not in its symbol table (stripped?)")
        rand = lib.codec2_rand
        rand.restype, rand.argtypes = ctypes.c_int, []
        base = ctypes.cast(rand, ctypes.c_void_p).value - funcs[0]
        mask = (1 << 64) - 1
        for value in states:
            cell = ctypes.c_uint64.from_address(base + value)
            before = cell.value
            out = rand()
            expected = (before * 1103515245 + 12345) & mask
            if cell.value == expected and out == (expected >> 16) & 0x7FFF:
                return path, cell
        raise RuntimeError(f"{path}: no static 'next' moves as codec2_rand's LCG")


def _elf_symbols(path: str, names: set[str]) -> dict[str, list[tuple[int, int, int]]]:
    """name -> [(st_value, st_size, STT type)] from a 64-bit little-endian ELF's .symtab."""
    import struct

    data = open(path, "rb").read()
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise RuntimeError(f"{path} is not a 64-bit little-endian ELF file")
    shoff = struct.unpack_from("<Q", data, 0x28)[0]
    shentsize, shnum = struct.unpack_from("<HH", data, 0x3A)
    sections = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize) for i in range(shnum)]
    found: dict[str, list[tuple[int, int, int]]] = {}
    wanted = {n.encode() for n in names}
    for _, kind, _, _, offset, size, link, _, _, entsize in sections:
        if kind != 2:  # SHT_SYMTAB
            continue
        strings = sections[link][4]
        for pos in range(offset, offset + size, entsize or 24):
            name, info, _, _, value, sym_size = struct.unpack_from("<IBBHQQ", data, pos)
            start = strings + name
            raw = data[start:data.index(b"\0", start)]
            if raw in wanted:
                found.setdefault(raw.decode(), []).append((value, sym_size, info & 0xF))
    return found

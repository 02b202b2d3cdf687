"""``qtts-bench score``: score one estimate against a reference (and/or text, prompt).

Audio mode prints ``{metric: value}`` as JSON with ``--json``; a metric that cannot score prints
``null`` and its reason goes to stderr (exit code 1). Transcript mode (``--text`` with
``--hypothesis``) prints WER/CER with S/D/I counts for users who bring their own ASR output.
"""

from __future__ import annotations

import json
import sys

DEFAULT_AUDIO_METRICS = ("pesq_wb", "pesq_nb", "stoi", "estoi", "si_sdr")


def configure(parser) -> None:
    parser.add_argument("--reference", help="reference audio file (any sample rate)")
    parser.add_argument("--estimate", help="audio file to score (any sample rate)")
    parser.add_argument("--prompt", help="speaker prompt audio (for sim_o)")
    parser.add_argument("--text", help="reference transcript (for WER/CER)")
    parser.add_argument("--hypothesis", help="hypothesis transcript: score text only, no audio")
    parser.add_argument("--language", help="language code of the text (e.g. en, zh)")
    parser.add_argument("--normalizer", default="whisper", choices=["whisper", "seedtts", "basic"],
                        help="text normaliser for transcript mode (default: whisper)")
    parser.add_argument("--metrics", help=f"comma-separated metric names (default: {','.join(DEFAULT_AUDIO_METRICS)})")
    parser.add_argument("--device", default="cpu", help="device for model-based metrics")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def main(args) -> int:
    from ..errors import ConfigError

    if args.hypothesis is not None:
        if args.text is None:
            raise ConfigError("--hypothesis needs --text (the reference transcript)")
        return _score_text(args)
    if not args.estimate:
        raise ConfigError("give --estimate (and usually --reference), or --text with --hypothesis")
    return _score_audio(args)


def _score_text(args) -> int:
    from .score_text import score_transcript

    result = score_transcript(args.text, args.hypothesis, normalizer=args.normalizer,
                              language=args.language or "en")
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
    else:
        for key, value in result.items():
            print(f"{key}: {value}")
    return 0


def _score_audio(args) -> int:
    from ..audio import read_audio
    from ..metrics.base import Inputs
    from ..registry import METRICS
    from ..runner import metric_entry

    names = [m.strip() for m in (args.metrics or ",".join(DEFAULT_AUDIO_METRICS)).split(",") if m.strip()]
    metrics = {name: METRICS.create(name) for name in names}  # unknown names fail with did-you-mean
    estimate = read_audio(args.estimate)
    reference = read_audio(args.reference) if args.reference else None
    prompt = read_audio(args.prompt) if args.prompt else None
    inputs = Inputs("cli", estimate, reference, prompt, args.text, args.language,
                    {"audio_seconds": estimate.duration})
    provided = {"reference": reference, "prompt": prompt, "text": args.text}
    values, failed = {}, False
    for name, metric in metrics.items():
        missing = [need for need in metric.requires if provided.get(need) is None]
        if missing:
            entry = {"value": None, "reason": f"needs --{missing[0]}"}
        else:
            metric.load(args.device)
            try:
                entry = metric_entry(metric.score(inputs))
            except Exception as exc:
                entry = metric_entry(exc)
        values[name] = entry["value"]
        if entry["value"] is None:
            failed = True
            print(f"{name}: not scored: {entry['reason']}", file=sys.stderr)
    if args.json:
        print(json.dumps(values))
    else:
        for name, value in values.items():
            print(f"{name:>10}: {'n/a' if value is None else f'{value:.4f}'}")
    return 1 if failed else 0

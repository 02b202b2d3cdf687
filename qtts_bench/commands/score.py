"""``qtts-bench score``: score one estimate against a reference (and/or text, prompt).

Audio mode prints ``{metric: value}`` as JSON with ``--json``; a metric that cannot score prints
``null`` and its reason goes to stderr (exit code 1). Lengths must agree within max(40 ms, 2 %)
unless ``--align trim|pad`` says how to score a mismatch (a truncated estimate is not a perfect
one). Transcript mode (``--text`` with ``--hypothesis``, or ``--text-file`` / ``--hypothesis-file``)
prints WER/CER with S/D/I counts for users who bring their own ASR output.
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
    parser.add_argument("--text-file", help="reference transcript from a UTF-8 file (instead of --text)")
    parser.add_argument("--hypothesis-file", help="hypothesis transcript from a UTF-8 file (instead of --hypothesis)")
    parser.add_argument("--language", help="language code of the text (e.g. en, zh)")
    parser.add_argument("--normalizer", default="whisper", choices=["whisper", "seedtts", "basic"],
                        help="text normaliser for transcript mode (default: whisper)")
    parser.add_argument("--metrics", help=f"comma-separated metric names (default: {','.join(DEFAULT_AUDIO_METRICS)})")
    parser.add_argument("--align", choices=["strict", "trim", "pad"],
                        help="signal metrics' length policy (default strict: lengths must agree within "
                             "max(40 ms, 2 %%), else not scored; trim: cut to the shorter; pad: zero-pad the shorter)")
    parser.add_argument("--device", default="cpu", help="device for model-based metrics")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def main(args) -> int:
    from ..errors import ConfigError
    from .score_text import read_text_file

    for inline, path in (("text", "text_file"), ("hypothesis", "hypothesis_file")):
        if getattr(args, path, None) is not None:
            flag = "--" + path.replace("_", "-")
            if getattr(args, inline) is not None:
                raise ConfigError(f"give --{inline} or {flag}, not both")
            setattr(args, inline, read_text_file(getattr(args, path), "reference" if inline == "text" else inline))
    if args.hypothesis is not None:
        if args.text is None:
            raise ConfigError("--hypothesis needs --text or --text-file (the reference transcript)")
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
            if isinstance(value, str) and len(value) > 200:  # long texts: the JSON output has them whole
                value = f"{value[:200]}... ({len(value):,} characters)"
            print(f"{key}: {value}")
    return 0


def _score_audio(args) -> int:
    from ..audio import read_audio
    from ..metrics.base import Inputs
    from ..registry import METRICS
    from ..runner import metric_entry

    names = [m.strip() for m in (args.metrics or ",".join(DEFAULT_AUDIO_METRICS)).split(",") if m.strip()]
    metrics = {name: METRICS.create(name, **_align_param(name, args.align)) for name in names}
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
    if args.align in ("trim", "pad") and reference is not None:
        how = "the longer cut to the shorter" if args.align == "trim" else "the shorter zero-padded to the longer"
        print(f"note: --align {args.align}: estimate {estimate.duration:.2f} s, reference {reference.duration:.2f} s, "
              f"{how} before scoring", file=sys.stderr)
    if args.json:
        print(json.dumps(values))
    else:
        for name, value in values.items():
            print(f"{name:>10}: {'n/a' if value is None else f'{value:.4f}'}")
    return 1 if failed else 0


def _align_param(name: str, align: str | None) -> dict:
    """``{"align": align}`` for metrics that take the parameter (the signal metrics), else {}."""
    from ..registry import METRICS

    if align is None:
        return {}
    accepted = getattr(METRICS.get(name), "defaults", {})  # unknown names fail here with did-you-mean
    return {"align": align} if "align" in accepted else {}

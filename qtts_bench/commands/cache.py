"""``qtts-bench cache [info|prune]``: what the output cache holds, and removing old entries.

``info`` (default) lists the output cache's folders, one per system identity: system, entries,
size, last use. ``prune --max-size SIZE`` removes the least recently used entries until the
cache fits; ``--older-than DAYS`` removes those unused for that long; ``--dry-run`` only says
what would go. Only system outputs are pruned: the metric caches (transcripts, embeddings,
MOS) are small, and extracted models are not a cache of results.
"""

from __future__ import annotations

import re

from ..errors import ConfigError

_UNITS = {"": 1, "B": 1, "K": 2**10, "KB": 2**10, "M": 2**20, "MB": 2**20, "G": 2**30, "GB": 2**30, "T": 2**40,
          "TB": 2**40}


def parse_size(text: str, what: str = "--max-size") -> int:
    """``"500M"``, ``"2G"``, ``"1.5GB"``, ``"1000"`` (bytes) -> bytes (binary units); ``what``
    names the option or variable in the error."""
    match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)\s*", str(text))
    unit = match.group(2).upper() if match else None
    if not match or unit not in _UNITS:
        raise ConfigError(f"{what}: expected a size such as 500M or 2G, got '{text}'")
    return int(float(match.group(1)) * _UNITS[unit])


def human_size(n: int) -> str:
    for unit in ("B", "KB", "MB"):
        if n < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


def configure(parser) -> None:
    parser.add_argument("action", nargs="?", choices=("info", "prune"), default="info")
    parser.add_argument("--path", help="output cache folder (default: $QTTS_BENCH_CACHE/system-outputs, "
                                       "else ~/.cache/qtts-bench/system-outputs)")
    parser.add_argument("--max-size", help="prune: keep at most this much (e.g. 2G), least recently used removed first")
    parser.add_argument("--older-than", type=float, metavar="DAYS", help="prune: remove entries unused for DAYS days")
    parser.add_argument("--dry-run", action="store_true", help="prune: only print what would be removed")


def main(args) -> int:
    from datetime import datetime
    from pathlib import Path

    from ..output_cache import cache_folders, default_location, prune_outputs

    root = Path(args.path) if args.path else default_location()
    if args.action == "prune":
        if args.max_size is None and args.older_than is None:
            raise ConfigError("cache prune: give --max-size SIZE and/or --older-than DAYS")
        if args.older_than is not None and args.older_than < 0:
            raise ConfigError("--older-than: expected a number of days >= 0")
        done = prune_outputs(root, max_bytes=parse_size(args.max_size) if args.max_size is not None else None,
                             older_than_seconds=args.older_than * 86400 if args.older_than is not None else None,
                             dry_run=args.dry_run)
        verb = "would remove" if args.dry_run else "removed"
        print(f"{root}: {verb} {done['removed']} outputs ({human_size(done['removed_bytes'])}); "
              f"{done['kept']} kept ({human_size(done['kept_bytes'])})")
        return 0
    folders = cache_folders(root)
    if not folders:
        print(f"{root}: empty")
        return 0
    width = max(len(f.path.name) for f in folders) + 2
    print(f"{'folder'.ljust(width)}{'entries':>8}  {'size':>9}  {'last used':<16}  parameters")
    for f in folders:
        used = datetime.fromtimestamp(f.last_used).strftime("%Y-%m-%d %H:%M") if f.last_used else "-"
        params = " ".join(f"{k}={v}" for k, v in sorted(f.params.items()))
        print(f"{f.path.name.ljust(width)}{f.entries:>8}  {human_size(f.bytes):>9}  {used:<16}  {params[:80]}")
    print(f"{root}: {sum(f.entries for f in folders)} outputs, {human_size(sum(f.bytes for f in folders))}")
    return 0

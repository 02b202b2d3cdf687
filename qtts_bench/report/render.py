"""Results folders -> report folder: CSVs, index.html (with plots), one listening page per table."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ConfigError, MissingExtraError
from . import csv as csv_out
from .html import render_index
from .listen import AudioLinker, render_listen
from .load import load_runs
from .table import Report, ReportOptions, build_report


@dataclass
class ReportFiles:
    out_dir: Path
    index: Path
    leaderboard: Path
    columns: Path
    ablations: Path
    listen: list[Path] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    by_category: Path | None = None  # written when records carry ``category``


def write_report(paths: list[str | Path], out_dir: str | Path, options: ReportOptions | None = None, *,
                 plots: bool = True, listen: bool = True, copy_audio: bool = False,
                 command: list[str] | None = None, title: str = "qtts-bench report") -> tuple[Report, ReportFiles]:
    """Read every run under ``paths`` and write the report into ``out_dir``.

    Raises ConfigError when nothing readable is found, IncompatibleResults for mixed schema or
    metric versions.
    """
    runs, problems = load_runs(paths)
    if not runs:
        detail = ("\n  " + "\n  ".join(problems)) if problems else ""
        raise ConfigError(f"no runs found under {', '.join(str(p) for p in paths)} (expected "
                          f"<suite>/<dataset>/<label>/run.json; see docs/results-format.md){detail}")
    report = build_report(runs, problems, options)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = ReportFiles(out, out / "index.html", out / "leaderboard.csv", out / "columns.csv",
                        out / "ablations.csv")
    csv_out.write_leaderboard(report, files.leaderboard)
    csv_out.write_columns(report, files.columns)
    csv_out.write_ablations(report, files.ablations)
    files.by_category = csv_out.write_by_category(report, out / "by_category.csv")
    if files.by_category is None and (out / "by_category.csv").is_file():
        (out / "by_category.csv").unlink()  # stale, from an earlier report into this folder

    figures = {}
    if plots:
        try:
            from .plots import table_figures

            figures = {table.slug: table_figures(table) for table in report.tables}
        except MissingExtraError as exc:
            report.notes.append(f"plots omitted: {exc}")
            files.warnings.append(str(exc))
    listen_pages = {}
    if listen:
        linker = AudioLinker(out, copy=copy_audio)
        for table in report.tables:
            name = f"listen-{table.slug}.html"
            (out / name).write_text(render_listen(table, linker), encoding="utf-8")
            listen_pages[table.slug] = name
            files.listen.append(out / name)
    links = {"leaderboard.csv": "leaderboard.csv", "columns.csv": "columns.csv", "ablations.csv": "ablations.csv"}
    if files.by_category is not None:
        links["by_category.csv"] = "by_category.csv"
    files.index.write_text(render_index(report, figures, listen_pages, links, command, title), encoding="utf-8")
    return report, files

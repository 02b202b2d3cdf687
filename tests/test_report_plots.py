"""Plots: Pareto front against a hand-worked case; figures render as PNGs from table cells."""

import base64

import pytest

from qtts_bench.report.load import load_runs
from qtts_bench.report.table import ReportOptions, build_report
from report_fixture import PESQ, WER, write_references, write_run

pytest.importorskip("matplotlib", reason="matplotlib not installed (report extra)")
from qtts_bench.report import plots  # noqa: E402


@pytest.mark.parametrize("direction,expected", [
    # points: (cost, quality); (1, 3) dominates (2, 2); (3, 5) is slower but better; (4, 4) dominated
    ("higher", [0, 2]),
    # lower-is-better quality: (1, 3) then (2, 2) is better but slower; (3, 5), (4, 4) dominated
    ("lower", [0, 1]),
])
def test_pareto_front(direction, expected):
    points = [(1.0, 3.0), (2.0, 2.0), (3.0, 5.0), (4.0, 4.0)]
    assert plots.pareto_front(points, direction) == expected


def test_figures_render_from_cells(tmp_path):
    items = write_references(tmp_path / "data", 8)
    out = tmp_path / "results"
    for k, cb in enumerate((4, 8)):
        write_run(out, suite="s", dataset="d", label=f"q@cb={cb}", system="q", params={"cb": cb}, axes={"cb": cb},
                  metrics={"pesq_wb": PESQ, "wer": WER}, items=items, quality=0.4 + 0.3 * k, seed=k,
                  nominal_bitrate=1000 * cb, rtf=0.1 * (k + 1))
    table = build_report(*load_runs([out]), ReportOptions(n_resamples=100)).tables[0]
    figures = plots.table_figures(table)
    titles = [f.title for f in figures]
    assert titles == ["Quality vs cb", "Quality vs bitrate", "Quality vs RTF (Pareto front)",
                      "Per-utterance distributions"]
    for figure in figures:
        assert base64.b64decode(figure.png_base64)[:8] == b"\x89PNG\r\n\x1a\n"
    # an axis whose levels are the nominal bitrates is drawn once, as the bitrate plot
    for run in (row.run for row in table.rows):
        run.run_json["system"]["nominal_bitrate"] = run.params["cb"]
    assert [f.title for f in plots.axis_curves(table)] == []

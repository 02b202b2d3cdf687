"""CSV leaderboard: one row per run, lossless numbers, missing values explained, never 0."""

import csv
import math

import pytest

from qtts_bench.report.render import write_report
from qtts_bench.report.table import ReportOptions
from report_fixture import codec_store


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    root = tmp_path_factory.mktemp("csv")
    store = codec_store(root, n=16, save_audio=False)
    report, files = write_report([store], root / "report", ReportOptions(n_resamples=200), plots=False,
                                 listen=False)
    return report, files


def _model_values(report):
    """(run label, column) -> (value, low, high) straight from the table model."""
    out = {}
    for table in report.tables:
        for row in table.rows:
            for key, cell in row.cells.items():
                est = cell.estimate
                out[(row.run.label, key)] = (est.value, est.low, est.high) if est else None
    return out


def test_pandas_reads_back_losslessly(written):
    pd = pytest.importorskip("pandas", reason="pandas not installed (test extra)")
    report, files = written
    frame = pd.read_csv(files.leaderboard)
    assert len(frame) == 10 and frame["label"].is_unique
    model = _model_values(report)
    checked = 0
    for _, line in frame.iterrows():
        for column in report.columns:
            expected = model.get((line["label"], column.key))
            if expected is None:
                assert math.isnan(line[column.key])  # empty, not 0
                continue
            value, low, high = expected
            assert line[column.key] == value  # bit-exact
            assert line[f"{column.key}.ci_low"] == low and line[f"{column.key}.ci_high"] == high
            checked += 1
    assert checked > 40
    qdac = frame[frame["label"] == "qdac@decoder=conv,n_codebooks=4"].iloc[0]
    assert qdac["param.n_codebooks"] == 4 and qdac["param.decoder"] == "conv"
    assert qdac["n_system_errors"] == 1 and "system failed" in qdac["notes"]
    assert qdac["pesq_wb.n_failed"] == 1 and qdac["pesq_wb.n_common"] == 13


def test_missing_metric_is_explained_not_zero(written):
    _, files = written
    with open(files.leaderboard, newline="") as fh:
        rows = {r["label"]: r for r in csv.DictReader(fh)}
    passthrough = rows["passthrough"]
    assert passthrough["utmos"] == "" and passthrough["utmos.status"] == "absent"
    assert passthrough["utmos.note"] == "not scored in this run"
    assert passthrough["sys.kbps"] == "" and passthrough["sys.kbps.note"] == "not recorded in this run"
    # passthrough is the reference row: never best, whatever its value
    assert rows["passthrough"]["reference"] == "1" and rows["passthrough"]["pesq_wb.best"] == "0"
    assert rows["opus@bitrate=6000"]["reference"] == "0" and rows["opus@bitrate=6000"]["pesq_wb.best"] == "0"
    assert sum(r["pesq_wb.best"] == "1" for r in rows.values()) == 1
    assert rows["passthrough"]["sys.kbps.best"] == ""  # bitrate declares no better direction


def test_columns_and_ablations_files(written):
    _, files = written
    with open(files.columns, newline="") as fh:
        columns = {r["column"]: r for r in csv.DictReader(fh)}
    assert columns["pesq_wb"]["direction"] == "higher" and columns["wer"]["direction"] == "lower"
    assert '"mode": "wb"' in columns["pesq_wb"]["settings"]
    assert columns["wer"]["ratio"] == '["errors", "ref_words", 100.0]'
    with open(files.ablations, newline="") as fh:
        deltas = list(csv.DictReader(fh))
    pesq = [d for d in deltas if d["axis"] == "n_codebooks" and d["column"] == "pesq_wb"]
    assert len(pesq) == 4 and all(d["verdict"] in ("better", "worse", "no significant difference") for d in pesq)
    for d in pesq:
        assert float(d["delta"]) == pytest.approx(float(d["candidate"]) - float(d["baseline"]), abs=1e-9)

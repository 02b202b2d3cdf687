import json
import os
import socket

import pytest

from qtts_bench.errors import QttsBenchError, RunLockedError, StoreError
from qtts_bench.metrics.base import Metric
from qtts_bench.store import RunStore, record_key, summarize


def test_truncated_last_line_is_dropped_and_cut(tmp_path):
    store = RunStore(tmp_path)
    store.append([{"id": "a", "metrics": {}}, {"id": "b", "metrics": {}}])
    with open(store.items_path, "a") as fh:
        fh.write('{"id": "c", "metr')  # killed mid-write
    assert store.completed_keys() == {("a", 0), ("b", 0)}
    assert store.items_path.read_text().endswith("}\n")  # repaired: next append starts clean
    store.append([{"id": "c", "metrics": {}}])
    assert [r["id"] for r in store.read_records()] == ["a", "b", "c"]


def test_corruption_in_the_middle_is_not_guessed(tmp_path):
    store = RunStore(tmp_path)
    store.items_path.parent.mkdir(parents=True, exist_ok=True)
    store.items_path.write_text('{"id": "a"}\nGARBAGE\n{"id": "b"}\n')
    with pytest.raises(StoreError, match=r"items.jsonl: corrupt record at line 2 \(byte 12\); the file was changed "
                                         "outside qtts-bench: remove that line"):
        store.read_records()
    store.items_path.write_text('{"id": "a"}\n[1, 2]\n{"id": "b"}\n')  # JSON, but not a record
    with pytest.raises(StoreError, match="corrupt record at line 2"):
        store.read_records()
    assert issubclass(StoreError, QttsBenchError)  # the CLI reports it without a traceback, exit 2


def test_duplicate_records_are_read_once_first_wins_and_counted(tmp_path):
    store = RunStore(tmp_path)
    store.append([{"id": "a", "v": 1}, {"id": "b", "v": 1}, {"id": "a", "draw": 1, "v": 1}])
    store.append([{"id": "a", "v": 2}, {"id": "b", "draw": 0, "v": 2}, {"id": "a", "draw": 1, "v": 2}])
    records = store.read_records()
    assert [(record_key(r), r["v"]) for r in records] == [(("a", 0), 1), (("b", 0), 1), (("a", 1), 1)]
    assert store.n_duplicates_dropped == 3
    assert store.completed_keys() == {("a", 0), ("b", 0), ("a", 1)}
    summary = summarize(records, {}, n_items=2, header={}, n_duplicates_dropped=store.n_duplicates_dropped)
    assert summary["n_done"] == 3 and summary["n_duplicates_dropped"] == 3


def test_a_second_lock_on_a_run_folder_fails_naming_the_holder(tmp_path):
    store = RunStore(tmp_path / "run")
    with store.locked(["qtts-bench", "run", "first.yaml"]):
        with pytest.raises(RunLockedError) as caught:
            with RunStore(tmp_path / "run").locked(["qtts-bench", "run", "second.yaml"]):
                pass
        message = str(caught.value)
        assert f"pid {os.getpid()} on {socket.gethostname()}" in message
        assert "qtts-bench run first.yaml" in message and "started 20" in message and "--out" in message
    with RunStore(tmp_path / "run").locked("again"):  # released at the end of the block
        pass


def test_unwritable_results_folder_is_a_store_error_naming_it(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    store = RunStore(blocker / "run")
    with pytest.raises(StoreError, match=f"cannot write results to {blocker / 'run'}"):
        with store.locked("x"):
            pass
    with pytest.raises(StoreError, match="cannot write results to"):
        store.append([{"id": "a"}])


def test_nan_is_never_written(tmp_path):
    with pytest.raises(ValueError):
        RunStore(tmp_path).append([{"id": "a", "value": float("nan")}])


class _Mean(Metric):
    name, direction, unit = "pesq_wb", "higher", "MOS"


class _Ratio(Metric):
    name, direction, aggregation, ratio = "wer", "lower", "ratio", ("errors", "ref_words", 1.0)


META = {"pesq_wb": _Mean(), "wer": _Ratio()}


def test_summary_counts_and_aggregates_exactly():
    records = [
        {"id": "a", "status": "ok", "metrics": {"pesq_wb": {"value": 4.0},
                                                  "wer": {"value": 0.5, "stats": {"errors": 1, "ref_words": 2}}}},
        {"id": "b", "status": "ok", "metrics": {"pesq_wb": {"value": 2.0},
                                                  "wer": {"value": 0.0, "stats": {"errors": 0, "ref_words": 8}}}},
        {"id": "c", "status": "ok", "metrics": {"pesq_wb": {"value": None, "reason": "too short"},
                                                  "wer": {"value": None, "reason": "silence"}}},
    ]
    s = summarize(records, META, n_items=3, header={"label": "x"})
    pesq, wer = s["metrics"]["pesq_wb"], s["metrics"]["wer"]
    assert pesq["value"] == pytest.approx(3.0) and pesq["n_scored"] == 2 and pesq["n_failed"] == 1
    assert pesq["failure_reasons"] == {"too short": 1}
    assert pesq["std"] == pytest.approx(2 ** 0.5)
    assert wer["value"] == pytest.approx(1 / 10)   # corpus: sum errors / sum words
    assert wer["mean"] == pytest.approx(0.25)      # mean of per-utterance values
    assert s["n_items"] == 3 and s["n_done"] == 3 and s["label"] == "x"
    json.dumps(s, allow_nan=False)


def test_summary_with_nothing_scored_is_null_not_zero():
    records = [{"id": "a", "status": "error", "metrics": {"pesq_wb": {"value": None, "reason": "system failed"}}}]
    s = summarize(records, {"pesq_wb": META["pesq_wb"]}, n_items=1, header={})
    assert s["metrics"]["pesq_wb"]["value"] is None
    assert s["n_system_errors"] == 1


def test_summary_shows_the_spread_across_draws():
    def rec(i, draw, value):
        return {"id": f"u{i}", "draw": draw, "status": "ok", "metrics": {"pesq_wb": {"value": value}}}

    records = [rec(0, 0, 1.0), rec(1, 0, 3.0), rec(0, 1, 2.0), rec(1, 1, 4.0), rec(0, 2, 4.0), rec(1, 2, 4.0)]
    block = summarize(records, {"pesq_wb": _Mean()}, n_items=2, header={})["metrics"]["pesq_wb"]
    assert block["value"] == pytest.approx(3.0)                 # all draws pooled
    assert block["draws"]["values"] == [2.0, 3.0, 4.0]          # each draw's corpus value
    assert block["draws"]["std"] == pytest.approx(1.0) and block["draws"]["min"] == 2.0


def test_one_draw_has_no_spread_block():
    records = [{"id": "a", "status": "ok", "metrics": {"pesq_wb": {"value": 1.0}}}]
    assert "draws" not in summarize(records, {"pesq_wb": _Mean()}, n_items=1, header={})["metrics"]["pesq_wb"]

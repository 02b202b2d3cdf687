"""Table model: loading the store, common utterances, best by declared direction, refusals."""

import json

import numpy as np
import pytest

from qtts_bench.errors import ConfigError
from qtts_bench.report.load import IncompatibleResults, load_runs
from qtts_bench.report.render import write_report
from qtts_bench.report.table import ReportOptions, build_report
from report_fixture import PESQ, STOI, WER, codec_store, sim_meta, write_references, write_run

FAST = ReportOptions(n_resamples=300)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return codec_store(tmp_path_factory.mktemp("store"), n=24, save_audio=False)


@pytest.fixture(scope="module")
def report(store):
    runs, problems = load_runs([store])
    return build_report(runs, problems, FAST)


def _raw(store, label):
    path = store / "codec_baselines" / "bundled" / label / "items.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def _row(report, label):
    return next(r for t in report.tables for r in t.rows if r.run.label == label)


def test_common_utterances_and_values_match_items(store, report):
    table = report.tables[0]
    assert len(table.rows) == 10
    # 24 items; opus@6000 lost 2 PESQ values, qdac conv/4 a whole utterance to a system error.
    assert table.n_common["pesq_wb"] == 21
    assert table.n_common["stoi"] == 23
    raw = _raw(store, "opus@bitrate=12000")
    excluded = {"en-u003", "en-u007", "en-u005"}
    expected = np.mean([r["metrics"]["pesq_wb"]["value"] for r in raw if r["id"] not in excluded])
    cell = _row(report, "opus@bitrate=12000").cells["pesq_wb"]
    assert cell.value == pytest.approx(expected, abs=1e-12)
    assert cell.n_common == 21 and cell.n_scored == 24 and cell.n_failed == 0
    assert cell.all_value == pytest.approx(np.mean([r["metrics"]["pesq_wb"]["value"] for r in raw]))
    failing = _row(report, "opus@bitrate=6000").cells["pesq_wb"]
    assert (failing.n_scored, failing.n_failed) == (22, 2)
    assert failing.failure_reasons == {"reference is all silence": 2}
    assert any("pesq_wb: compared on 21 of 24" in n for n in table.notes)


def test_ratio_metric_is_ratio_of_sums(store, report):
    raw = [r for r in _raw(store, "opus@bitrate=24000") if r["id"] != "en-u005"]
    errors = sum(r["metrics"]["wer"]["stats"]["errors"] for r in raw)
    words = sum(r["metrics"]["wer"]["stats"]["ref_words"] for r in raw)
    cell = _row(report, "opus@bitrate=24000").cells["wer"]
    assert cell.value == pytest.approx(100.0 * errors / words, rel=1e-12)
    assert cell.estimate.low < cell.value < cell.estimate.high


def test_best_follows_declared_direction(report):
    table = report.tables[0]
    best = {key: [r.run.label for r in table.rows if r.cells[key].best] for key in ("pesq_wb", "wer", "sys.rtf")}
    ranked = [r for r in table.rows if not r.run.reference]  # passthrough is the reference: never best

    def values(key):
        return {r.run.label: r.cells[key].value for r in ranked if r.cells[key].value is not None}

    assert best["pesq_wb"] == [max(values("pesq_wb").items(), key=lambda kv: kv[1])[0]]  # higher is better
    assert best["wer"] == [min(values("wer").items(), key=lambda kv: kv[1])[0]]  # lower is better
    assert best["sys.rtf"] == [min(values("sys.rtf").items(), key=lambda kv: kv[1])[0]]
    assert best["sys.rtf"][0].startswith("opus")
    assert not any(r.cells["sys.kbps"].best for r in table.rows if "sys.kbps" in r.cells)  # no direction
    utmos = {r.run.label: r.cells["utmos"] for r in table.rows}
    assert utmos["passthrough"].status == "absent" and utmos["passthrough"].value is None
    assert any("utmos: not scored in" in n for n in table.notes)


def test_direction_is_never_inferred_from_the_name(tmp_path):
    items = write_references(tmp_path / "data", 12)
    out = tmp_path / "results"
    # a metric named like PESQ but declared lower-is-better: the lower run must win.
    meta = {**PESQ, "direction": "lower"}
    for label, quality in (("a", 0.2), ("b", 0.9)):
        write_run(out, suite="s", dataset="d", label=label, system=label, params={}, axes={},
                  metrics={"pesq_wb": meta}, items=items, quality=quality, seed=1)
    report = build_report(*load_runs([out]), FAST)
    best = [r.run.label for r in report.tables[0].rows if r.cells["pesq_wb"].best]
    assert best == ["a"]


def test_tied_with_best_uses_paired_ci(tmp_path):
    items = write_references(tmp_path / "data", 40)
    out = tmp_path / "results"
    for label, quality, seed in (("top", 0.80, 1), ("twin", 0.80, 2), ("low", 0.4, 3)):
        write_run(out, suite="s", dataset="d", label=label, system=label, params={}, axes={},
                  metrics={"stoi": STOI}, items=items, quality=quality, seed=seed)
    table = build_report(*load_runs([out]), ReportOptions(n_resamples=1000)).tables[0]
    cells = {r.run.label: r.cells["stoi"] for r in table.rows}
    best = next(k for k, c in cells.items() if c.best)
    other = "twin" if best == "top" else "top"
    assert best in ("top", "twin") and cells[other].tied
    assert not cells["low"].tied and cells["low"].delta_to_best.excludes_zero


def test_ablation_deltas_and_verdicts(report):
    table = report.tables[0]
    by = {(a.system, a.axis, json.dumps(a.fixed, sort_keys=True)): a for a in table.ablations}
    cb = by[("qdac", "n_codebooks", '{"decoder": "transformer"}')]
    assert cb.levels == [4, 8, 16]
    first = cb.comparisons[0]
    assert (first.level_a, first.level_b) == (4, 8)
    assert first.deltas["pesq_wb"].verdict == "better"
    assert first.deltas["pesq_wb"].estimate.value > 0
    # RTF does not change with codebooks in the fixture: no verdict.
    assert first.deltas["sys.rtf"].verdict == "no significant difference"
    opus = by[("opus", "bitrate", "{}")]
    assert opus.levels == [6000, 12000, 24000]
    # declared axis through --axis on a plain parameter works the same way
    runs, problems = load_runs([report.runs[0].path.parent])
    for run in runs:
        run.axes = {}
    declared = build_report(runs, problems, ReportOptions(n_resamples=200, axes=("n_codebooks",)))
    assert {a.axis for a in declared.tables[0].ablations} == {"n_codebooks"}


def test_different_settings_become_separate_columns(tmp_path):
    items = write_references(tmp_path / "data", 10)
    out = tmp_path / "results"
    write_run(out, suite="tts", dataset="d", label="x", system="x", params={}, axes={},
              metrics={"sim": sim_meta("resemblyzer")}, items=items, quality=0.5, seed=1, kind="tts")
    write_run(out, suite="tts", dataset="d", label="y", system="y", params={}, axes={},
              metrics={"sim": sim_meta("ecapa")}, items=items, quality=0.5, seed=2, kind="tts")
    report = build_report(*load_runs([out]), FAST)
    table = report.tables[0]
    keys = [c.key for c in table.columns if c.metric == "sim"]
    assert len(keys) == 2 and all(k.startswith("sim~") for k in keys)
    for row in table.rows:  # each run has a value in exactly one of the two columns
        assert sorted(row.cells[k].status for k in keys) == ["absent", "ok"]
        assert not any(row.cells[k].tied for k in keys)
    note = next(n for n in table.notes if n.startswith("sim:"))
    assert "resemblyzer" in note and "ecapa" in note and "never compared" in note
    # a settings key declared irrelevant merges them again
    merged = build_report(*load_runs([out]), ReportOptions(n_resamples=100, ignore_settings=("model",)))
    assert [c.key for c in merged.tables[0].columns if c.metric == "sim"] == ["sim"]


def test_different_metric_versions_are_refused(tmp_path):
    items = write_references(tmp_path / "data", 5)
    out = tmp_path / "results"
    write_run(out, suite="s", dataset="d", label="a", system="a", params={}, axes={},
              metrics={"stoi": STOI}, items=items, quality=0.5, seed=1)
    write_run(out, suite="s2", dataset="d", label="b", system="b", params={}, axes={},
              metrics={"stoi": {**STOI, "version": "2"}}, items=items, quality=0.5, seed=1)
    with pytest.raises(IncompatibleResults, match="metric 'stoi' has different versions"):
        build_report(*load_runs([out]), FAST)


def test_other_schema_version_is_refused(tmp_path):
    items = write_references(tmp_path / "data", 3)
    out = tmp_path / "results"
    write_run(out, suite="s", dataset="d", label="a", system="a", params={}, axes={},
              metrics={"stoi": STOI}, items=items, quality=0.5, seed=1, schema_version=2)
    with pytest.raises(IncompatibleResults, match="schema version 2"):
        load_runs([out])


def test_partial_and_broken_folders_are_reported(tmp_path):
    items = write_references(tmp_path / "data", 10)
    out = tmp_path / "results"
    write_run(out, suite="s", dataset="d", label="full", system="full", params={}, axes={},
              metrics={"pesq_wb": PESQ, "wer": WER}, items=items, quality=0.8, seed=1)
    partial = write_run(out, suite="s", dataset="d", label="partial", system="partial", params={}, axes={},
                        metrics={"pesq_wb": PESQ, "wer": WER}, items=items, quality=0.5, seed=2,
                        n_done=6, finished=False, write_summary=False)
    with open(partial / "items.jsonl", "a") as fh:
        fh.write('{"id": "en-u009", "status": "ok", "metr')  # killed mid-write
    orphan = out / "s" / "d" / "orphan"
    orphan.mkdir(parents=True)
    (orphan / "items.jsonl").write_text("")
    runs, problems = load_runs([out])
    assert any("orphan" in p and "no run.json" in p for p in problems)
    report = build_report(runs, problems, FAST)
    table = report.tables[0]
    row = next(r for r in table.rows if r.run.label == "partial")
    assert len(row.run.ids) == 6
    assert any("partial: 6 of 10" in n for n in row.run.notes)
    assert any("truncated" in n for n in row.run.notes)
    assert any("unfinished" in n for n in row.run.notes)
    assert table.n_common["pesq_wb"] == 6  # compared only where both have values
    assert any("partial: partial: 6 of 10" in n for n in table.notes)


def test_metric_failing_everywhere_leaves_the_run_out(tmp_path):
    items = write_references(tmp_path / "data", 8)
    out = tmp_path / "results"
    write_run(out, suite="s", dataset="d", label="ok", system="ok", params={}, axes={},
              metrics={"stoi": STOI}, items=items, quality=0.8, seed=1)
    write_run(out, suite="s", dataset="d", label="bad", system="bad", params={}, axes={},
              metrics={"stoi": STOI}, items=items, quality=0.8, seed=1,
              failures={"stoi": [i["id"] for i in items]})
    table = build_report(*load_runs([out]), FAST).tables[0]
    cells = {r.run.label: r.cells["stoi"] for r in table.rows}
    assert cells["bad"].status == "all_failed" and cells["bad"].value is None
    assert "reference is all silence" in cells["bad"].note
    assert cells["ok"].n_common == 8 and cells["ok"].best
    assert any("no value for bad" in n for n in table.notes)


def test_empty_folder_is_an_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="no runs found"):
        write_report([tmp_path / "empty"], tmp_path / "out")
    with pytest.raises(ConfigError, match="not found"):
        write_report([tmp_path / "missing"], tmp_path / "out")


def test_runs_from_two_machines_get_distinct_names_and_rtf_columns(tmp_path):
    items = write_references(tmp_path / "data", 6)
    for machine, device in (("m1", "cpu"), ("m2", "cuda")):
        write_run(tmp_path / machine, suite="s", dataset="d", label="opus", system="opus", params={},
                  axes={}, metrics={"stoi": STOI}, items=items, quality=0.5, seed=1, device=device)
    report = build_report(*load_runs([tmp_path / "m1", tmp_path / "m2"]), FAST)
    table = report.tables[0]
    assert len({r.name for r in table.rows}) == 2
    rtf = [c.key for c in table.columns if c.metric == "sys.rtf"]
    assert len(rtf) == 2  # RTF measured on different devices is never put in one column
    assert table.n_common["stoi"] == 6


def test_ratio_without_stats_gets_no_number(tmp_path):
    items = write_references(tmp_path / "data", 6)
    out = tmp_path / "results"
    folder = write_run(out, suite="s", dataset="d", label="a", system="a", params={}, axes={},
                       metrics={"wer": WER}, items=items, quality=0.5, seed=1)
    lines = (folder / "items.jsonl").read_text().splitlines()
    first = json.loads(lines[0])
    del first["metrics"]["wer"]["stats"]  # a value without its sufficient statistics
    (folder / "items.jsonl").write_text("\n".join([json.dumps(first), *lines[1:]]) + "\n")
    cell = build_report(*load_runs([out]), FAST).tables[0].rows[0].cells["wer"]
    assert cell.status == "no_stats" and cell.value is None and "ratio statistics" in cell.note


# --- reference rows, jobs next to timings, pooled codebook usage, listening link (issue 12) ----------
def test_reference_rows_come_first_and_never_take_best_or_tied(report):
    table = report.tables[0]
    first = table.rows[0]
    assert first.run.label == "passthrough" and first.run.reference
    assert not any(r.run.reference for r in table.rows[1:])
    for key, cell in first.cells.items():
        assert not cell.best and not cell.tied and cell.delta_to_best is None, key
    # passthrough has the best PESQ and RTF of all, yet someone else holds the star
    assert first.cells["pesq_wb"].value > max(r.cells["pesq_wb"].value for r in table.rows[1:]
                                              if r.cells["pesq_wb"].value is not None)
    for key in ("pesq_wb", "stoi", "wer", "sys.rtf"):
        assert sum(r.cells[key].best for r in table.rows) == 1, key


def test_reference_is_read_from_run_json_flags_else_the_target():
    from qtts_bench.report.load import is_reference

    passthrough = "qtts_bench.systems.classical:Passthrough"
    assert is_reference({"system": {"target": passthrough}})
    assert not is_reference({"system": {"target": "qtts_bench.systems.classical:OpusCodec"}})
    assert not is_reference({"system": {"target": passthrough, "reference": False}})
    assert is_reference({"system": {"target": "my.tts:GroundTruth", "reference": True}})
    assert is_reference({"system": {"target": "x:y", "provenance": {"reference": True}}})
    assert not is_reference({})


def test_reference_targets_are_the_systems_that_declare_themselves_references():
    from qtts_bench.registry import SYSTEMS
    from qtts_bench.report.load import REFERENCE_TARGETS

    declared = {e.target for e in SYSTEMS.entries() if getattr(e.load(), "reference", False) is True}
    assert declared == set(REFERENCE_TARGETS)


def test_category_breakdown_never_ranks_a_reference(tmp_path):
    items = write_references(tmp_path / "data", 12)
    for i, item in enumerate(items):
        item["category"] = "numbers" if i % 2 else "questions"
    out = tmp_path / "results"
    write_run(out, suite="s", dataset="d", label="passthrough", system="passthrough", params={}, axes={},
              metrics={"pesq_wb": PESQ}, items=items, quality=1.0, seed=1,
              target="qtts_bench.systems.classical:Passthrough")
    for label, quality in (("a", 0.3), ("b", 0.7)):
        write_run(out, suite="s", dataset="d", label=label, system=label, params={}, axes={},
                  metrics={"pesq_wb": PESQ}, items=items, quality=quality, seed=2)
    for path in out.rglob("items.jsonl"):  # the fixture's records carry no category: add it
        records = [json.loads(line) for line in path.read_text().splitlines()]
        for record in records:
            record["category"] = "numbers" if int(record["id"][-3:]) % 2 else "questions"
        path.write_text("".join(json.dumps(r) + "\n" for r in records))
    table = build_report(*load_runs([out]), FAST).tables[0]
    assert table.categories is not None
    entry = table.categories.columns[0]
    for category in table.categories.categories:
        assert not entry.cells[(0, category)].best and not entry.cells[(0, category)].tied
        assert sum(entry.cells[(j, category)].best for j in range(len(table.rows))) == 1


def test_timed_columns_carry_jobs_and_device_and_a_note_when_jobs_differ(report, tmp_path_factory):
    from qtts_bench.report.html import leaderboard_html

    table = report.tables[0]
    rtf = next(c for c in table.columns if c.key == "sys.rtf")
    assert rtf.timed and not next(c for c in table.columns if c.key == "pesq_wb").timed
    jobs = {r.run.label: r.run.jobs for r in table.rows}
    assert jobs["passthrough"] == 1 and jobs["qdac@decoder=transformer,n_codebooks=4"] == 2
    note = next(n for n in table.notes if n.startswith("RTF: runs used different numbers of worker processes"))
    assert "jobs 2: qdac@decoder=transformer" in note and "compare speed only at equal jobs" in note
    html = leaderboard_html(table)
    assert html.count('class="jobs"') + html.count('class="jobs many"') == len(table.rows)  # RTF cells only
    assert '<span class="jobs many"' in html and "jobs 2 · cpu" in html and "jobs 1 · cpu" in html


def test_results_without_jobs_say_so(tmp_path):
    items = write_references(tmp_path / "data", 6)
    out = tmp_path / "results"
    for label in ("a", "b"):
        write_run(out, suite="s", dataset="d", label=label, system=label, params={}, axes={},
                  metrics={"pesq_wb": PESQ}, items=items, quality=0.5, seed=3, jobs=None)
    from qtts_bench.report.html import leaderboard_html

    table = build_report(*load_runs([out]), FAST).tables[0]
    assert all(r.run.jobs is None for r in table.rows)
    assert "jobs ? · cpu" in leaderboard_html(table)
    assert not any("worker processes" in n for n in table.notes)


def test_pooled_codebook_usage_is_in_the_table_csv_and_page(store, report, tmp_path):
    import csv

    table = report.tables[0]
    pooled = {(p.row.run.label, p.metric): p for p in table.pooled}
    assert len(pooled) == 6 and all(metric == "codebook_perplexity" for _, metric in pooled)
    entry = pooled[("qdac@decoder=conv,n_codebooks=8", "codebook_perplexity")]
    assert entry.get("n_utterances") == 24 and entry.usage["n_codebooks"] == 8
    summary = json.loads((entry.row.run.path / "summary.json").read_text())
    block = summary["metrics"]["codebook_perplexity"]["pooled"]
    assert entry.get("mean_perplexity") == block["mean_perplexity"]
    _, files = write_report([store], tmp_path / "report", FAST, plots=False, listen=False)
    with open(files.leaderboard, newline="") as fh:
        rows = {r["label"]: r for r in csv.DictReader(fh)}
    row = rows["qdac@decoder=conv,n_codebooks=8"]
    assert float(row["pooled.codebook_perplexity.perplexity"]) == block["mean_perplexity"]
    assert float(row["pooled.codebook_perplexity.dead_fraction"]) == block["mean_dead_fraction"]
    assert float(row["pooled.codebook_perplexity.entropy_bitrate"]) == block["entropy_bitrate"]
    assert rows["passthrough"]["pooled.codebook_perplexity.perplexity"] == ""
    page = files.index.read_text()
    assert "Codebook usage over the corpus" in page and 'id="pooled-codec_baselines-bundled"' in page
    assert 'data-k="entropy_bitrate"' in page


def test_listening_link_says_when_no_run_kept_audio(store, tmp_path):
    _, files = write_report([store], tmp_path / "none", FAST, plots=False)
    page = files.index.read_text()
    assert 'class="noaudio"' in page and "(no outputs to play)" in page and "no run kept its audio" in page
    mixed = codec_store(tmp_path / "mixed", n=6, save_audio=True)  # opus runs keep none
    _, files = write_report([mixed], tmp_path / "mixed_report", FAST, plots=False)
    page = files.index.read_text()
    assert 'class="noaudio"' not in page
    assert ("Outputs of 3 of 10 runs were not kept (opus@bitrate=6000, opus@bitrate=12000, opus@bitrate=24000)"
            in page)


def test_flagged_asr_runaways_are_named_with_the_value_without_them(tmp_path, report):
    assert not any("ran away" in n for t in report.tables for n in t.notes)  # no flag, no note
    items = write_references(tmp_path / "data", 8)
    out = tmp_path / "results"
    folder = write_run(out, suite="s", dataset="d", label="a", system="a", params={}, axes={},
                       metrics={"wer": WER}, items=items, quality=0.5, seed=1)
    records = [json.loads(line) for line in (folder / "items.jsonl").read_text().splitlines()]
    for record in records:  # the ASR metric writes the flag into stats (0/1)
        record["metrics"]["wer"]["stats"]["runaway"] = 0
    runaway = records[2]["metrics"]["wer"]
    runaway["stats"].update(errors=40, runaway=1)
    runaway["value"] = 40 / runaway["stats"]["ref_words"]
    (folder / "items.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    table = build_report(*load_runs([out]), FAST).tables[0]
    kept = [r["metrics"]["wer"]["stats"] for i, r in enumerate(records) if i != 2]
    without = 100.0 * sum(s["errors"] for s in kept) / sum(s["ref_words"] for s in kept)  # WER's unit is %
    with_it = 100.0 * sum(r["metrics"]["wer"]["stats"]["errors"] for r in records) / sum(
        r["metrics"]["wer"]["stats"]["ref_words"] for r in records)
    assert table.rows[0].cells["wer"].value == pytest.approx(with_it)  # the table keeps the real transcript
    note = next(n for n in table.notes if "ran away" in n)
    assert "1 utterance(s) of a" in note and records[2]["id"] in note and f"without them {without:.1f} %" in note

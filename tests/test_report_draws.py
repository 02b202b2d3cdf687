"""Runs with several draws per item (`samples: N`): paired statistics are per item.

Hand-made records: every item has 3 draws. A mean metric's item value is the mean over its
scored draws, a ratio metric's item statistics are summed over them; ablation deltas, deltas to
the best and `compare` pair items (never records), and each cell shows the spread of the
per-draw corpus values.
"""

import json

import numpy as np
import pytest

from qtts_bench.report.compare import compare
from qtts_bench.report.load import load_runs
from qtts_bench.report.render import write_report
from qtts_bench.report.stats import Sample, paired_delta
from qtts_bench.report.table import ReportOptions, build_report
from report_fixture import STOI, WER, write_references, write_run

N_ITEMS, N_DRAWS = 10, 3
OPTS = ReportOptions(n_resamples=400, seed=3)


def _draw_values(k: int):
    """(stoi, errors, words) per item and draw for the run with parameter k (seeded)."""
    rng = np.random.default_rng(k)
    difficulty = np.sin(np.arange(N_ITEMS) * 1.3)[:, None]
    stoi = 0.6 + 0.1 * k - 0.05 * difficulty + 0.03 * rng.standard_normal((N_ITEMS, N_DRAWS))
    words = rng.integers(5, 15, (N_ITEMS, N_DRAWS))
    errors = rng.binomial(words, 0.3 / k)
    return stoi, errors, words


def _write_draw_run(out, items, k: int, *, fail_stoi=(), save_audio=False):
    """A run of system 's' at k with N_DRAWS records per item (``fail_stoi``: (item, draw) pairs)."""
    folder = write_run(out, suite="s", dataset="d", label=f"s@k={k}", system="s", params={"k": k},
                       axes={"k": k}, metrics={"stoi": STOI, "wer": WER}, items=items, quality=0.5, seed=k,
                       kind="tts")
    stoi, errors, words = _draw_values(k)
    lines = []
    for i, item in enumerate(items):
        for d in range(N_DRAWS):
            record = {"id": item["id"], "draw": d, "status": "ok", "error": None,
                      "category": "numbers" if i % 2 else "names", "text": item["text"],
                      "prompt_audio": item["prompt_audio"], "reference_audio": None,
                      "system": {"seconds": 0.1 * k, "audio_seconds": 2.0, "draw": d},
                      "output_audio": f"audio/{item['id']}~{d}.flac" if save_audio else None,
                      "metrics": {"stoi": {"value": float(stoi[i, d])},
                                  "wer": {"value": errors[i, d] / words[i, d],
                                          "stats": {"errors": int(errors[i, d]), "ref_words": int(words[i, d])}}}}
            if (i, d) in fail_stoi:
                record["metrics"]["stoi"] = {"value": None, "reason": "too short"}
            lines.append(json.dumps(record))
    (folder / "items.jsonl").write_text("\n".join(lines) + "\n")
    run_json = json.loads((folder / "run.json").read_text())
    run_json["suite"]["resolved"] = {"samples": N_DRAWS}
    (folder / "run.json").write_text(json.dumps(run_json))
    return folder


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("draws")
    items = write_references(root / "data", N_ITEMS)
    out = root / "results"
    _write_draw_run(out, items, 1)
    _write_draw_run(out, items, 2, fail_stoi={(0, 1), (0, 2)})  # item 0 keeps only draw 0
    return out


@pytest.fixture(scope="module")
def table(store):
    return build_report(*load_runs([store]), OPTS).tables[0]


def _item_level(k: int, fail=()):
    stoi, errors, words = _draw_values(k)
    stoi = stoi.copy()
    for i, d in fail:
        stoi[i, d] = np.nan
    return np.nanmean(stoi, axis=1), errors.sum(axis=1).astype(float), words.sum(axis=1).astype(float)


def test_each_item_counts_once_with_the_mean_over_its_draws(table):
    rows = {r.run.label: r for r in table.rows}
    run = rows["s@k=2"].run
    assert run.n_draws == N_DRAWS and len(run.ids) == N_ITEMS and run.n_records == N_ITEMS * N_DRAWS
    assert not any("duplicate" in n for n in run.notes)
    assert any("stoi: 2 draw(s) failed on 1 utterance(s)" in n for n in run.notes)
    stoi2, err2, words2 = _item_level(2, fail={(0, 1), (0, 2)})
    assert run.values["stoi"] == pytest.approx(stoi2, rel=1e-12)
    assert run.values["stoi"][0] == pytest.approx(_draw_values(2)[0][0, 0])  # only its scored draw
    cell = rows["s@k=2"].cells["stoi"]
    assert cell.n_common == N_ITEMS and cell.estimate.n == N_ITEMS
    assert cell.value == pytest.approx(stoi2.mean(), rel=1e-12)
    wer = rows["s@k=2"].cells["wer"]
    assert wer.value == pytest.approx(100 * err2.sum() / words2.sum(), rel=1e-12)  # Σ over items and draws


def test_ablation_delta_pairs_items_by_their_draw_means(table):
    (ablation,) = [a for a in table.ablations if a.axis == "k"]
    (comparison,) = ablation.comparisons
    stoi1, err1, words1 = _item_level(1)
    stoi2, err2, words2 = _item_level(2, fail={(0, 1), (0, 2)})
    delta = comparison.deltas["stoi"]
    assert delta.estimate.n == N_ITEMS
    assert delta.estimate.value == pytest.approx(np.mean(stoi2 - stoi1), rel=1e-12)
    # the CI is the paired bootstrap over items, exactly as on hand-collapsed samples
    expected = paired_delta(Sample(stoi1), Sample(stoi2), n_resamples=OPTS.n_resamples, seed=OPTS.seed)
    assert (delta.estimate.low, delta.estimate.high) == pytest.approx((expected.low, expected.high), rel=1e-12)
    wer = comparison.deltas["wer"]
    expected_wer = paired_delta(Sample(err1 / words1, err1, words1, 100.0), Sample(err2 / words2, err2, words2, 100.0),
                                n_resamples=OPTS.n_resamples, seed=OPTS.seed)
    assert wer.estimate.value == pytest.approx(expected_wer.value, rel=1e-12)
    assert (wer.estimate.low, wer.estimate.high) == pytest.approx((expected_wer.low, expected_wer.high), rel=1e-12)
    assert wer.verdict == "better"  # k=2 has about half the error rate


def test_delta_to_best_and_compare_use_items(table, store):
    rows = {r.run.label: r for r in table.rows}
    stoi1, _, _ = _item_level(1)
    stoi2, _, _ = _item_level(2, fail={(0, 1), (0, 2)})
    assert rows["s@k=2"].cells["stoi"].best
    to_best = rows["s@k=1"].cells["stoi"].delta_to_best
    assert to_best.n == N_ITEMS and to_best.value == pytest.approx(np.mean(stoi1 - stoi2), rel=1e-12)
    result = compare(store / "s" / "d" / "s@k=1", store / "s" / "d" / "s@k=2", [], OPTS)
    stoi = next(m for m in result.pairs[0].metrics if m.metric == "stoi")
    assert stoi.n_common == N_ITEMS and stoi.failed_candidate == 0  # item 0 still scored (draw 0)
    assert stoi.delta.value == pytest.approx(np.mean(stoi2 - stoi1), rel=1e-12)


def test_cells_carry_the_spread_of_per_draw_corpus_values(table):
    rows = {r.run.label: r for r in table.rows}
    stoi, errors, words = _draw_values(1)
    per_draw = stoi.mean(axis=0)
    spread = rows["s@k=1"].cells["stoi"].draws
    assert spread.values == pytest.approx(tuple(per_draw), rel=1e-12)
    assert spread.std == pytest.approx(np.std(per_draw, ddof=1), rel=1e-9)
    assert (spread.min, spread.max) == pytest.approx((per_draw.min(), per_draw.max()), rel=1e-12)
    wer = rows["s@k=1"].cells["wer"].draws
    assert wer.values == pytest.approx(tuple(100 * errors.sum(axis=0) / words.sum(axis=0)), rel=1e-12)
    # k=2: draws 1 and 2 of item 0 failed, so those draws' corpus values are on the other 9 items
    stoi2 = _draw_values(2)[0]
    spread2 = rows["s@k=2"].cells["stoi"].draws
    assert spread2.values == pytest.approx((stoi2[:, 0].mean(), stoi2[1:, 1].mean(), stoi2[1:, 2].mean()),
                                           rel=1e-12)


def test_categories_and_pages_with_draws_and_no_saved_audio(store, tmp_path):
    report, files = write_report([store], tmp_path / "rep", OPTS, plots=False)
    breakdown = report.tables[0].categories
    assert breakdown.categories == ["names", "numbers"] and breakdown.sizes == {"names": 5, "numbers": 5}
    (stoi,) = [c for c in breakdown.columns if c.column.key == "stoi"]
    stoi2, _, _ = _item_level(2, fail={(0, 1), (0, 2)})
    row = next(j for j, r in enumerate(report.tables[0].rows) if r.run.label == "s@k=2")
    assert stoi.cells[(row, "numbers")].value == pytest.approx(stoi2[1::2].mean(), rel=1e-12)
    assert stoi.cells[(row, "names")].estimate.n == 5
    assert files.by_category is not None and files.by_category.is_file()
    listen = files.listen[0].read_text()
    assert "No system output was saved" in listen  # the runs kept no audio
    assert listen.count('class="draw">draw ') == 2 * N_ITEMS * N_DRAWS
    assert "output not saved" in listen and "<th>Reference</th>" not in listen  # TTS without ground truth
    assert listen.count('<td class="prompt"><audio') == N_ITEMS
    page = files.index.read_text()
    assert "over 3 draws" in page and "By category" in page


def test_single_draw_runs_are_unchanged(tmp_path):
    items = write_references(tmp_path / "data", 6)
    out = tmp_path / "results"
    write_run(out, suite="s", dataset="d", label="a", system="a", params={}, axes={},
              metrics={"stoi": STOI, "wer": WER}, items=items, quality=0.5, seed=1)
    report, files = write_report([out], tmp_path / "rep", OPTS, plots=False)
    (row,) = report.tables[0].rows
    assert row.run.n_draws == 1 and row.cells["stoi"].draws is None
    assert report.tables[0].categories is None and files.by_category is None
    assert not (tmp_path / "rep" / "by_category.csv").exists()
    assert "draws" not in " ".join(report.tables[0].notes)


def test_missing_draws_are_reported_as_partial(tmp_path):
    items = write_references(tmp_path / "data", 4)
    folder = _write_draw_run(tmp_path / "results", items, 1)
    lines = (folder / "items.jsonl").read_text().splitlines()
    (folder / "items.jsonl").write_text("\n".join(lines[:-1]) + "\n")  # the last draw of the last item
    (run,), _ = load_runs([tmp_path / "results"])
    assert len(run.ids) == 4 and run.n_records == 4 * N_DRAWS - 1
    assert any(f"partial: {4 * N_DRAWS - 1} of {4 * N_DRAWS} draws done" in n for n in run.notes)
    stoi = _draw_values(1)[0]
    assert run.values["stoi"][3] == pytest.approx(stoi[3, :2].mean(), rel=1e-12)

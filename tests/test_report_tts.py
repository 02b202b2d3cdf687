"""TTS reports end to end: `qtts-bench run` (dummy TTS, 2 draws, saved audio) then `qtts-bench report`.

A suite with the synthetic dataset (no categories) and a JSONL manifest over the same wavs with
two categories; two DummyTTS systems (one streaming, so only it has TTFT). Checks the
by-category table against values recomputed from items.jsonl, the spread across draws against
summary.json, and the listening page (prompt, text, one player per system and draw).
"""

import csv
import importlib.util
import json
import math
import os
import re
import subprocess
import sys
from html import unescape
from pathlib import Path
from urllib.parse import unquote

import pytest

from qtts_bench.testing import load_synthetic

ROOT = Path(__file__).resolve().parent.parent
CATEGORIES = {"syn000": "numbers", "syn001": "numbers", "syn002": "numbers", "syn003": "tongue_twister"}
SPOKEN = {"syn001": "b r a v o charlie delta"}
HAS_SIM = importlib.util.find_spec("resemblyzer") is not None

SUITE = """
name: ttsrep
samples: 2
save_audio: true
datasets:
  syn: {{dataset: synthetic, params: {{n: 4, with_prompt: true}}}}
  cat: {{dataset: manifest, params: {{path: {manifest}}}}}
systems:
  plain: {{system: dummy_tts}}
  streamed: {{system: dummy_tts, params: {{chunks: 3}}}}
metrics:
  rtf: {{}}
  ttft: {{}}
  peak_memory: {{}}
{sim}"""


def _cli(*args, env):
    done = subprocess.run([sys.executable, "-m", "qtts_bench.cli", *args], env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, f"{args[0]} failed:\n{done.stdout}\n{done.stderr}"
    return done


@pytest.fixture(scope="module")
def tts(tmp_path_factory):
    root = tmp_path_factory.mktemp("tts")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "QTTS_BENCH_CACHE": str(root / "cache")}
    synthetic = load_synthetic(n=4, with_prompt=True, folder=str(root / "wavs"))  # writes the wavs
    lines = []
    for item in synthetic.items:
        row = {"id": item.id, "audio": item.audio, "text": item.text, "prompt_audio": item.prompt_audio,
               "prompt_text": item.prompt_text, "category": CATEGORIES[item.id]}
        if item.id in SPOKEN:
            row["spoken_text"] = SPOKEN[item.id]
        lines.append(json.dumps(row))
    manifest = root / "manifest.jsonl"
    manifest.write_text("\n".join(lines) + "\n")
    suite = root / "suite.yaml"
    suite.write_text(SUITE.format(manifest=manifest, sim="  sim_o: {}\n" if HAS_SIM else ""))
    _cli("run", str(suite), "--out", str(root / "results"), "--no-progress", env=env)
    out = root / "report"
    printed = _cli("report", str(root / "results"), "--out", str(out), "--bootstrap", "200", env=env).stdout
    return root / "results" / "ttsrep", out, printed


def _records(results: Path, dataset: str, label: str) -> list[dict]:
    path = results / dataset / label / "items.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def _csv(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def _item_values(records: list[dict], metric: str, ratio: tuple | None) -> dict[str, tuple]:
    """id -> (mean over scored draws, Σ num, Σ den) recomputed from raw records (no report code)."""
    by_id: dict[str, list[dict]] = {}
    for record in records:
        entry = record["metrics"][metric]
        if entry.get("value") is not None:
            by_id.setdefault(record["id"], []).append(entry)
    out = {}
    for item_id, entries in by_id.items():
        mean = sum(e["value"] for e in entries) / len(entries)
        num = sum(e["stats"][ratio[0]] for e in entries) if ratio else None
        den = sum(e["stats"][ratio[1]] for e in entries) if ratio else None
        out[item_id] = (mean, num, den)
    return out


def test_store_has_two_draws_per_item_and_categories(tts):
    results, _, _ = tts
    for label in ("plain", "streamed"):
        records = _records(results, "cat", label)
        assert sorted((r["id"], r["draw"]) for r in records) == sorted((i, d) for i in CATEGORIES for d in (0, 1))
        assert {r["id"]: r["category"] for r in records} == CATEGORIES
        for record in records:
            assert record["output_audio"] == f"audio/{record['id']}~{record['draw']}.wav"  # float32 WAV, exactly what was scored
            assert (results / "cat" / label / record["output_audio"]).is_file()


def test_by_category_values_match_items_jsonl(tts):
    results, out, printed = tts
    rows = [r for r in _csv(out / "by_category.csv") if r["dataset"] == "cat"]
    assert not any(r["dataset"] == "syn" for r in _csv(out / "by_category.csv"))  # no categories there
    assert {r["category"] for r in rows} == {"numbers", "tongue_twister"}
    metrics = ["rtf", "ttft", "peak_memory"] + (["sim_o"] if HAS_SIM else [])
    run_json = json.loads((results / "cat" / "plain" / "run.json").read_text())
    records = {label: _records(results, "cat", label) for label in ("plain", "streamed")}
    checked = 0
    for metric in metrics:
        ratio = tuple(run_json["metrics"][metric]["ratio"] or ()) or None
        per_item = {label: _item_values(recs, metric, ratio) for label, recs in records.items()}
        contributing = [label for label in per_item if per_item[label]]
        common = set.intersection(*(set(per_item[label]) for label in contributing))
        for category in ("numbers", "tongue_twister"):
            ids = sorted(i for i in common if CATEGORIES[i] == category)
            for label in ("plain", "streamed"):
                (row,) = [r for r in rows if r["column"] == metric and r["category"] == category
                          and r["label"] == label]
                assert int(row["n"]) == len(ids) == (3 if category == "numbers" else 1)
                if label not in contributing:  # DummyTTS without chunks does not stream: no TTFT
                    assert metric == "ttft" and row["value"] == "" and row["status"] == "not_applicable"
                    continue
                values = [per_item[label][i] for i in ids]
                if ratio:
                    expected = sum(v[1] for v in values) / sum(v[2] for v in values) * ratio[2]
                else:
                    expected = sum(v[0] for v in values) / len(values)
                assert float(row["value"]) == pytest.approx(expected, rel=1e-12), (metric, category, label)
                assert row["status"] == "ok"
                checked += 1
        best = [r for r in rows if r["column"] == metric and r["best"] == "1"]
        assert {r["category"] for r in best} == {"numbers", "tongue_twister"}  # a best in each category
    assert checked >= 2 * 2 * len(metrics) - 2
    page = (out / "index.html").read_text()
    assert "By category" in page and 'href="by_category.csv"' in page
    assert "on 3 common utt." in page and "on 1 common utt." in page


def test_draw_spread_in_leaderboard_matches_summary(tts):
    results, out, _ = tts
    board = {(r["dataset"], r["label"]): r for r in _csv(out / "leaderboard.csv")}
    for dataset in ("syn", "cat"):
        for label in ("plain", "streamed"):
            row = board[(dataset, label)]
            assert row["n_done"] == "4" and row["n_draws"] == "2"
            assert "duplicate" not in row["notes"]
            assert row["rtf.n_common"] == "4"  # items, not records: draws are averaged per item
            summary = json.loads((results / dataset / label / "summary.json").read_text())["metrics"]["rtf"]
            # every item is common for RTF, so the per-draw corpus values are summary.json's
            assert json.loads(row["rtf.draws"]) == pytest.approx(summary["draws"]["values"], rel=1e-12)
            assert float(row["rtf.draws_std"]) == pytest.approx(summary["draws"]["std"], rel=1e-9)
            assert float(row["rtf.draws_min"]) == pytest.approx(summary["draws"]["min"], rel=1e-12)
            assert float(row["rtf.draws_max"]) == pytest.approx(summary["draws"]["max"], rel=1e-12)
            assert float(row["rtf"]) == pytest.approx(summary["value"], rel=1e-12)  # pooled over draws
    page = (out / "index.html").read_text()
    assert page.count("over 2 draws") >= 8 and "× 2 draws" in page


def _listen_rows(path: Path) -> list[str]:
    text = path.read_text()
    body = text[text.index("<tbody>"):text.index("</tbody>")]
    return re.findall(r"<tr data-i=.*?</tr>", body, flags=re.S)


def test_listening_page_shows_text_prompt_and_every_draw(tts):
    results, out, printed = tts
    page = out / "listen-ttsrep-cat.html"
    assert str(page) in printed
    html = page.read_text()
    assert '<select id="category">' in html and "tongue_twister" in html
    assert "No system output was saved" not in html
    rows = _listen_rows(page)
    assert len(rows) == 4
    texts = {r["id"]: r["text"] for r in _records(results, "cat", "plain")}
    for row in rows:
        item_id = re.search(r'<span class="id">(.*?)</span>', row).group(1)
        assert f'data-cat="{CATEGORIES[item_id]}"' in row
        assert f'<span class="text">{texts[item_id]}</span>' in row
        assert ("spoken: " in row) == (item_id in SPOKEN)
        if item_id in SPOKEN:
            assert f"spoken: {SPOKEN[item_id]}" in row
        prompt = re.search(r'<td class="prompt"><audio [^>]*src="([^"]+)"', row)
        assert prompt, f"{item_id}: no prompt player"
        assert (out / unquote(unescape(prompt.group(1)))).resolve().name == f"prompt{item_id[3:]}.wav"
        players = re.findall(r'<audio [^>]*src="([^"]+)" class="out" data-sys="(\d)" data-draw="(\d)"', row)
        assert sorted((s, d) for _, s, d in players) == [("0", "0"), ("0", "1"), ("1", "0"), ("1", "1")]
        for src, sys_index, draw in players:
            target = (out / unquote(unescape(src))).resolve()
            assert target.is_file() and target.name == f"{item_id}~{draw}.wav"
            assert target.parent.parent.name == ("plain", "streamed")[int(sys_index)]
    syn = (out / "listen-ttsrep-syn.html").read_text()
    assert '<select id="category">' not in syn  # the synthetic set has no categories


def test_listening_page_in_a_browser(tts):
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed")
    chromium = next((c for c in (os.environ.get("QTTS_CHROMIUM"), "/usr/bin/chromium") if c and Path(c).is_file()),
                    None)
    if chromium is None:
        pytest.skip("no chromium binary")
    _, out, _ = tts
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--headless", "--no-sandbox", "--disable-gpu"])
        page = browser.new_page()
        errors = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto((out / "listen-ttsrep-cat.html").resolve().as_uri())
        assert page.locator("#listen tbody tr:visible").count() == 4
        page.select_option("#category", "tongue_twister")
        assert page.locator("#listen tbody tr:visible").count() == 1
        assert page.locator("#listen tbody tr:visible .id").inner_text() == "syn003"
        duration = page.evaluate("""() => new Promise((resolve, reject) => {
            const a = document.querySelector('#listen tbody tr:not(.hide-cat) audio.out[data-draw="1"]');
            a.addEventListener('loadedmetadata', () => resolve(a.duration));
            a.addEventListener('error', () => reject('audio error ' + (a.error && a.error.code)));
            a.preload = 'metadata'; a.load();
        })""")
        assert math.isfinite(duration) and duration > 0.5  # a saved FLAC of draw 1 decodes
        page.goto((out / "index.html").resolve().as_uri())
        assert page.locator("table.bycat").count() >= 3
        browser.close()
    assert errors == []

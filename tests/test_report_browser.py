"""The HTML report in a real headless browser (Debian chromium driven by Playwright).

Checks: pages load from file:// with no request leaving the disk and no console errors, plots
render, a leaderboard column sorts, every <audio> points at an existing file (and one decodes),
the listening page sorts worst cases first.
"""

import os
import shutil
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

from qtts_bench.report.render import write_report
from qtts_bench.report.table import ReportOptions
from report_fixture import codec_store

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (python package) not installed")


def _chromium() -> str | None:
    for candidate in (os.environ.get("QTTS_CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium"),
                      shutil.which("chromium-browser")):
        if candidate and Path(candidate).is_file():
            return candidate
    return None


CHROMIUM = _chromium()
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium binary (Debian: apt-get install chromium)")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
N = 8


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("browser")
    store = codec_store(root, n=N)
    write_report([store], root / "report", ReportOptions(n_resamples=200))
    return root / "report"


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


class Page:
    """A page plus everything it logged or requested."""

    def __init__(self, browser, path: Path):
        self.errors, self.requests = [], []
        self.page = browser.new_page(viewport={"width": 1400, "height": 900})
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.goto(path.resolve().as_uri())
        self.page.wait_for_load_state("load")

    def column_values(self, table_selector: str, header_text: str) -> list[str]:
        return self.page.evaluate("""([sel, text]) => {
            const t = document.querySelector(sel);
            const idx = Array.from(t.tHead.rows[0].cells).findIndex(th =>
                th.querySelector('button.sort') && th.querySelector('button.sort').textContent.startsWith(text));
            return Array.from(t.tBodies[0].rows).map(r => r.cells[idx].getAttribute('data-v'));
        }""", [table_selector, header_text])


def test_index_loads_from_file_without_network_or_errors(browser, report_dir):
    page = Page(browser, report_dir / "index.html")
    assert page.errors == []
    assert all(u.startswith(("file:", "data:")) for u in page.requests), page.requests
    assert page.page.locator("table.lb tbody tr").count() == 10
    widths = page.page.evaluate("Array.from(document.images).map(i => i.complete ? i.naturalWidth : 0)")
    assert len(widths) >= 3 and min(widths) > 100  # plots decoded
    assert "compared on" in page.page.locator(".notes").first.inner_text()
    page.page.close()


def test_leaderboard_column_sorts(browser, report_dir):
    page = Page(browser, report_dir / "index.html")
    table = "table.lb"
    before = page.column_values(table, "pesq_wb")
    page.page.locator(f"{table} thead button.sort", has_text="pesq_wb").click()
    first = [float(v) for v in page.column_values(table, "pesq_wb") if v]
    assert first == sorted(first, reverse=True) and first != [float(v) for v in before if v]
    header = page.page.locator(f"{table} thead th", has=page.page.locator("button.sort", has_text="pesq_wb"))
    assert header.get_attribute("aria-sort") == "descending"  # higher is better: best first
    page.page.locator(f"{table} thead button.sort", has_text="pesq_wb").click()
    second = [float(v) for v in page.column_values(table, "pesq_wb") if v]
    assert second == sorted(second)
    page.page.locator(f"{table} thead button.sort", has_text="wer").click()  # lower is better: ascending first
    wer = [float(v) for v in page.column_values(table, "wer") if v]
    assert wer == sorted(wer)
    assert page.errors == []
    page.page.close()


def test_listening_page_audio_points_at_existing_files(browser, report_dir):
    page = Page(browser, report_dir / "listen-codec_baselines-bundled.html")
    assert page.errors == []
    sources = page.page.evaluate("Array.from(document.querySelectorAll('audio')).map(a => a.src)")
    # references + prompts + outputs of passthrough and 6 qdac runs (one system error); opus saves none
    assert len(sources) == N + N + 7 * N - 1
    for src in sources:
        url = urlparse(src)
        assert url.scheme == "file" and Path(unquote(url.path)).is_file(), src
    duration = page.page.evaluate("""() => new Promise((resolve, reject) => {
        const a = document.querySelector('audio');
        a.addEventListener('loadedmetadata', () => resolve(a.duration));
        a.addEventListener('error', () => reject('audio error ' + (a.error && a.error.code)));
        a.preload = 'metadata'; a.load();
    })""")
    assert duration == pytest.approx(0.4, abs=0.01)  # fixture audio is 0.4 s FLAC
    assert all(u.startswith(("file:", "data:")) for u in page.requests)
    page.page.close()


def test_listening_page_sorts_worst_first(browser, report_dir):
    page = Page(browser, report_dir / "listen-codec_baselines-bundled.html")
    ids = lambda: page.page.evaluate(  # noqa: E731
        "Array.from(document.querySelectorAll('#listen tbody tr td.utt .id')).map(e => e.textContent)")
    selected = page.page.locator("#sortkey option:checked").inner_text()
    assert selected == "opus@bitrate=6000 — pesq_wb"
    # failed PESQ values of opus@6000 (fixture: items 3 and 7) come first, as the worst cases
    assert sorted(ids()[:2]) == ["en-u003", "en-u007"]
    sort = page.page.evaluate("SORT")
    k = next(i for i, key in enumerate(sort["keys"]) if key["label"] == selected)
    order = ids()
    all_ids = page.page.evaluate("Array.from(document.querySelectorAll('#listen tbody tr')).map(r => +r.dataset.i)")
    values = [sort["values"][i][k] for i in all_ids[2:]]
    assert values == sorted(values)  # then ascending: worst PESQ first
    page.page.select_option("#order", "best")
    best = [sort["values"][int(i)][k] for i in page.page.evaluate(
        "Array.from(document.querySelectorAll('#listen tbody tr')).map(r => r.dataset.i)")]
    assert [v for v in best if v is not None] == sorted([v for v in best if v is not None], reverse=True)
    assert best[-2:] == [None, None] and ids() != order
    page.page.locator("input.sys[value='0']").uncheck()
    assert not page.page.locator("th[data-sys='0']").is_visible()
    assert page.errors == []
    page.page.close()


# --- issue 12: what a new user sees ---------------------------------------------------------------
def test_reference_row_is_marked_first_and_never_starred(browser, report_dir):
    page = Page(browser, report_dir / "index.html")
    first = page.page.locator("table.lb tbody tr").first
    assert first.locator("td.sys .name").inner_text() == "passthrough"
    badge = first.locator(".badge.ref")
    assert badge.is_visible() and badge.inner_text() == "reference"
    assert first.locator("td.best, td.tied").count() == 0
    # every quality column still has its star, on a row that is not the reference
    for header in ("pesq_wb", "stoi", "wer", "RTF"):
        idx = page.page.evaluate("""(text) => Array.from(document.querySelector('table.lb').tHead.rows[0].cells)
            .findIndex(th => th.querySelector('button.sort') &&
                             th.querySelector('button.sort').textContent.startsWith(text))""", header)
        stars = page.page.evaluate("""(idx) => Array.from(document.querySelectorAll('table.lb tbody tr'))
            .filter(r => r.cells[idx].classList.contains('best')).map(r => r.dataset.reference || 'ranked')""", idx)
        assert stars == ["ranked"], (header, stars)
    # sorting keeps the mark on the row (it moves with it)
    page.page.locator("table.lb thead button.sort", has_text="pesq_wb").click()
    assert page.page.locator("table.lb tbody tr[data-reference] .badge.ref").count() == 1
    assert page.errors == []
    page.page.close()


def test_rtf_shows_the_jobs_and_device_of_each_run(browser, report_dir):
    page = Page(browser, report_dir / "index.html")
    texts = page.page.evaluate("""() => {
        const t = document.querySelector('table.lb');
        const idx = Array.from(t.tHead.rows[0].cells).findIndex(th => th.querySelector('button.sort') &&
            th.querySelector('button.sort').textContent.startsWith('RTF'));
        return Array.from(t.tBodies[0].rows).map(r => {
            const j = r.cells[idx].querySelector('.jobs'); return j ? j.innerText : null; });
    }""")
    assert len(texts) == 10 and None not in texts
    assert texts.count("jobs 2 · cpu") == 3 and texts.count("jobs 1 · cpu") == 7  # qdac transformer: jobs 2
    many = page.page.locator("td.num .jobs.many").first
    assert many.is_visible() and "inflates" in many.get_attribute("title")
    assert page.page.locator("td.num .jobs").count() == 10  # only under the timed column
    notes = page.page.locator(".notes").first.inner_text()
    assert "RTF: runs used different numbers of worker processes" in notes
    page.page.close()


def test_pooled_codebook_usage_is_shown(browser, report_dir):
    page = Page(browser, report_dir / "index.html")
    pooled = page.page.locator("table.pooled")
    assert pooled.is_visible()
    assert page.page.locator("h3", has_text="Codebook usage over the corpus").is_visible()
    assert pooled.locator("tbody tr").count() == 6  # the qdac runs
    headers = pooled.locator("thead th").all_inner_texts()
    assert any(h.startswith("Corpus perplexity") for h in headers)
    assert any(h.startswith("Dead codes") for h in headers) and any(h.startswith("Entropy bitrate") for h in headers)
    row = pooled.locator("tbody tr", has_text="transformer").filter(has_text="n_codebooks=16").first
    values = row.locator("td.num .v").all_inner_texts()
    # utterances, codebooks, perplexity (mean of 600/(1+0.2k)), dead %, entropy kbit/s, fixed kbit/s
    assert values[0] == "8" and values[1].startswith("16") and values[-1] == "8.00"
    assert float(values[2]) > 100 and 10 < float(values[3]) < 100
    page.page.close()


def test_listening_link_says_which_runs_kept_no_audio_before_it_is_clicked(browser, report_dir, tmp_path):
    page = Page(browser, report_dir / "index.html")
    link = page.page.locator("p.listen-link")
    assert link.is_visible()
    text = link.inner_text()
    assert "Outputs of 3 of 10 runs were not kept" in text and "opus@bitrate=6000" in text
    page.page.close()
    store = codec_store(tmp_path, n=4, save_audio=False)
    write_report([store], tmp_path / "report", ReportOptions(n_resamples=100), plots=False)
    page = Page(browser, tmp_path / "report" / "index.html")
    link = page.page.locator("p.listen-link")
    assert "no outputs to play" in link.locator("a").inner_text()
    assert "no run kept its audio" in link.inner_text() and "save_audio: true" in link.inner_text()
    assert page.page.locator("p.listen-link a.noaudio").is_visible()
    page.page.close()

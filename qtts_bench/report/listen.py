"""Listening page of one table: per utterance its text (and spoken form), category, the
reference and the prompt, and each system's output as audio players (one per draw) with that
utterance's metrics; sortable by any system x metric to find the worst cases (failed utterances
count as worst), filterable by category.

Audio is referenced from where it lies (relative link from the report folder) or, with
``copy_audio``, copied beside the report so the folder can be moved or published alone.
A file that does not exist is shown as missing, never as a broken player.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path
from urllib.parse import quote

import numpy as np

from .html import decimals_for, esc, fmt, page
from .load import resolve_audio
from .table import Table, per_draw, per_utterance


class AudioLinker:
    """Turns audio file paths into hrefs relative to ``out_dir`` (copying them when asked)."""

    def __init__(self, out_dir: Path, copy: bool = False):
        self.out_dir = Path(out_dir).resolve()
        self.copy = copy
        self._copied: dict[Path, str] = {}

    def href(self, path: Path | None, group: str) -> str | None:
        if path is None or not Path(path).is_file():
            return None
        path = Path(path).resolve()
        if self.copy:
            if path not in self._copied:
                target = self.out_dir / "audio" / _safe(group) / path.name
                n = 1
                while target.exists() and not _same_file(target, path):
                    target = target.with_name(f"{path.stem}-{n}{path.suffix}")
                    n += 1
                target.parent.mkdir(parents=True, exist_ok=True)
                if not target.exists():
                    shutil.copy2(path, target)
                self._copied[path] = target.relative_to(self.out_dir).as_posix()
            return quote(self._copied[path])
        try:
            rel = os.path.relpath(path, self.out_dir)
        except ValueError:  # another drive (Windows): absolute file URI
            return path.as_uri()
        return quote(Path(rel).as_posix())


def _safe(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_.=" else "_" for ch in text)[:120]


def _same_file(a: Path, b: Path) -> bool:
    return a.stat().st_size == b.stat().st_size and a.read_bytes() == b.read_bytes()


def _player(href: str | None, path, what: str, attrs: str = "") -> str:
    if href is None:
        if path:
            return f'<span class="missing-audio" title="{esc(path)}">{esc(what)} file missing</span>'
        return f'<span class="small">{esc(what)} not saved</span>'
    return f'<audio controls preload="none" src="{esc(href)}"{attrs}></audio>'


LISTEN_CSS = """
.controls{display:flex;flex-wrap:wrap;gap:10px 18px;align-items:center;background:var(--head);
border:1px solid var(--line);border-radius:6px;padding:8px 12px;margin:10px 0 12px;font-size:13px}
.controls label{white-space:nowrap}.controls select{font:inherit;padding:2px 4px;max-width:420px}
.syslist label{margin-right:10px;font-size:12.5px}
table.listen{border-collapse:collapse;font-size:12.5px}
table.listen th,table.listen td{border:1px solid var(--line);padding:5px 7px;vertical-align:top}
table.listen thead th{background:var(--head);position:sticky;top:0;z-index:2;text-align:left;
min-width:220px}
table.listen td.utt{position:sticky;left:0;background:#fff;z-index:1;min-width:230px;max-width:280px}
table.listen td.utt .id{font-weight:600;font-family:ui-monospace,monospace;font-size:12px}
table.listen td.utt .text{display:block;color:var(--fg);margin-top:2px}
.m{display:block;font-variant-numeric:tabular-nums;font-size:11.5px;color:#334}
.m.fail{color:var(--badfg)}.m b{font-weight:600}
.err{color:var(--badfg);font-size:12px}
.missing-audio{color:var(--badfg);font-size:12px}
td.sel{outline:2px solid var(--accent);outline-offset:-2px}
table.listen td.utt .spoken{display:block;color:#3b4a63;font-style:italic;margin-top:2px}
.chip.cat{margin-top:3px}
.dblock{border-top:1px dashed var(--line);padding-top:3px;margin-top:3px}
.dblock:first-child{border-top:0;padding-top:0;margin-top:0}
.draw{display:block;font-size:11px;color:var(--muted);font-weight:600}
.dmean{border-top:1px solid var(--line);margin-top:4px;padding-top:3px}
tr.hide-cat{display:none}
"""

LISTEN_JS = """
(function(){
var table=document.getElementById('listen');var body=table.tBodies[0];
var sel=document.getElementById('sortkey');var ord=document.getElementById('order');
function apply(){
 var k=parseInt(sel.value,10);var worst=ord.value==='worst';var rows=Array.prototype.slice.call(body.rows);
 document.querySelectorAll('td.sel').forEach(function(td){td.classList.remove('sel');});
 if(k<0){rows.sort(function(a,b){return parseInt(a.dataset.i,10)-parseInt(b.dataset.i,10);});}
 else{var key=SORT.keys[k];var up=(key.dir==='higher')!==worst;
  rows.sort(function(a,b){var x=SORT.values[a.dataset.i][k],y=SORT.values[b.dataset.i][k];
   if(x===null&&y===null)return 0;if(x===null)return worst?-1:1;if(y===null)return worst?1:-1;
   return up?y-x:x-y;});
  rows.forEach(function(r){var td=r.querySelector('td[data-sys="'+key.sys+'"]');if(td)td.classList.add('sel');});}
 rows.forEach(function(r){body.appendChild(r);});
}
sel.addEventListener('change',apply);ord.addEventListener('change',apply);
var cat=document.getElementById('category');
if(cat){cat.addEventListener('change',function(){Array.prototype.forEach.call(body.rows,function(r){
 r.classList.toggle('hide-cat',cat.value!==''&&r.dataset.cat!==cat.value);});});}
document.querySelectorAll('input.sys').forEach(function(cb){cb.addEventListener('change',function(){
 table.classList.toggle('hide-s'+cb.value,!cb.checked);});});
apply();
})();
"""


def render_listen(table: Table, linker: AudioLinker, report_href: str = "index.html") -> str:
    """HTML of the listening page for ``table``.

    Per utterance: id, text (and the spoken form when it differs), category, speaker; the
    reference and prompt players (columns shown only when some utterance has one); then each
    system's output, one player per draw, each with that draw's metric values. Sorting uses the
    utterance's value (with draws: the mean over its draws, as in the leaderboard).
    """
    rows = table.rows
    columns = [c for c in table.columns if c.info.source == "metric"]
    ids: list[str] = []
    seen: set[str] = set()
    for row in rows:
        for item_id in row.run.ids:
            if item_id not in seen:
                seen.add(item_id)
                ids.append(item_id)
    first_record: dict[str, tuple] = {}
    for row in rows:
        for record in row.run.records:
            first_record.setdefault(str(record["id"]), (row.run, record))
    values = {}  # (row index, column key) -> per-utterance array in the aggregate's units
    draw_values = {}  # (row index, column key) -> (items, draws) array
    for j, row in enumerate(rows):
        for column in columns:
            if row.run.metrics.get(column.metric) is not None and row.cells.get(column.key) is not None \
                    and row.cells[column.key].status != "absent":
                values[(j, column.key)] = per_utterance(row.run, column.metric)
                draw_values[(j, column.key)] = per_draw(row.run, column.metric)
    decimals = {}
    for column in columns:
        arrays = [v for (j, k), v in values.items() if k == column.key]
        finite = np.concatenate(arrays)[np.isfinite(np.concatenate(arrays))] if arrays else np.array([])
        decimals[column.key] = decimals_for([float(np.median(np.abs(finite)))] if finite.size else [], [])
    max_draws = max((row.run.n_draws for row in rows), default=1)

    def metric_lines(j: int, run, index: int, draw: int | None) -> list[str]:
        parts = []
        for column in columns:
            if (j, column.key) not in values:
                continue
            if draw is None:
                v = values[(j, column.key)][index]
                reason = run.reasons[column.metric][index]
            else:
                v = draw_values[(j, column.key)][index, draw]
                reason = run.draw_reasons[column.metric][index][draw]
            if math.isfinite(v):
                parts.append(f'<span class="m">{esc(column.title)} <b>{fmt(v, decimals[column.key])}</b>'
                             f'{" " + esc(column.unit) if column.unit == "%" else ""}</span>')
            else:
                reason = reason or "no value"
                parts.append(f'<span class="m fail" title="{esc(reason)}">{esc(column.title)} — '
                             f'{esc(reason[:40])}</span>')
        return parts

    keys = [{"sys": j, "col": c.key, "dir": c.direction or "higher",
             "label": f"{row.name} — {c.title}"} for j, row in enumerate(rows) for c in columns
            if (j, c.key) in values]
    sort_values = []
    records = [rec for _, rec in first_record.values()]
    has_prompt = any(rec.get("prompt_audio") for rec in records)
    has_reference = any(rec.get("reference_audio") for rec in records)
    categories = list(dict.fromkeys(str(rec.get("category")) for rec in records if rec.get("category")))
    body = []
    for i, item_id in enumerate(ids):
        run0, rec0 = first_record[item_id]
        who = " · ".join(str(x) for x in (rec0.get("speaker"), rec0.get("language")) if x)
        text = rec0.get("text") or ""
        spoken = rec0.get("spoken_text")
        category = rec0.get("category")
        utt = [f'<span class="id">{esc(item_id)}</span>',
               f'<span class="text">{esc(text)}</span>']
        if spoken and spoken != text:
            utt.append(f'<span class="spoken" title="spoken form: what WER is scored against">'
                       f'spoken: {esc(spoken)}</span>')
        if category:
            utt.append(f'<span class="chip cat">{esc(category)}</span> ')
        utt.append(f'<span class="small">{esc(who)}</span>')
        cells = [f'<td class="utt">{"".join(utt)}</td>']
        if has_reference:
            ref_path = resolve_audio(run0, rec0.get("reference_audio"))
            cells.append(f'<td class="ref">{_player(linker.href(ref_path, "reference"), ref_path, "reference")}</td>')
        if has_prompt:
            prompt_path = resolve_audio(run0, rec0.get("prompt_audio"))
            cells.append(f'<td class="prompt">{_player(linker.href(prompt_path, "prompt"), prompt_path, "prompt")}'
                         + (f'<span class="small">{esc(rec0.get("prompt_text"))}</span>'
                            if rec0.get("prompt_text") else "") + "</td>")
        row_values = []
        for j, row in enumerate(rows):
            run = row.run
            index = run.index.get(item_id)
            if index is None:
                cells.append(f'<td data-sys="{j}"><span class="small">not run on this utterance</span></td>')
            else:
                parts = []
                multi = run.n_draws > 1
                by_draw = {int(r.get("draw") or 0): r for r in run.draw_records[index]} \
                    if run.draw_records else {run.draws[0]: run.records[index]}
                for k, draw in enumerate(run.draws):
                    record = by_draw.get(draw)
                    block = [f'<span class="draw">draw {draw}</span>'] if multi else []
                    if record is None:
                        block.append('<span class="small">this draw was not run</span>')
                    elif record.get("status", "ok") == "ok":
                        out_path = resolve_audio(run, record.get("output_audio"))
                        block.append(_player(linker.href(out_path, run.label), out_path, "output",
                                             f' class="out" data-sys="{j}" data-draw="{draw}"'))
                    else:
                        block.append(f'<span class="err">system error: {esc(record.get("error") or "unknown")}'
                                     "</span>")
                    if record is not None:
                        block += metric_lines(j, run, index, k if multi else None)
                    parts.append(f'<div class="dblock">{"".join(block)}</div>' if multi else "".join(block))
                if multi:
                    mean = metric_lines(j, run, index, None)
                    if mean:
                        parts.append(f'<div class="dmean"><span class="draw">mean of {run.n_draws} draws</span>'
                                     f'{"".join(mean)}</div>')
                cells.append(f'<td data-sys="{j}">{"".join(parts)}</td>')
            for column in columns:
                if (j, column.key) in values:
                    v = values[(j, column.key)][index] if index is not None else math.nan
                    row_values.append(float(v) if math.isfinite(v) else None)
        sort_values.append(row_values)
        body.append(f'<tr data-i="{i}" data-cat="{esc(category or "")}">{"".join(cells)}</tr>')

    head = ["<th>Utterance</th>"] + (["<th>Reference</th>"] if has_reference else []) \
        + (["<th>Prompt</th>"] if has_prompt else [])
    for j, row in enumerate(rows):
        sub = f'<div class="unit">{esc(row.name)}</div>' if row.name != row.run.system else ""
        if row.run.n_draws > 1:
            sub += f'<div class="unit">{row.run.n_draws} draws</div>'
        if row.run.reference:
            sub += '<div class="unit" title="the input itself (ground truth)">reference</div>'
        head.append(f'<th data-sys="{j}">{esc(row.run.system)}{sub}</th>')
    # sorted at first by the first system that is not a reference (passthrough holds no worst cases)
    default = next((k for k, key in enumerate(keys) if not rows[key["sys"]].run.reference), 0)
    options = ['<option value="-1">utterance order</option>'] + [
        f'<option value="{k}"{" selected" if k == default else ""}>{esc(key["label"])}</option>'
        for k, key in enumerate(keys)]
    toggles = "".join(f'<label><input type="checkbox" class="sys" value="{j}" checked> {esc(row.name)}</label>'
                      for j, row in enumerate(rows))
    category_filter = ""
    if categories:
        category_filter = ('<label>Category <select id="category"><option value="">all</option>'
                           + "".join(f'<option value="{esc(c)}">{esc(c)}</option>' for c in categories)
                           + "</select></label>")
    hide_css = "".join(f".hide-s{j} [data-sys=\"{j}\"]{{display:none}}" for j in range(len(rows)))
    draws_note = (f" · every draw of each utterance is shown (up to {max_draws} per system); sorting uses the "
                  "mean over an utterance's draws" if max_draws > 1 else "")
    body_html = (
        f"<style>{LISTEN_CSS}{hide_css}</style>"
        f"<h1>Listening page — {esc(table.title)}</h1>"
        f'<p class="meta"><a href="{esc(report_href)}">← back to the report</a> · {len(ids)} utterances · '
        f"{len(rows)} systems · metric values per utterance in each metric's aggregate units{draws_note}</p>"
        f'<div class="controls"><label>Sort by <select id="sortkey">{"".join(options)}</select></label>'
        f'<label>Order <select id="order"><option value="worst" selected>worst first (failures first)</option>'
        f'<option value="best">best first</option></select></label>{category_filter}'
        f'<span class="syslist">Show: {toggles}</span></div>'
        f'<div class="scroll"><table class="listen" id="listen"><thead><tr>{"".join(head)}</tr></thead>'
        f'<tbody>{"".join(body)}</tbody></table></div>')
    if not any(rec.get("output_audio") for row in rows for group in (row.run.draw_records or [row.run.records])
               for rec in group):
        notice = ('<div class="notes" role="note">No system output was saved in these runs (set '
                  "<code>save_audio: true</code> in the suite to listen to outputs); metrics are shown per "
                  "utterance.</div>")
        body_html = body_html.replace('<div class="controls">', notice + '<div class="controls">', 1)
    data = json.dumps({"keys": keys, "values": sort_values}, allow_nan=False).replace("</", "<\\/")
    return page(f"Listening — {table.title}", body_html, f"var SORT={data};{LISTEN_JS}")

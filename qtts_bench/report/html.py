"""Self-contained HTML report (inline CSS and JS, plots as data: URIs; works from file://).

One section per table: notes, sortable leaderboard (aggregate on the common utterances, 95 %
bootstrap CI, scored / failed counts, best and statistically tied cells, spread across draws;
reference rows marked and never best; timed columns with each run's jobs and device), the
per-category breakdown (when records carry ``category``), the corpus codebook usage (when
summary.json pools it), ablations with paired deltas and verdicts, plots, and a link to the
listening page that says beforehand when runs kept no audio.
"""

from __future__ import annotations

import datetime as _dt
import html
import math

from .. import __version__
from .plots import Figure
from .stats import Estimate
from .load import Run
from .table import Ablation, Cell, Column, Report, Table

CSS = """
:root{--fg:#1d2330;--muted:#5b6475;--line:#d9dee7;--bg:#fff;--head:#f3f5f9;--best:#d8f3dc;
--bestfg:#14532d;--tied:#eef8f0;--warn:#fff7e0;--warnline:#f0c36d;--bad:#fde2e1;--badfg:#8a1c1c;
--good:#d8f3dc;--goodfg:#14532d;--ns:#eef0f4;--accent:#2457c5}
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;
color:var(--fg);background:var(--bg);margin:0;padding:20px 28px 60px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:34px 0 8px;padding-top:10px;
border-top:2px solid var(--line)}h3{font-size:15px;margin:22px 0 6px}
a{color:var(--accent)}
.meta{color:var(--muted);font-size:12.5px;margin:0 0 12px}
.meta code{font-size:12px}
.legend{font-size:12.5px;color:var(--muted);margin:6px 0 10px;max-width:1100px}
.legend .sw{display:inline-block;width:12px;height:12px;border-radius:2px;vertical-align:-1px;
margin:0 3px 0 8px;border:1px solid #9ccfa9}
.notes{background:var(--warn);border:1px solid var(--warnline);border-radius:6px;padding:8px 14px;
margin:10px 0 14px;font-size:13px;max-width:1200px}
.notes strong{display:block;margin-bottom:2px}.notes ul{margin:2px 0 2px 18px;padding:0}
.scroll{overflow-x:auto;max-width:100%}
table.lb,table.ab,table.plain{border-collapse:collapse;font-size:13px;margin:4px 0 8px}
table.lb th,table.lb td,table.ab th,table.ab td,table.plain th,table.plain td{
border:1px solid var(--line);padding:5px 9px;vertical-align:top}
table.lb thead th,table.ab thead th,table.plain thead th{background:var(--head);text-align:left;
font-weight:600;position:sticky;top:0;z-index:1}
th .unit{font-weight:400;color:var(--muted);font-size:11.5px}
th .prov{font-weight:400;color:var(--muted);font-size:10.5px;max-width:210px;white-space:normal;
overflow-wrap:anywhere;margin-top:2px}
th .ncommon{font-weight:400;font-size:11px;color:#3b4a63;margin-top:2px}
th .split{font-weight:400;font-size:11px;color:#8a5a00;margin-top:2px}
th button.sort{all:unset;cursor:pointer;font-weight:600;white-space:nowrap}
th button.sort:focus-visible{outline:2px solid var(--accent)}
th button.sort::after{content:" ⇅";color:#9aa3b2;font-weight:400}
th[aria-sort=ascending] button.sort::after{content:" ▲";color:var(--fg)}
th[aria-sort=descending] button.sort::after{content:" ▼";color:var(--fg)}
td.num{text-align:right;white-space:nowrap;font-variant-numeric:tabular-nums}
td.num .v{font-weight:600;font-size:13.5px}
td.num .ci{display:block;color:var(--muted);font-size:11px}
td.num .n{display:block;color:var(--muted);font-size:10.5px}
td.num .n .f{color:var(--badfg)}
td.num .dr{display:block;color:#3b4a63;font-size:10.5px}
.bycat-wrap{display:inline-block;vertical-align:top;margin:0 22px 10px 0;max-width:100%;overflow-x:auto}
table.bycat caption{text-align:left;font-weight:600;font-size:13.5px;padding:2px 0 4px}
table.bycat caption .unit{font-weight:400;color:var(--muted);font-size:11.5px}
td.best{background:var(--best)}td.best .v{color:var(--bestfg)}
td.best .v::before{content:"★ ";font-size:11px}
td.tied{background:var(--tied)}td.tied .v::before{content:"≈ ";color:var(--bestfg);font-size:11px}
td.missing{color:var(--muted);text-align:center;font-size:12px;background:#fafafa}
td.missing .why{display:block;font-size:10.5px;max-width:150px;white-space:normal}
td.sys{white-space:nowrap}td.sys .name{font-weight:600}
td.sys .chips{display:block;margin-top:2px}
.chip{display:inline-block;background:#eef2fb;border:1px solid #d3dcf0;border-radius:9px;
padding:0 6px;margin:1px 2px 0 0;font-size:11px;color:#2a3b66}
.badge{display:inline-block;border-radius:9px;padding:0 7px;font-size:11px;margin-top:2px}
.badge.warn{background:var(--warn);border:1px solid var(--warnline);color:#7a5200}
.badge.err{background:var(--bad);color:var(--badfg)}
td.verdict-better{background:var(--good)}td.verdict-worse{background:var(--bad)}
td .verdict{display:block;font-size:11px;font-weight:600}
td.verdict-better .verdict{color:var(--goodfg)}td.verdict-worse .verdict{color:var(--badfg)}
td.verdict-ns .verdict{color:var(--muted);font-weight:400}
figure{display:inline-block;margin:8px 18px 14px 0;vertical-align:top;max-width:100%}
figure img{max-width:100%;border:1px solid var(--line);border-radius:4px}
figcaption{font-size:12px;color:var(--muted);max-width:760px}
details{margin:10px 0}summary{cursor:pointer;font-weight:600}
.small{font-size:12px;color:var(--muted)}
audio{width:210px;height:32px;display:block}
tr.ref td{background:#f4f6fa}tr.ref td.sys .name{font-style:italic}
.badge.ref{background:#e3e8f3;border:1px solid #c5cee3;color:#2a3b66}
td.num .jobs{display:block;color:var(--muted);font-size:10.5px}
td.num .jobs.many{color:#8a5a00}
a.noaudio{color:var(--muted)}.listen-none{color:#7a5200}
table.pooled td.num .v{font-weight:600}
table.pooled td.num .n{display:block;color:var(--muted);font-size:10.5px;white-space:normal;max-width:230px;
margin-left:auto}
"""

SORT_JS = """
(function(){
function key(td){var v=td.getAttribute('data-v');if(v===null)return td.textContent.trim().toLowerCase();
 return v===''?null:parseFloat(v);}
document.querySelectorAll('table.sortable').forEach(function(table){
 var heads=table.tHead.rows[0].cells;
 Array.prototype.forEach.call(heads,function(th,col){
  var btn=th.querySelector('button.sort');if(!btn)return;
  btn.addEventListener('click',function(){
   var cur=th.getAttribute('aria-sort');var first=th.getAttribute('data-first')||'ascending';
   var dir=cur===first?(first==='ascending'?'descending':'ascending'):first;
   Array.prototype.forEach.call(heads,function(h){if(h.querySelector('button.sort'))h.setAttribute('aria-sort','none');});
   th.setAttribute('aria-sort',dir);
   var body=table.tBodies[0];var rows=Array.prototype.slice.call(body.rows);
   rows.sort(function(a,b){var x=key(a.cells[col]),y=key(b.cells[col]);
    if(x===null&&y===null)return 0;if(x===null)return 1;if(y===null)return -1;
    var c=(typeof x==='number'&&typeof y==='number')?x-y:String(x).localeCompare(String(y));
    return dir==='ascending'?c:-c;});
   rows.forEach(function(r){body.appendChild(r);});
  });
 });
});
})();
"""


def esc(value) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def decimals_for(values: list[float], widths: list[float]) -> int:
    """Decimals showing about two significant digits of the typical CI width (1..4)."""
    widths = sorted(w for w in widths if w and math.isfinite(w) and w > 0)
    if widths:
        width = widths[len(widths) // 2]
        return int(min(4, max(1, 1 - math.floor(math.log10(width)))))
    magnitude = max((abs(v) for v in values if v is not None and math.isfinite(v)), default=1.0)
    if magnitude == 0:
        return 2
    return int(min(4, max(1, 2 - math.floor(math.log10(magnitude)))))


def fmt(value: float | None, decimals: int, signed: bool = False) -> str:
    if value is None or not math.isfinite(value):
        return "—"
    if value != 0 and abs(value) < 0.5 * 10 ** -decimals:  # would print as 0: two significant digits
        text = f"{value:+.2g}" if signed else f"{value:.2g}"
    else:
        text = f"{value:+.{decimals}f}" if signed else f"{value:.{decimals}f}"
    return text.replace("-", "−")


def page(title: str, body: str, extra_js: str = "") -> str:
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<title>{esc(title)}</title><style>{CSS}</style></head>\n<body>\n{body}\n'
            f'<script>{SORT_JS}{extra_js}</script>\n</body></html>\n')


PROV_INLINE_CHARS = 90  # settings text longer than this is shown folded under the header


def column_header(column: Column, n_common: int | None) -> str:
    arrow = {"higher": " ↑", "lower": " ↓"}.get(column.direction, "")
    first = "descending" if column.direction == "higher" else "ascending"
    title = column.title + (f" ⟨{column.key.split('~', 1)[1]}⟩" if "~" in column.key else "")
    help_text = (f"{'higher' if column.direction == 'higher' else 'lower'} is better"
                 if column.direction else "no better direction declared")
    parts = [f'<th data-first="{first}" aria-sort="none" title="{esc(help_text)} · {esc(column.provenance_full())}">'
             f'<button class="sort" type="button">{esc(title)}{arrow}</button>']
    if column.unit:
        parts.append(f'<div class="unit">{esc(column.unit)}</div>')
    prov = column.provenance()
    if len(prov) > PROV_INLINE_CHARS:  # long settings (ASR decoders, model paths) fold away
        parts.append(f'<details class="prov"><summary>settings</summary>{esc(prov)}</details>')
    elif prov:
        parts.append(f'<div class="prov">{esc(prov)}</div>')
    if n_common is not None:
        parts.append(f'<div class="ncommon">on {n_common} common utt.</div>')
    if column.note:
        parts.append('<div class="split">settings differ: see notes</div>')
    parts.append("</th>")
    return "".join(parts)


def jobs_html(run: Run | None) -> str:
    """``jobs N · device`` under a timed value (parallel workers inflate timings)."""
    if run is None:
        return ""
    jobs, device = run.jobs, run.device
    text = f"jobs {'?' if jobs is None else jobs}" + (f" · {device}" if device else "")
    many = jobs is not None and jobs > 1
    tip = ("worker processes of the run" + (f": {jobs} shared the CPU while this was timed, which inflates it "
                                            "compared with jobs 1" if many else "")
           + (" (not recorded in this run.json)" if jobs is None else "")
           + (f"; device {device}" if device else ""))
    return f'<span class="jobs{" many" if many else ""}" title="{esc(tip)}">{esc(text)}</span>'


def cell_html(cell: Cell | None, column: Column, decimals: int, run: Run | None = None) -> str:
    """One leaderboard cell; ``run`` adds its jobs and device under a timed column's value."""
    if cell is None or cell.estimate is None:
        why = cell.note if cell is not None else "not in this table"
        short = {"absent": "not scored", "all_failed": "all failed", "no_common": "no common utt.",
                 "no_stats": "no stats", "not_applicable": "n/a (not applicable)"}.get(
                     cell.status if cell else "absent", "—")
        if cell is not None and cell.status == "absent" and column.info.source == "system":
            short = "n/a"
        if cell is not None and cell.status == "not_applicable":
            why = "; ".join(f"{r} ({n})" for r, n in list(cell.not_applicable_reasons.items())[:4]) or cell.note
            return (f'<td class="missing na" data-v="" title="not applicable: {esc(why)}">'
                    f'n/a<span class="why">{esc(short)}</span></td>')
        return f'<td class="missing" data-v="" title="{esc(why)}">—<span class="why">{esc(short)}</span></td>'
    est = cell.estimate
    classes = ["num"] + (["best"] if cell.best else []) + (["tied"] if cell.tied else [])
    ci = (f'<span class="ci">[{fmt(est.low, decimals)}, {fmt(est.high, decimals)}]</span>'
          if est.low is not None else '<span class="ci">no CI (n&lt;2)</span>')
    failed = f' · <span class="f">{cell.n_failed} ✗</span>' if cell.n_failed else ""
    if cell.n_not_applicable:
        failed += f' · <span class="na" title="not applicable (not failures)">{cell.n_not_applicable} n/a</span>'
    tip = [f"{fmt(est.value, decimals + 1)} on {est.n} common utterances"]
    spread = draws_html(cell, decimals)
    if cell.draws is not None:
        tip.append("per draw: " + ", ".join(f"draw {j}: {fmt(v, decimals + 1)}"
                                            for j, v in enumerate(cell.draws.values)))
    if est.low is not None:
        tip.append(f"95 % bootstrap CI [{fmt(est.low, decimals + 1)}, {fmt(est.high, decimals + 1)}]")
    if cell.all_value is not None:
        tip.append(f"on all {cell.n_scored} utterances this run scored: {fmt(cell.all_value, decimals + 1)}")
    if cell.delta_to_best is not None:
        d = cell.delta_to_best
        tip.append(f"vs best: {fmt(d.value, decimals + 1, True)} [{fmt(d.low, decimals + 1, True)}, "
                   f"{fmt(d.high, decimals + 1, True)}]" + (" (not significant)" if cell.tied else ""))
    if cell.failure_reasons:
        tip.append("failures: " + "; ".join(f"{r} ({n})" for r, n in list(cell.failure_reasons.items())[:4]))
    if cell.not_applicable_reasons:
        tip.append("not applicable: " + "; ".join(f"{r} ({n})"
                                                  for r, n in list(cell.not_applicable_reasons.items())[:4]))
    if run is not None and run.reference:
        tip.append("reference row: not ranked")
    jobs = jobs_html(run) if column.timed else ""
    return (f'<td class="{" ".join(classes)}" data-v="{est.value!r}" title="{esc(" · ".join(tip))}">'
            f'<span class="v">{fmt(est.value, decimals)}</span>{ci}{spread}'
            f'<span class="n">{cell.n_scored} ✓{failed}</span>{jobs}</td>')


def draws_html(cell: Cell, decimals: int) -> str:
    """``± std · min–max (N draws)`` of the per-draw corpus values, or "" for one draw."""
    spread = cell.draws
    if spread is None:
        return ""
    if spread.n == 0:
        return '<span class="dr">no draw scored alone</span>'
    std = f"±{fmt(spread.std, decimals)} · " if spread.std is not None else ""
    return (f'<span class="dr" title="standard deviation and range of the corpus value of each draw">'
            f'{std}{fmt(spread.min, decimals)}–{fmt(spread.max, decimals)} over {spread.n} draws</span>')


def _column_decimals(table: Table, column: Column) -> int:
    cells = [row.cells.get(column.key) for row in table.rows]
    ests = [c.estimate for c in cells if c is not None and c.estimate is not None]
    return decimals_for([e.value for e in ests], [e.high - e.low for e in ests if e.low is not None])


def leaderboard_html(table: Table) -> str:
    head = ['<th data-first="ascending" aria-sort="none"><button class="sort" type="button">System</button>'
            '<div class="unit">label, parameters</div></th>',
            '<th data-first="descending" aria-sort="none"><button class="sort" type="button">Done</button>'
            '<div class="unit">utterances</div></th>']
    for column in table.columns:
        head.append(column_header(column, table.n_common.get(column.key)))
    decimals = {c.key: _column_decimals(table, c) for c in table.columns}
    body = []
    for row in table.rows:
        run = row.run
        chips = "".join(f'<span class="chip">{esc(k)}={esc(v)}</span>' for k, v in run.params.items())
        badges = ""
        if run.n_items is not None and len(run.ids) < run.n_items:
            badges += '<span class="badge warn">partial</span> '
        if any(n.startswith("unfinished") for n in run.notes):
            badges += '<span class="badge warn">unfinished</span> '
        if run.n_system_errors:
            badges += f'<span class="badge err">{run.n_system_errors} system error(s)</span>'
        if run.reference:
            badges = ('<span class="badge ref" title="the input itself (ground truth): shown for scale, never '
                      'ranked best">reference</span> ') + badges
        cells = [f'<td class="sys" data-v="{esc(row.name)}" title="{esc(str(run.path))}">'
                 f'<span class="name">{esc(run.system)}</span>'
                 f'<span class="chips">{chips}</span>{badges}</td>']
        done = len(run.ids)
        total = f"/{run.n_items}" if run.n_items is not None else ""
        draws = (f'<span class="n">× {run.n_draws} draws</span>' if run.n_draws > 1 else "")
        cells.append(f'<td class="num" data-v="{done}"><span class="v">{done}{total}</span>{draws}</td>')
        for column in table.columns:
            cells.append(cell_html(row.cells.get(column.key), column, decimals[column.key], run))
        tr = '<tr class="ref" data-reference="1">' if run.reference else "<tr>"
        body.append(tr + "".join(cells) + "</tr>")
    return (f'<div class="scroll"><table class="lb sortable" id="lb-{esc(table.slug)}"><thead><tr>{"".join(head)}'
            f'</tr></thead><tbody>{"".join(body)}</tbody></table></div>')


def listen_link_html(table: Table, href: str) -> str:
    """The link to the listening page, saying before it is clicked which runs kept no audio."""
    without = [row.name for row in table.rows if not row.run.kept_audio]
    if len(without) == len(table.rows):
        return (f'<p class="listen-link"><a class="noaudio" href="{esc(href)}">▶ Listening page for {esc(table.title)} '
                f'(no outputs to play)</a> — <span class="listen-none">no run kept its audio (the suite had '
                "<code>save_audio: false</code>)</span>: the page has the texts, references and per-utterance "
                "metrics; set <code>save_audio: true</code> and re-run to hear the outputs.</p>")
    kept = (f' <span class="listen-none">Outputs of {len(without)} of {len(table.rows)} runs were not kept '
            f"({esc(', '.join(without))}).</span>") if without else ""
    return (f'<p class="listen-link"><a href="{esc(href)}">▶ Listening page for {esc(table.title)}</a> '
            "— every utterance with reference, prompt and each system's output; sortable to find the worst "
            f"cases.{kept}</p>")


def pooled_html(table: Table) -> str:
    """Corpus codebook usage per run (summary.json ``pooled``): perplexity and dead codes of the
    histograms summed over every utterance the run scored, and the entropy bitrate."""
    if not table.pooled:
        return ""
    body = []
    for entry in table.pooled:
        run, usage = entry.row.run, entry.usage
        per_codebook = usage.get("perplexity") or []
        dead = usage.get("dead_fraction") or []
        shown = ", ".join(f"{v:.0f}" for v in per_codebook[:16]) + (" …" if len(per_codebook) > 16 else "")
        dead_shown = ", ".join(f"{100 * v:.0f}" for v in dead[:16]) + (" …" if len(dead) > 16 else "")
        values = [("perplexity", entry.get("mean_perplexity"), 1, 1.0),
                  ("dead", entry.get("mean_dead_fraction"), 1, 100.0),
                  ("entropy_bitrate", entry.get("entropy_bitrate"), 2, 1e-3),
                  ("bitrate", entry.get("bitrate"), 2, 1e-3)]
        cells = [f'<td class="sys" data-v="{esc(entry.row.name)}"><span class="name">{esc(run.system)}</span>'
                 f'<span class="chips">{"".join(f"<span class=chip>{esc(k)}={esc(v)}</span>" for k, v in run.params.items())}'
                 f'</span></td>',
                 f'<td>{esc(entry.metric)}</td>',
                 f'<td class="num" data-v="{entry.get("n_utterances") or ""}">'
                 f'<span class="v">{esc(usage.get("n_utterances", "—"))}</span></td>',
                 f'<td class="num" data-v="{usage.get("n_codebooks", "")}"><span class="v">'
                 f'{esc(usage.get("n_codebooks", "—"))} × {esc(usage.get("codebook_size", "—"))}</span></td>']
        for name, value, digits, scale in values:
            detail = ""
            if name == "perplexity" and shown:
                detail = f'<span class="n" title="per codebook, in order">{esc(shown)}</span>'
            if name == "dead" and dead_shown:
                detail = f'<span class="n" title="per codebook, % of codes never used">{esc(dead_shown)} %</span>'
            text = "—" if value is None else f"{value * scale:.{digits}f}"
            cells.append(f'<td class="num" data-v="{"" if value is None else value!r}" data-k="{name}">'
                         f'<span class="v">{text}</span>{detail}</td>')
        body.append(('<tr class="ref">' if run.reference else "<tr>") + "".join(cells) + "</tr>")
    head = "".join(f'<th data-first="{first}" aria-sort="none"><button class="sort" type="button">{esc(title)}</button>'
                   f'{f"<div class=unit>{esc(unit)}</div>" if unit else ""}</th>'
                   for title, unit, first in (("System", "", "ascending"), ("Metric", "", "ascending"),
                                              ("Utterances", "pooled", "descending"),
                                              ("Codebooks", "count × size", "descending"),
                                              ("Corpus perplexity", "codes, mean over codebooks", "descending"),
                                              ("Dead codes", "% never used, mean", "ascending"),
                                              ("Entropy bitrate", "kbit/s", "ascending"),
                                              ("Fixed-length bitrate", "kbit/s", "ascending")))
    return ('<h3>Codebook usage over the corpus</h3><p class="legend">From each run\'s summary.json '
            "(<code>pooled</code>): the code histograms summed over every utterance the run scored (not only "
            "the table's common utterances), so the corpus perplexity (2<sup>entropy</sup>, the effective number of "
            "codes in use) is larger than the per-utterance values in the leaderboard. Dead codes: share of a "
            "codebook never used on the corpus. Entropy bitrate: frame rate × Σ entropies, the bitrate an "
            "entropy coder could reach; fixed-length bitrate: frame rate × codebooks × log<sub>2</sub> size.</p>"
            f'<div class="scroll"><table class="plain sortable pooled" id="pooled-{esc(table.slug)}"><thead><tr>{head}'
            f'</tr></thead><tbody>{"".join(body)}</tbody></table></div>')


def _delta_cell(delta, column: Column, decimals: int) -> str:
    if delta is None:
        return '<td class="missing" data-v="">—</td>'
    est: Estimate | None = delta.estimate
    if est is None:
        return (f'<td class="missing" data-v="" title="{esc(delta.note)}">—'
                f'<span class="why">{esc(delta.verdict)}</span></td>')
    kind = {"better": "better", "worse": "worse"}.get(delta.verdict, "ns")
    ci = (f'<span class="ci">[{fmt(est.low, decimals, True)}, {fmt(est.high, decimals, True)}]</span>'
          if est.low is not None else "")
    tip = (f"{fmt(delta.baseline, decimals + 1)} → {fmt(delta.candidate, decimals + 1)} "
           f"on {est.n} utterances both scored")
    return (f'<td class="num verdict-{kind}" data-v="{est.value!r}" title="{esc(tip)}">'
            f'<span class="v">{fmt(est.value, decimals, True)}</span>{ci}'
            f'<span class="verdict">{esc(delta.verdict)}</span><span class="n">n={est.n}</span></td>')


def _compact_header(column: Column) -> str:
    arrow = {"higher": " ↑", "lower": " ↓"}.get(column.direction, "")
    title = column.title + (f" ⟨{column.key.split('~', 1)[1]}⟩" if "~" in column.key else "")
    unit = f'<div class="unit">{esc(column.unit)}</div>' if column.unit else ""
    return f'<th title="{esc(column.provenance())}">{esc(title)}{arrow}{unit}</th>'


def ablations_html(table: Table) -> str:
    """One table per (system, axis): a row per compared level pair (and fixed parameters)."""
    groups: dict[tuple[str, str], list[Ablation]] = {}
    for ablation in table.ablations:
        groups.setdefault((ablation.system, ablation.axis), []).append(ablation)
    out = []
    for (system, axis), ablations in groups.items():
        columns = [c for c in table.columns
                   if any(c.key in comp.deltas for a in ablations for comp in a.comparisons)]
        decimals = {c.key: _column_decimals(table, c) for c in columns}
        head = "<th>Change</th>" + "".join(_compact_header(c) for c in columns)
        body = []
        for ablation in ablations:
            chips = "".join(f'<span class="chip">{esc(k)}={esc(v)}</span>' for k, v in sorted(ablation.fixed.items()))
            for comp in ablation.comparisons:
                label = (f'<span class="name">{esc(comp.level_a)} → {esc(comp.level_b)}</span>'
                         f'<span class="chips">{chips}</span>')
                tip = f"{comp.run_a.label} → {comp.run_b.label}"
                cells = [f'<td class="sys" title="{esc(tip)}">{label}</td>'] + [
                    _delta_cell(comp.deltas.get(c.key), c, decimals[c.key]) for c in columns]
                body.append("<tr>" + "".join(cells) + "</tr>")
        out.append(f'<h3>Ablation — {esc(system)}: {esc(axis)}</h3><div class="scroll"><table class="ab">'
                   f'<thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>')
    return "".join(out)


def categories_html(table: Table) -> str:
    """Per-category breakdown: one table per column, systems as rows, categories as columns."""
    breakdown = table.categories
    if breakdown is None or not breakdown.columns:
        return ""
    out = ['<h3>By category</h3><p class="legend">Each cell: the column\'s aggregate (by the metric\'s own '
           "aggregation) on the utterances of that category that every system scored (<i>n</i> under the "
           "category), with its 95 % bootstrap CI. ★ best system in the category by the declared direction, "
           "≈ not significantly different from it (paired CI contains 0). Also in "
           '<a href="by_category.csv">by_category.csv</a>.</p>']
    for entry in breakdown.columns:
        column = entry.column
        decimals = _column_decimals(table, column)
        arrow = {"higher": " ↑", "lower": " ↓"}.get(column.direction, "")
        first = "descending" if column.direction == "higher" else "ascending"
        head = ['<th data-first="ascending" aria-sort="none"><button class="sort" type="button">System</button>'
                '</th>']
        title = column.title + (f" ⟨{column.key.split('~', 1)[1]}⟩" if "~" in column.key else "")
        caption = (f'<caption title="{esc(column.provenance())}">{esc(title)}{arrow}'
                   f'{" <span class=unit>" + esc(column.unit) + "</span>" if column.unit else ""}</caption>')
        for category in breakdown.categories:
            head.append(f'<th data-first="{first}" aria-sort="none" data-category="{esc(category)}">'
                        f'<button class="sort" type="button">{esc(category)}</button>'
                        f'<div class="ncommon">on {entry.n[category]} common utt.</div></th>')
        body = []
        for j, row in enumerate(table.rows):
            cells = [f'<td class="sys" data-v="{esc(row.name)}"><span class="name">{esc(row.name)}</span></td>']
            for category in breakdown.categories:
                cell = entry.cells[(j, category)]
                if cell.estimate is None:
                    cells.append(cell_html(cell, column, decimals))
                    continue
                est = cell.estimate
                classes = ["num"] + (["best"] if cell.best else []) + (["tied"] if cell.tied else [])
                ci = (f'<span class="ci">[{fmt(est.low, decimals)}, {fmt(est.high, decimals)}]</span>'
                      if est.low is not None else '<span class="ci">no CI (n&lt;2)</span>')
                cells.append(f'<td class="{" ".join(classes)}" data-v="{est.value!r}" data-n="{est.n}" '
                             f'title="{esc(fmt(est.value, decimals + 1))} on {est.n} utterance(s)">'
                             f'<span class="v">{fmt(est.value, decimals)}</span>{ci}{draws_html(cell, decimals)}'
                             f'<span class="n">n = {est.n}</span></td>')
            body.append("<tr>" + "".join(cells) + "</tr>")
        out.append(f'<div class="bycat-wrap"><table class="lb sortable bycat" data-column="{esc(column.key)}">'
                   f'{caption}<thead><tr>{"".join(head)}</tr></thead><tbody>{"".join(body)}</tbody></table></div>')
    return "".join(out[:1]) + f'<div class="bycat-all">{"".join(out[1:])}</div>'



def notes_html(notes: list[str], title: str = "Notes") -> str:
    if not notes:
        return ""
    items = "".join(f"<li>{esc(n)}</li>" for n in notes)
    return f'<div class="notes" role="note"><strong>{esc(title)}</strong><ul>{items}</ul></div>'


def figures_html(figures: list[Figure]) -> str:
    return "".join(f'<figure><img alt="{esc(f.title)}" src="data:image/png;base64,{f.png_base64}">'
                   f'<figcaption><b>{esc(f.title)}.</b> {esc(f.caption)}</figcaption></figure>'
                   for f in figures)


def runs_html(report: Report) -> str:
    rows = []
    for run in report.runs:
        env = run.environment()
        git = env.get("git") or {}
        commit = (git.get("commit") or "?")[:10] + (" (dirty)" if git.get("dirty") else "")
        rows.append("<tr>" + "".join(f"<td>{esc(v)}</td>" for v in (
            run.suite, run.dataset, run.name, commit, env.get("device"), env.get("cpu"),
            "?" if run.jobs is None else run.jobs, run.run_json.get("started"), run.run_json.get("finished") or "—",
            str(run.path))) + "</tr>")
    head = "".join(f"<th>{h}</th>" for h in ("suite", "dataset", "run", "git", "device", "cpu", "jobs", "started",
                                              "finished", "folder"))
    return (f'<details><summary>Runs and provenance ({len(report.runs)})</summary><div class="scroll">'
            f'<table class="plain"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'
            f'</div></details>')


LEGEND = ("Each number is the metric's declared aggregate on the utterances <b>every</b> system in the "
          "table scored (<i>n common</i> under the header), with its 95 % bootstrap CI in brackets; "
          "✓ / ✗ count this run's scored and failed utterances; n/a counts those the metric does not "
          "apply to (e.g. codebook usage of a codec without tokens), which are not failures. "
          '<span class="sw" style="background:var(--best)"></span>★ best in column by the metric\'s '
          'declared direction (↑ higher / ↓ lower is better); '
          '<span class="sw" style="background:var(--tied)"></span>≈ not significantly different from '
          "the best (paired bootstrap CI of the difference contains 0). Rows marked <i>reference</i> "
          "(passthrough: the input itself, i.e. the ground truth) come first for scale and never take ★ or ≈. "
          "Timed columns (RTF, TTFT, peak memory) show under each value the <code>jobs</code> (worker "
          "processes) and device of the run: several workers share the CPU and inflate timings. "
          "With several draws per utterance "
          "(<code>samples: N</code>) every utterance counts once with the mean over its draws (ratio "
          "metrics: statistics summed over its draws), and ± / min–max under a value are the standard "
          "deviation and range of the corpus value of each draw. Click a header to sort; hover a "
          "cell for details.")


def render_index(report: Report, figures: dict[str, list[Figure]], listen_pages: dict[str, str],
                 files: dict[str, str], command: list[str] | None = None, title: str = "qtts-bench report") -> str:
    """The report page. ``figures``/``listen_pages`` keyed by table slug; ``files``: name -> href."""
    opts = report.options
    now = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    sources = sorted({run.source for run in report.runs})
    links = " · ".join(f'<a href="{esc(href)}">{esc(name)}</a>' for name, href in files.items())
    parts = [f"<h1>{esc(title)}</h1>",
             f'<p class="meta">Generated {esc(now)} by qtts-bench {esc(__version__)} from '
             f'{", ".join(f"<code>{esc(s)}</code>" for s in sources)} · {len(report.runs)} runs · '
             f'bootstrap: {opts.n_resamples} resamples, {opts.level:.0%} percentile CI, seed {opts.seed}'
             + (f" · command: <code>{esc(' '.join(command))}</code>" if command else "")
             + (f"<br>Downloads: {links}" if links else "") + "</p>",
             f'<p class="legend">{LEGEND}</p>',
             notes_html(report.notes, "Report notes")]
    if len(report.tables) > 1:
        toc = "".join(f'<li><a href="#t-{esc(t.slug)}">{esc(t.title)}</a> ({len(t.rows)} runs)</li>'
                      for t in report.tables)
        parts.append(f"<ul>{toc}</ul>")
    for table in report.tables:
        parts.append(f'<h2 id="t-{esc(table.slug)}">{esc(table.title)}</h2>')
        listen = listen_pages.get(table.slug)
        if listen:
            parts.append(listen_link_html(table, listen))
        parts.append(notes_html(table.notes))
        parts.append(leaderboard_html(table))
        parts.append(pooled_html(table))
        parts.append(categories_html(table))
        if table.ablations:
            parts.append(ablations_html(table))
            parts.append('<p class="legend">Ablation cells: paired per-utterance change (later level − '
                         "earlier level) on the utterances both runs scored, with its 95 % bootstrap CI; "
                         "a verdict (better / worse by the declared direction) only where the CI "
                         "excludes 0.</p>")
        figs = figures.get(table.slug) or []
        if figs:
            parts.append("<h3>Plots</h3>" + figures_html(figs))
    parts.append(runs_html(report))
    return page(title, "\n".join(p for p in parts if p))


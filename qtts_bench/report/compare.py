"""Baseline vs candidate: paired per-metric deltas with bootstrap CIs and regression gates.

Gates (``--fail``): ``METRIC:-0.05`` allows the metric to get worse by at most 0.05 (absolute),
``METRIC:+5%`` by at most 5 % of the baseline aggregate. "Worse" follows the metric's declared
direction; a sign, when given, must agree with it ('-' for higher-is-better metrics, '+' for
lower-is-better ones). A gated metric also fails when the candidate has more failed utterances
than the baseline (beyond ``allow_new_failures``), since pairing hides them.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ConfigError
from .load import IncompatibleResults, Run, load_runs
from .stats import Estimate, bootstrap, paired_delta, verdict
from .table import ReportOptions, sample_for

_GATE = re.compile(r"^(?P<metric>[^:]+):(?P<sign>[+-]?)(?P<num>\d+(?:\.\d*)?|\.\d+)(?P<pct>%?)$")


@dataclass(frozen=True)
class Gate:
    metric: str
    limit: float  # allowed worsening: absolute, or percent of the baseline when ``relative``
    relative: bool
    sign: str  # "+", "-" or ""
    text: str

    def describe(self) -> str:
        return f"{self.sign or '±'}{self.limit:g}{'%' if self.relative else ''}"


def parse_gate(text: str) -> Gate:
    match = _GATE.match(text.strip())
    if not match:
        raise ConfigError(f"bad --fail threshold '{text}': expected METRIC:-0.05 (absolute) or "
                          "METRIC:+5% (relative to the baseline)")
    return Gate(match["metric"], float(match["num"]), bool(match["pct"]), match["sign"], text)


@dataclass
class MetricResult:
    metric: str
    direction: str | None
    unit: str
    baseline: Estimate | None = None
    candidate: Estimate | None = None
    delta: Estimate | None = None
    relative: float | None = None  # delta / |baseline|
    n_common: int = 0
    failed_baseline: int = 0
    failed_candidate: int = 0
    verdict: str = "not compared"
    note: str | None = None
    gate: Gate | None = None
    gate_failed: bool = False
    gate_reason: str | None = None


@dataclass
class PairResult:
    name: str
    baseline: Run
    candidate: Run
    metrics: list[MetricResult]
    notes: list[str] = field(default_factory=list)


@dataclass
class CompareResult:
    pairs: list[PairResult]
    notes: list[str]

    @property
    def failed(self) -> bool:
        return any(m.gate_failed for p in self.pairs for m in p.metrics)

    def to_json(self) -> dict:
        def est(e: Estimate | None):
            return None if e is None else {"value": _j(e.value), "ci_low": _j(e.low), "ci_high": _j(e.high), "n": e.n}

        return {
            "passed": not self.failed,
            "notes": self.notes,
            "pairs": [{
                "name": p.name, "baseline": str(p.baseline.path), "candidate": str(p.candidate.path),
                "notes": p.notes,
                "metrics": [{
                    "metric": m.metric, "direction": m.direction, "unit": m.unit,
                    "baseline": est(m.baseline), "candidate": est(m.candidate), "delta": est(m.delta),
                    "relative": _j(m.relative), "n_common": m.n_common,
                    "failed_baseline": m.failed_baseline, "failed_candidate": m.failed_candidate,
                    "verdict": m.verdict, "note": m.note,
                    "gate": m.gate.text if m.gate else None, "gate_failed": m.gate_failed,
                    "gate_reason": m.gate_reason} for m in p.metrics]} for p in self.pairs],
        }


def _j(x):
    return None if x is None or (isinstance(x, float) and not math.isfinite(x)) else x


def pair_runs(base: list[Run], cand: list[Run]) -> tuple[list[tuple[Run, Run]], list[str]]:
    """Single run vs single run pairs directly; otherwise by (suite, dataset, label), then (dataset, label)."""
    if len(base) == 1 and len(cand) == 1:
        note = [] if base[0].label == cand[0].label else [
            f"comparing different labels: {base[0].label} vs {cand[0].label}"]
        return [(base[0], cand[0])], note
    for key in (lambda r: r.key, lambda r: (r.dataset, r.label)):
        index = {}
        for run in cand:
            index.setdefault(key(run), []).append(run)
        pairs = [(b, index[key(b)][0]) for b in base if len(index.get(key(b), [])) == 1]
        if pairs:
            paired_b = {id(b) for b, _ in pairs}
            paired_c = {id(c) for _, c in pairs}
            notes = [f"baseline run without a candidate: {'/'.join(b.key)}" for b in base if id(b) not in paired_b]
            notes += [f"candidate run without a baseline: {'/'.join(c.key)}" for c in cand if id(c) not in paired_c]
            return pairs, notes
    return [], []


def compare(baseline: str | Path, candidate: str | Path, gates: list[Gate], options: ReportOptions | None = None,
            *, require_significance: bool = False, allow_new_failures: int = 0) -> CompareResult:
    """Raises ConfigError / IncompatibleResults (exit 2) for unusable input or gates."""
    options = options or ReportOptions()
    base_runs, base_problems = load_runs([baseline])
    cand_runs, cand_problems = load_runs([candidate])
    if not base_runs or not cand_runs:
        empty = baseline if not base_runs else candidate
        raise ConfigError(f"no runs found under {empty} (expected run.json; see docs/results-format.md)")
    pairs, notes = pair_runs(base_runs, cand_runs)
    if not pairs:
        raise ConfigError("no baseline run matches a candidate run by suite/dataset/label")
    notes = base_problems + cand_problems + notes
    gate_by_metric: dict[str, Gate] = {}
    for gate in gates:
        if gate.metric in gate_by_metric:
            raise ConfigError(f"metric '{gate.metric}' has two --fail thresholds")
        gate_by_metric[gate.metric] = gate
    results = []
    for b, c in pairs:
        if not set(b.ids) & set(c.ids) and b.ids and c.ids:
            raise IncompatibleResults(f"{b.path} and {c.path} share no utterance id: different datasets?")
        name = "/".join(c.key)
        pair = PairResult(name, b, c, [])
        hashes = {(r.run_json.get("dataset") or {}).get("items_sha256") for r in (b, c)}
        if len(hashes) > 1:
            pair.notes.append("dataset items differ (items_sha256); utterances paired by id")
        for metric in _metric_order(b, c):
            pair.metrics.append(_compare_metric(b, c, metric, gate_by_metric.get(metric), options,
                                                require_significance, allow_new_failures))
        results.append(pair)
    for metric, gate in gate_by_metric.items():
        if not any(m.metric == metric and m.gate is not None for p in results for m in p.metrics):
            raise ConfigError(f"--fail {gate.text}: metric '{metric}' is not in both baseline and candidate "
                              f"(available: {', '.join(sorted({m.metric for p in results for m in p.metrics}))})")
    return CompareResult(results, notes)


def _metric_order(b: Run, c: Run) -> list[str]:
    return list(b.metrics) + [k for k in c.metrics if k not in b.metrics]


def _compare_metric(b: Run, c: Run, metric: str, gate: Gate | None, options: ReportOptions,
                    require_significance: bool, allow_new_failures: int) -> MetricResult:
    info_b, info_c = b.metrics.get(metric), c.metrics.get(metric)
    info = info_b or info_c
    result = MetricResult(metric, info.direction, info.unit)
    if info_b is None or info_c is None:
        result.note = f"only in the {'baseline' if info_c is None else 'candidate'}"
        if gate:
            raise ConfigError(f"--fail {gate.text}: metric '{metric}' is {result.note}")
        return result
    ignore = options.ignore_settings
    if info_b.version != info_c.version or info_b.fingerprint(ignore) != info_c.fingerprint(ignore):
        diff = sorted(k for k in set(info_b.comparable(ignore)["settings"]) | set(info_c.comparable(ignore)["settings"])
                      if info_b.settings.get(k) != info_c.settings.get(k))
        what = (f"version {info_b.version} vs {info_c.version}" if info_b.version != info_c.version
                else f"settings differ ({', '.join(diff) or 'declaration'})")
        result.note = f"not compared: {what}"
        if gate:
            raise IncompatibleResults(f"--fail {gate.text}: '{metric}' cannot be compared: {what}")
        return result
    result.failed_baseline = b.n_failed(metric)  # not-applicable utterances are not failures
    result.failed_candidate = c.n_failed(metric)
    if gate is not None:
        _check_gate_sign(gate, info.direction)
        result.gate = gate
    common = sorted(b.scored_ids(metric) & c.scored_ids(metric))
    result.n_common = len(common)
    sb = sample_for(b, metric, common) if common else None
    sc = sample_for(c, metric, common) if common else None
    if not common or sb is None or sc is None:
        result.note = "no utterance scored by both" if not common else "ratio statistics missing"
        if gate:
            result.gate_failed, result.gate_reason = True, result.note
        return result
    kw = dict(n_resamples=options.n_resamples, level=options.level, seed=options.seed)
    result.baseline, result.candidate = bootstrap(sb, **kw), bootstrap(sc, **kw)
    result.delta = paired_delta(sb, sc, **kw)
    base_value = result.baseline.value
    if not (math.isfinite(base_value) and math.isfinite(result.candidate.value)):
        result.baseline = result.candidate = result.delta = None
        result.note = "aggregate undefined (denominator sums to zero)"
        if gate:
            result.gate_failed, result.gate_reason = True, result.note
        return result
    result.relative = result.delta.value / abs(base_value) if base_value else None
    result.verdict = verdict(result.delta, info.direction)
    if gate is not None:
        _apply_gate(result, gate, base_value, require_significance, allow_new_failures)
    return result


def _check_gate_sign(gate: Gate, direction: str | None) -> None:
    if direction not in ("higher", "lower"):
        raise ConfigError(f"--fail {gate.text}: '{gate.metric}' declares no direction, so 'worse' is undefined")
    expected = "-" if direction == "higher" else "+"
    if gate.sign and gate.sign != expected:
        raise ConfigError(f"--fail {gate.text}: '{gate.metric}' is {direction}-is-better, so its bad direction "
                          f"is '{expected}' (write {gate.metric}:{expected}{gate.limit:g}"
                          f"{'%' if gate.relative else ''})")


def _apply_gate(result: MetricResult, gate: Gate, base_value: float, require_significance: bool,
                allow_new_failures: int) -> None:
    sign = -1.0 if result.direction == "higher" else 1.0
    worse_by = sign * result.delta.value  # > 0: candidate is worse
    allowed = gate.limit / 100.0 * abs(base_value) if gate.relative else gate.limit
    reasons = []
    if worse_by > allowed + 1e-12 * max(1.0, abs(allowed)):
        significant = result.delta.low is not None and (
            (sign > 0 and result.delta.low > 0) or (sign < 0 and result.delta.high < 0))
        if significant or not require_significance:
            reasons.append(f"worse by {worse_by:.4g} > allowed {allowed:.4g}")
    new_failures = result.failed_candidate - result.failed_baseline
    if new_failures > allow_new_failures:
        reasons.append(f"{new_failures} more failed utterance(s) than the baseline")
    result.gate_failed = bool(reasons)
    result.gate_reason = "; ".join(reasons) or None


def format_text(result: CompareResult, level: float) -> str:
    """Readable table: one block per pair, one line per metric."""
    lines = []
    for note in result.notes:
        lines.append(f"note: {note}")
    header = ("metric", "baseline", "candidate", f"delta [{level:.0%} CI]", "rel", "n", "failed b/c",
              "verdict", "gate")
    for pair in result.pairs:
        lines.append("")
        lines.append(f"== {pair.name}")
        lines.append(f"   baseline:  {pair.baseline.path}")
        lines.append(f"   candidate: {pair.candidate.path}")
        for note in pair.notes:
            lines.append(f"   note: {note}")
        rows = [header]
        for m in pair.metrics:
            arrow = {"higher": "↑", "lower": "↓"}.get(m.direction, "")
            d = m.delta
            delta = "—" if d is None else f"{d.value:+.4g}"
            if d is not None and d.low is not None:
                delta += f" [{d.low:+.4g}, {d.high:+.4g}]"
            gate = ""
            if m.gate:
                gate = f"{'FAIL' if m.gate_failed else 'pass'} ({m.gate.describe()})" + (
                    f": {m.gate_reason}" if m.gate_reason else "")
            rows.append((f"{m.metric} {arrow}".strip(),
                         "—" if m.baseline is None else f"{m.baseline.value:.4g}",
                         "—" if m.candidate is None else f"{m.candidate.value:.4g}", delta,
                         "—" if m.relative is None else f"{m.relative:+.1%}", str(m.n_common),
                         f"{m.failed_baseline}/{m.failed_candidate}", m.note or m.verdict, gate))
        widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
        for r in rows:
            lines.append("   " + "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(r)).rstrip())
    gated = [m for p in result.pairs for m in p.metrics if m.gate]
    failed = [f"{p.name}: {m.metric}" for p in result.pairs for m in p.metrics if m.gate_failed]
    lines.append("")
    if failed:
        lines.append(f"FAILED: {len(failed)} of {len(gated)} gate check(s): {'; '.join(failed)}")
    else:
        lines.append(f"passed: {len(gated)} gate check(s)" if gated else "no --fail thresholds given")
    return "\n".join(lines)


"""A conformance run's report: every case's verdict and numbers, the device, the suite; as a
summary table, JSON (for machines) and one self-contained HTML page (for people)."""

from __future__ import annotations

import html
import json
import math
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from .bounds import FAIL, NOT_SUPPORTED, QUALITY_WARNING, VERDICTS

__all__ = ["CaseResult", "Report", "REPORT_FORMAT"]

#: The JSON report's format version (its keys), apart from the suite's version.
REPORT_FORMAT = 1


@dataclass
class CaseResult:
    """One case's outcome: ``grade`` is :meth:`gpuconv.conformance.bounds.Grade.to_dict` (``None``
    for NotSupported or an error before a result), ``message`` says why where there is no grade."""

    name: str
    group: str
    op: str
    call: str
    verdict: str
    seconds: float
    algorithm: Optional[str] = None
    storage: str = "float32"
    values: str = "uniform"
    grade: Optional[Dict[str, Any]] = None
    message: str = ""

    def to_dict(self) -> Dict[str, Any]:
        data = {"name": self.name, "group": self.group, "op": self.op, "call": self.call,
                "category": self.verdict, "algorithm": self.algorithm, "storage": self.storage,
                "values": self.values, "seconds": round(self.seconds, 4), "message": self.message}
        if self.grade is not None:
            data.update({k: v for k, v in self.grade.items() if k != "verdict"})
        return data


@dataclass
class Report:
    """What :func:`gpuconv.conformance.run` returns."""

    suite: str
    suite_version: str
    device: Dict[str, Any]
    results: List[CaseResult] = field(default_factory=list)
    shard: Optional[str] = None
    seconds: float = 0.0
    runtime: str = ""
    gpuconv_version: str = ""
    total_cases: int = 0   # the whole suite's size (a shard runs part of it)

    @property
    def counts(self) -> Dict[str, int]:
        """Cases per category: ``{'Pass': .., 'QualityWarning': .., 'Fail': .., 'NotSupported': ..}``."""
        counts = {verdict: 0 for verdict in VERDICTS}
        for result in self.results:
            counts[result.verdict] += 1
        return counts

    @property
    def failed(self) -> bool:
        return self.counts[FAIL] > 0

    @property
    def exit_code(self) -> int:
        """0 when nothing fails (a QualityWarning is reported, not failed), 1 otherwise."""
        return 1 if self.failed else 0

    def by_group(self) -> Dict[str, Dict[str, int]]:
        table: Dict[str, Dict[str, int]] = {}
        for result in self.results:
            row = table.setdefault(result.group, {verdict: 0 for verdict in VERDICTS})
            row[result.verdict] += 1
        return table

    def notable(self) -> List[CaseResult]:
        """The cases that did not pass."""
        return [r for r in self.results if r.verdict != "Pass"]

    # -- text ----------------------------------------------------------------------------------
    def summary_table(self) -> str:
        """Categories per group, then a totals line."""
        rows = [[group] + [str(counts[v]) for v in VERDICTS] for group, counts in self.by_group().items()]
        totals = self.counts
        rows.append(["total"] + [str(totals[v]) for v in VERDICTS])
        header = ["group", *VERDICTS]
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
        lines = ["  ".join(f"{c:<{w}}" for c, w in zip(row, widths)).rstrip() for row in [header, *rows]]
        lines.insert(1, "  ".join("-" * w for w in widths))
        lines.insert(len(lines) - 1, "  ".join("-" * w for w in widths))
        return "\n".join(lines)

    def summary(self) -> str:
        counts = self.counts
        shard = f", shard {self.shard}" if self.shard else ""
        return (f"conformance {self.suite} suite v{self.suite_version}{shard} on {self.device.get('name', '?')}: "
                f"{len(self.results)} cases, " + ", ".join(f"{counts[v]} {v}" for v in VERDICTS)
                + f" ({self.seconds:.1f} s)")

    def details(self) -> str:
        """One line per case that did not pass."""
        lines = []
        for r in self.notable():
            first = ""
            bad = (r.grade or {}).get("first_bad")
            if bad:
                first = (f"; first at {bad['index']}: got {bad['got']}, want {bad['want']} "
                         f"(+- {bad['bound']}, {bad['against']})")
            why = r.message or (r.grade or {}).get("reason", "")
            lines.append(f"{r.verdict}: {r.name}: {why}{first}\n  {r.call}")
        return "\n".join(lines)

    # -- JSON ----------------------------------------------------------------------------------
    def to_dict(self) -> Dict[str, Any]:
        return {"format": REPORT_FORMAT, "suite": {"name": self.suite, "version": self.suite_version,
                                                   "shard": self.shard, "cases": len(self.results),
                                                   "total_cases": self.total_cases or len(self.results)},
                "gpuconv": self.gpuconv_version, "runtime": self.runtime, "device": self.device,
                "counts": self.counts, "seconds": round(self.seconds, 3),
                "cases": [r.to_dict() for r in self.results]}

    def to_json(self, indent: Optional[int] = 1) -> str:
        return json.dumps(self.to_dict(), indent=indent, default=str)

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "Report":
        """A report read back from :meth:`to_dict` (or the exported page's JSON)."""
        suite = data["suite"]
        results = []
        for case in data["cases"]:
            grade = {k: case[k] for k in ("max_error", "ratio_expected", "ratio_rigorous", "expected_bound",
                                          "rigorous_bound", "first_bad", "reason") if k in case}
            results.append(CaseResult(case["name"], case["group"], case["op"], case["call"], case["category"],
                                      float(case.get("seconds", 0.0)), case.get("algorithm"),
                                      case.get("storage", "float32"), case.get("values", "uniform"),
                                      grade or None, case.get("message", "")))
        return cls(suite["name"], suite["version"], data.get("device", {}), results, suite.get("shard"),
                   float(data.get("seconds", 0.0)), data.get("runtime", ""), data.get("gpuconv", ""),
                   int(suite.get("total_cases", len(results))))

    # -- HTML ----------------------------------------------------------------------------------
    def to_html(self) -> str:
        """One page: the device, the counts, a chart of each case's error against its bounds, the table."""
        e = html.escape
        counts = self.counts
        device_rows = "".join(f"<tr><th>{e(str(k))}</th><td>{e(_text(v))}</td></tr>" for k, v in self.device.items())
        count_cells = "".join(f"<td class='{v}'>{v}: {counts[v]}</td>" for v in VERDICTS)
        rows = []
        for r in self.results:
            g = r.grade or {}
            bad = g.get("first_bad")
            first = (f"{bad['index']}: got {bad['got']}, want {bad['want']} &plusmn; {bad['bound']}"
                     if bad else "")
            rows.append(f"<tr class='{r.verdict}'><td>{e(r.name)}</td><td>{e(r.group)}</td>"
                        f"<td><code>{e(r.call)}</code></td><td>{r.verdict}</td>"
                        f"<td>{_fmt(g.get('max_error'))}</td><td>{_fmt(g.get('ratio_expected'))}</td>"
                        f"<td>{_fmt(g.get('ratio_rigorous'))}</td><td>{e(str(first))}</td>"
                        f"<td>{e(r.message or g.get('reason', ''))}</td><td>{r.seconds:.2f}</td></tr>")
        return _PAGE.format(title=e(self.summary()), device=device_rows, counts=count_cells,
                            chart=self.chart_svg(), rows="".join(rows), suite=e(self.suite),
                            version=e(self.suite_version), json=self.to_json(indent=None).replace("</", "<\\/"))

    def chart_svg(self, width: int = 900, height: int = 220) -> str:
        """Each case's largest error over its expected bound (dots) and over its rigorous bound
        (crosses), on a log scale from 1e-6 to 1e3; the line at 1 is the bound."""
        graded = [(i, r) for i, r in enumerate(self.results) if r.grade]
        low, high = -6.0, 3.0
        left, bottom = 40, height - 20

        def y_of(value: Any) -> Optional[float]:
            try:
                v = float(value)
            except (TypeError, ValueError):
                v = math.inf
            if v <= 0:
                return None
            exponent = min(max(math.log10(v) if math.isfinite(v) else high, low), high)
            return bottom - (exponent - low) / (high - low) * (bottom - 10)

        step = (width - left - 10) / max(1, len(self.results))
        marks = []
        for i, r in graded:
            x = left + (i + 0.5) * step
            assert r.grade is not None
            ye, yr = y_of(r.grade.get("ratio_expected")), y_of(r.grade.get("ratio_rigorous"))
            if ye is not None:
                marks.append(f"<circle cx='{x:.1f}' cy='{ye:.1f}' r='2.5' class='e {r.verdict}'>"
                             f"<title>{html.escape(r.name)}: error / expected bound = "
                             f"{_fmt(r.grade.get('ratio_expected'))}</title></circle>")
            if yr is not None:
                marks.append(f"<path d='M{x - 2:.1f},{yr - 2:.1f}l4,4m0,-4l-4,4' class='r'>"
                             f"<title>{html.escape(r.name)}: error / rigorous bound = "
                             f"{_fmt(r.grade.get('ratio_rigorous'))}</title></path>")
        axis = []
        for exponent in range(int(low), int(high) + 1, 3):
            y = y_of(10.0 ** exponent)
            axis.append(f"<text x='2' y='{y:.1f}'>1e{exponent}</text>"
                        f"<line x1='{left}' x2='{width - 10}' y1='{y:.1f}' y2='{y:.1f}' "
                        f"class='{'one' if exponent == 0 else 'grid'}'/>")
        return (f"<svg width='{width}' height='{height}' viewBox='0 0 {width} {height}' role='img' "
                f"aria-label='error against bound per case'>{''.join(axis)}{''.join(marks)}"
                f"<text x='{left}' y='{height - 4}'>cases, in suite order: dot = error / expected bound "
                f"(above 1: QualityWarning), cross = error / rigorous bound (above 1: Fail)</text></svg>")


def _text(value: Any) -> str:
    return json.dumps(value, default=str) if isinstance(value, (dict, list)) else str(value)


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    try:
        return f"{float(value):.3g}"
    except (TypeError, ValueError):
        return html.escape(str(value))


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>gpuconv conformance</title>
<style>
body {{ font: 14px system-ui, sans-serif; margin: 1.5em; }}
table {{ border-collapse: collapse; }} td, th {{ border: 1px solid #ccc; padding: 2px 6px; text-align: left; }}
code {{ font-size: 12px; }} .Pass {{ background: #e6f4ea; }} .QualityWarning {{ background: #fff4d6; }}
.Fail {{ background: #fde2e1; }} .NotSupported {{ background: #eee; }}
svg text {{ font-size: 10px; fill: #555; }} svg .grid {{ stroke: #ddd; }} svg .one {{ stroke: #c00; }}
svg circle.e {{ fill: #1a73e8; }} svg circle.QualityWarning {{ fill: #e8a100; }} svg circle.Fail {{ fill: #d00; }}
svg path.r {{ stroke: #777; }}
</style></head><body>
<h1>gpuconv conformance</h1>
<p>{title}</p>
<table><tr>{counts}</tr></table>
<h2>Device</h2><table>{device}</table>
<h2>Error against bound</h2>{chart}
<h2>Cases ({suite} suite, version {version})</h2>
<table><tr><th>case</th><th>group</th><th>call</th><th>category</th><th>max abs error</th>
<th>error / expected bound</th><th>error / rigorous bound</th><th>first failing element</th><th>why</th>
<th>s</th></tr>{rows}</table>
<script type="application/json" id="report">{json}</script>
</body></html>
"""

#: The verdicts that are not a pass, for callers that list them.
NOT_PASSED = (QUALITY_WARNING, FAIL, NOT_SUPPORTED)

"""``gpuconv export conformance``: one self-contained page that runs the suite in the visitor's
browser on WebGL2 and WebGPU and grades it there.

Each case is exported with :func:`gpuconv.export.build` (the ES module of its planned call,
the same programs the ops run) and embedded with its inputs (the suite's seeded arrays), the
float64 oracle's result and both per-element bounds (:mod:`.bounds`), so the page grades
exactly as :func:`gpuconv.conformance.run` does.  It shows the table as it goes, offers the
JSON report (the same keys as :meth:`Report.to_json <gpuconv.conformance.report.Report.to_json>`)
for download and sets ``window.gpuconvConformance`` to it when done.  Cases whose shapes come
from the device's limits are sized for ``max_texture_size`` (default 4096: WebGL2 guarantees
2048, nearly every device has 4096); a case whose algorithm cannot run within those limits
is in the page as NotSupported, with the planner's reason.

The page runs the suite of each target in :data:`PAGE_TARGETS`: the WebGL2 cases on a WebGL2
context, then the WebGPU target's cases (its own suite, exported with ``target="webgpu"``:
the same ES modules ``gpuconv export --target webgpu`` writes, run on one device of the
browser's adapter, chosen as the WebGPU export's page chooses it) graded by the same in-page
grading.  Without WebGPU (no ``navigator.gpu``, no adapter, not a secure context) the WebGPU
cases are NotSupported, not failures.  The report has every case (each with its ``target``),
the counts over both and, under ``targets``, one report per target (its device, counts and
cases: :meth:`Report.from_dict <gpuconv.conformance.report.Report.from_dict>` reads each).
The inputs, oracle results and bounds of cases that share them (the same call on both
targets) are embedded once; so a WebGPU limits case is sized as its WebGL2 twin, from
``max_texture_size`` (:func:`gpuconv.conformance.run` sizes it at
:data:`~gpuconv.conformance.suite.LIMIT_CAP` on WebGPU, which has no texture side: four times
the data, 21 MiB more in the full page).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import jinja2
import numpy as np

from .. import registry
from ..export import build, environment
from ..limits import DEFAULT_MAX_DRAW_BUFFERS
from ..target import WEBGL2, WEBGPU, Target
from .runner import case_arrays, case_bounds
from .suite import GROUPS, SUITE_VERSION, ConformanceCase, cases

__all__ = ["build_page", "page_for", "ConformancePage", "PAGE_TEXTURE_SIZE", "PAGE_TARGETS"]

#: The targets the page runs, in order: each one's suite.
PAGE_TARGETS: Tuple[Target, ...] = (WEBGL2, WEBGPU)

#: The largest texture side the page's limit cases are sized for (and its programs laid out for).
PAGE_TEXTURE_SIZE = 4096

_TEMPLATE = Path(__file__).resolve().parent / "page.html.j2"


@dataclass
class ConformancePage:
    """The page's text, how many cases it embeds, and the cases it could not export (with why)."""

    text: str
    suite: str
    cases: int
    skipped: List[Tuple[str, str]] = field(default_factory=list)
    #: the cases embedded per target name
    targets: Dict[str, int] = field(default_factory=dict)

    @property
    def size(self) -> int:
        return len(self.text.encode("utf-8"))

    def summary(self) -> str:
        skipped = f", {len(self.skipped)} not exportable" if self.skipped else ""
        per_target = " + ".join(f"{n} {_TARGET_NAMES.get(t, t)}" for t, n in self.targets.items())
        return (f"conformance page ({self.suite} suite v{SUITE_VERSION}): {self.cases} cases"
                f"{f' ({per_target})' if per_target else ''}{skipped}, {self.size / 2 ** 20:.1f} MiB; runs on "
                f"{' and '.join(_TARGET_NAMES.get(t, t) for t in self.targets) or 'WebGL2'} in the visitor's "
                f"browser")


_TARGET_NAMES = {"webgl2": "WebGL2", "webgpu": "WebGPU"}


class _Blobs:
    """The page's arrays as base64, each distinct one once: a case names them by index."""

    def __init__(self) -> None:
        self.items: List[str] = []
        self._index: Dict[str, int] = {}

    def add(self, values: np.ndarray, dtype: str) -> int:
        text = base64.b64encode(np.ascontiguousarray(values, dtype=dtype).tobytes()).decode("ascii")
        if text not in self._index:
            self._index[text] = len(self.items)
            self.items.append(text)
        return self._index[text]


def _export_case(case: ConformanceCase, target: Target, seed: int, max_texture_size: int, max_draw_buffers: int,
                 blobs: _Blobs) -> Dict[str, Any]:
    args, kwargs = case_arrays(case, seed)
    entry = registry.get(case.op)
    values = dict(zip(entry.leading, args))
    shapes = {name: (tuple(v) if name == entry.shape_argument else tuple(np.shape(v))) for name, v in values.items()}
    positional, extra = registry.shape_call(case.op, shapes)
    options = {k: v for k, v in kwargs.items() if k not in ("bias", "prelu_weights")}
    fused = {k: kwargs[k] for k in ("bias", "prelu_weights") if k in kwargs}
    if target is WEBGL2:
        limits: Dict[str, Any] = {"max_texture_size": max_texture_size, "max_draw_buffers": max_draw_buffers,
                                  "storage": case.storage}
    elif case.storage != "float32":  # the WebGPU module export keeps float32 in its buffers
        raise NotImplementedError(f"the {target.name} module export has no {case.storage} storage")
    else:
        limits = {"target": target.name}
    exported = build(case.op, positional[0], positional[1], *positional[2:], format="js",
                     **limits, **options, **fused, **extra)
    arrays: Dict[str, np.ndarray] = {name: np.asarray(v) for name, v in values.items() if name != entry.shape_argument}
    arrays.update({k: np.asarray(v) for k, v in fused.items()})
    names = [n for n in exported.shapes if n != "output"]
    if set(names) - set(arrays):  # pragma: no cover - the module names its inputs as the op does
        raise NotImplementedError(f"the module's inputs {names} are not the call's {sorted(arrays)}")
    bounds = case_bounds(case, args, kwargs)
    same_centre = bounds.model == "float32"
    return {**_about(case, target), "module": exported.text, "requirements": exported.requirements,
            "inputs": {n: blobs.add(arrays[n], "<f4") for n in names},
            "shape": list(bounds.reference.shape),
            "reference": blobs.add(bounds.reference, "<f8"),
            "centre": None if same_centre else blobs.add(bounds.centre, "<f8"),
            "expected": blobs.add(bounds.expected, "<f8"), "rigorous": blobs.add(bounds.rigorous, "<f8")}


def _about(case: ConformanceCase, target: Target) -> Dict[str, Any]:
    return {"name": case.name, "target": target.name, "group": case.group, "op": case.op, "call": case.describe(),
            "algorithm": case.algorithm, "storage": case.storage, "values": case.values}


def build_page(suite: str = "quick", seed: int = 0, max_texture_size: Optional[int] = None,
               max_draw_buffers: Optional[int] = None) -> ConformancePage:
    """The page running ``suite`` ("quick" or "full") of each target of :data:`PAGE_TARGETS`
    (module docstring)."""
    return page_for(PAGE_TARGETS, suite, seed, max_texture_size, max_draw_buffers)


def page_for(targets: Sequence[Target], suite: str = "quick", seed: int = 0, max_texture_size: Optional[int] = None,
             max_draw_buffers: Optional[int] = None) -> ConformancePage:
    """:func:`build_page` for these targets only (each one's suite, in this order)."""
    from ..version import __version__

    size = int(max_texture_size or PAGE_TEXTURE_SIZE)
    buffers = int(max_draw_buffers or DEFAULT_MAX_DRAW_BUFFERS)
    embedded: List[Dict[str, Any]] = []
    skipped: List[Tuple[str, str]] = []
    blobs = _Blobs()
    totals: Dict[str, int] = {}
    per_target: Dict[str, int] = {}
    for target in targets:
        chosen = cases(suite, target)
        totals[target.name] = len(chosen)
        per_target[target.name] = 0
        for case in chosen:
            # a limits case on either target: the page's texture side (its arrays shared by both)
            resolved = case.resolved(size)
            try:
                embedded.append(_export_case(resolved, target, seed, size, buffers, blobs))
            except ValueError as exc:  # the call does not fit the limits generated for: NotSupported there
                embedded.append({**_about(resolved, target), "unsupported": f"{type(exc).__name__}: {exc}"[:300]})
            except NotImplementedError as exc:
                skipped.append((f"{target.name}: {case.name}", f"{type(exc).__name__}: {exc}"[:300]))
                continue
            per_target[target.name] += 1
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(_TEMPLATE.parent)), autoescape=False,
                             undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    data = {"suite": {"name": suite, "version": SUITE_VERSION, "total_cases": sum(totals.values())},
            "targets": [{"name": t.name, "title": _TARGET_NAMES.get(t.name, t.name), "total_cases": totals[t.name]}
                        for t in targets],
            "gpuconv": __version__, "seed": seed, "groups": GROUPS,
            "skipped": [{"name": n, "message": m} for n, m in skipped], "cases": embedded, "blobs": blobs.items}
    text = json.dumps(data, allow_nan=False).replace("</", "<\\/")
    adapter = environment().get_template("webgpu_adapter.js.j2").render()
    titles = " and ".join(_TARGET_NAMES.get(t.name, t.name) for t in targets)
    page = env.get_template(_TEMPLATE.name).render(data=text, suite=suite, version=SUITE_VERSION,
                                                   count=len(embedded), gpuconv=__version__, adapter=adapter,
                                                   targets=titles)
    return ConformancePage(page, suite, len(embedded), skipped, per_target)

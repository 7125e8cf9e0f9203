"""``gpuconv export conformance``: one self-contained page that runs the suite in the visitor's
browser on WebGL2 and grades it there.

Each case is exported with :func:`gpuconv.export.build` (the ES module of its planned call,
the same programs the ops run) and embedded with its inputs (the suite's seeded arrays), the
float64 oracle's result and both per-element bounds (:mod:`.bounds`), so the page grades
exactly as :func:`gpuconv.conformance.run` does.  It shows the table as it goes, offers the
JSON report (the same keys as :meth:`Report.to_json <gpuconv.conformance.report.Report.to_json>`)
for download and sets ``window.gpuconvConformance`` to it when done.  Cases whose shapes come
from the device's limits are sized for ``max_texture_size`` (default 4096: WebGL2 guarantees
2048, nearly every device has 4096); a case whose algorithm cannot run within those limits
is in the page as NotSupported, with the planner's reason.  The page runs the WebGL2 suite; the WebGPU target's
module export is not part of it yet.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import jinja2
import numpy as np

from .. import registry
from ..export import build
from ..limits import DEFAULT_MAX_DRAW_BUFFERS
from ..target import WEBGL2
from .runner import case_arrays, case_bounds
from .suite import GROUPS, SUITE_VERSION, ConformanceCase, cases

__all__ = ["build_page", "ConformancePage", "PAGE_TEXTURE_SIZE"]

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

    @property
    def size(self) -> int:
        return len(self.text.encode("utf-8"))

    def summary(self) -> str:
        skipped = f", {len(self.skipped)} not exportable" if self.skipped else ""
        return (f"conformance page ({self.suite} suite v{SUITE_VERSION}): {self.cases} cases{skipped}, "
                f"{self.size / 2 ** 20:.1f} MiB; runs on WebGL2 in the visitor's browser")


def _b64(values: np.ndarray, dtype: str) -> str:
    return base64.b64encode(np.ascontiguousarray(values, dtype=dtype).tobytes()).decode("ascii")


def _export_case(case: ConformanceCase, seed: int, max_texture_size: int, max_draw_buffers: int) -> Dict[str, Any]:
    args, kwargs = case_arrays(case, seed)
    entry = registry.get(case.op)
    values = dict(zip(entry.leading, args))
    shapes = {name: (tuple(v) if name == entry.shape_argument else tuple(np.shape(v))) for name, v in values.items()}
    positional, extra = registry.shape_call(case.op, shapes)
    options = {k: v for k, v in kwargs.items() if k not in ("bias", "prelu_weights")}
    fused = {k: kwargs[k] for k in ("bias", "prelu_weights") if k in kwargs}
    exported = build(case.op, positional[0], positional[1], *positional[2:], format="js",
                     max_texture_size=max_texture_size, max_draw_buffers=max_draw_buffers, storage=case.storage,
                     **options, **fused, **extra)
    arrays: Dict[str, np.ndarray] = {name: np.asarray(v) for name, v in values.items() if name != entry.shape_argument}
    arrays.update({k: np.asarray(v) for k, v in fused.items()})
    names = [n for n in exported.shapes if n != "output"]
    if set(names) - set(arrays):  # pragma: no cover - the module names its inputs as the op does
        raise NotImplementedError(f"the module's inputs {names} are not the call's {sorted(arrays)}")
    bounds = case_bounds(case, args, kwargs)
    same_centre = bounds.model == "float32"
    return {"name": case.name, "group": case.group, "op": case.op, "call": case.describe(),
            "algorithm": case.algorithm, "storage": case.storage, "values": case.values,
            "module": exported.text, "requirements": exported.requirements,
            "inputs": {n: _b64(arrays[n], "<f4") for n in names},
            "shape": list(bounds.reference.shape),
            "reference": _b64(bounds.reference, "<f8"),
            "centre": None if same_centre else _b64(bounds.centre, "<f8"),
            "expected": _b64(bounds.expected, "<f8"), "rigorous": _b64(bounds.rigorous, "<f8")}


def build_page(suite: str = "quick", seed: int = 0, max_texture_size: Optional[int] = None,
               max_draw_buffers: Optional[int] = None) -> ConformancePage:
    """The page running ``suite`` ("quick" or "full") of the WebGL2 target (module docstring)."""
    from .. import __version__

    size = int(max_texture_size or PAGE_TEXTURE_SIZE)
    buffers = int(max_draw_buffers or DEFAULT_MAX_DRAW_BUFFERS)
    embedded, skipped = [], []
    chosen = cases(suite, WEBGL2)
    for case in chosen:
        resolved = case.resolved(size)
        try:
            embedded.append(_export_case(resolved, seed, size, buffers))
        except ValueError as exc:  # the call does not fit the limits generated for: NotSupported there
            embedded.append({"name": case.name, "group": case.group, "op": case.op, "call": resolved.describe(),
                             "algorithm": case.algorithm, "storage": case.storage, "values": case.values,
                             "unsupported": f"{type(exc).__name__}: {exc}"[:300]})
        except NotImplementedError as exc:
            skipped.append((case.name, f"{type(exc).__name__}: {exc}"[:300]))
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(_TEMPLATE.parent)), autoescape=False,
                             undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    data = {"suite": {"name": suite, "version": SUITE_VERSION, "total_cases": len(chosen)},
            "gpuconv": __version__, "seed": seed, "groups": GROUPS,
            "skipped": [{"name": n, "message": m} for n, m in skipped], "cases": embedded}
    text = json.dumps(data, allow_nan=False).replace("</", "<\\/")
    page = env.get_template(_TEMPLATE.name).render(data=text, suite=suite, version=SUITE_VERSION,
                                                   count=len(embedded), gpuconv=__version__)
    return ConformancePage(page, suite, len(embedded), skipped)

"""A conformance run for any GPU: can this device (GPU, driver, browser) be trusted with these
convolutions?

The suite (:mod:`.suite`) is data: every op and algorithm of the runtime's target over the
selftest's configurations, every fused epilogue, and the cases that break real hardware
(textures at the device's limits, long narrow textures, long reductions, values near
float16's range, signed zeros, denormals, NaN and infinity, half-float storage).  Each
output is held against two bounds derived from the data (:mod:`.bounds`): within the
expected bound it is a Pass, within the rigorous bound a QualityWarning, beyond it (or
NaN/inf where the oracle has none) a Fail; what the device lacks is NotSupported.

    report = gpuconv.conformance.run(runtime=None, suite="full", shard=None)   # or suite="quick"
    report.counts      # {'Pass': ..., 'QualityWarning': ..., 'Fail': ..., 'NotSupported': ...}
    report.to_json(); report.to_html()

``gpuconv conformance`` is the command; ``gpuconv export conformance`` writes a page that runs
the suite in the visitor's browser (:mod:`.page`).
"""

from __future__ import annotations

from .bounds import FAIL, NOT_SUPPORTED, PASS, QUALITY_WARNING, VERDICTS, Bounds, Grade, grade
from .perturb import PerturbedRuntime
from .report import CaseResult, Report
from .runner import case_arrays, case_bounds, device_facts, run, run_case
from .suite import GROUPS, SUITE_VERSION, SUITES, VALUES, ConformanceCase, cases, parse_shard, shard

__all__ = ["run", "run_case", "Report", "CaseResult", "ConformanceCase", "cases", "shard", "parse_shard",
           "SUITE_VERSION", "SUITES", "GROUPS", "VALUES", "VERDICTS", "PASS", "QUALITY_WARNING", "FAIL",
           "NOT_SUPPORTED", "Bounds", "Grade", "grade", "case_arrays", "case_bounds", "device_facts",
           "PerturbedRuntime"]

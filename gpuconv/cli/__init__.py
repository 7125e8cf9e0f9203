"""The ``gpuconv`` command: parse the command line and dispatch to gpuconv.

Subcommands (each has ``--help`` with an example to copy), one module each (or per family):

* ``gpuconv shader OP --input 1x7x7x6 --filter 3x3x6x4 ...``: print the generated GLSL
  (``--target webgpu``: the WGSL compute program the WebGPU target runs) (:mod:`.shader`);
* ``gpuconv warmup OP ...``: compile an op's programs ahead of the first call (:mod:`.warmup`);
* ``gpuconv run OP --input x.npy --filter w.npy ... [--check]``: run an op on .npy files (:mod:`.run`);
* ``gpuconv selftest [--quick]``: a fixed matrix of convolutions, GPU against the oracle;
  ``gpuconv random --count N``: seeded random configurations, GPU against the oracle;
  ``gpuconv demo``: one real convolution, timed and checked (:mod:`.selftest`);
* ``gpuconv conformance``: the conformance suite, graded (:mod:`.conformance`);
* ``gpuconv precision OP ...``: a layer's error in float32 and float16 storage (:mod:`.precision`);
* ``gpuconv info``: the GL device and the versions in use (:mod:`.info`);
* ``gpuconv export OP --input ... --format js|html``: the programs as a JavaScript module or a web page
  (:mod:`.export`).

:mod:`.parser` builds the parser from the command modules, :mod:`.dispatch` runs it (:func:`main`);
the options they share are in :mod:`.options` (parsed, added and turned into an op's arguments from
:mod:`gpuconv.registry`), the runtime in :mod:`.backend` (``--backend native|browser|webgpu``, ``--gl``,
``--api webgl2|webgpu`` for the browser, through :func:`gpuconv.runtimes.make_runtime`), the rest in
:mod:`.common`.  The cases and runners of selftest, random and demo are :mod:`gpuconv.checks`.

Exit codes: 0 success, 1 a result outside the tolerance (or invalid GLSL), 2 bad
arguments, 3 no usable OpenGL (or browser, WebGPU adapter, or GLSL/WGSL validator), 4 an unexpected error
(``--debug`` adds the traceback of any error).
"""

from .dispatch import main
from .parser import build_parser

__all__ = ["build_parser", "main"]

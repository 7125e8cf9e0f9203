"""``gpuconv warmup``: compile the programs an op runs for some shapes, ahead of the first call."""

from __future__ import annotations

import time

from .. import checks
from ..precompile import precompile
from ..programs import shape_text
from ..target import WEBGL2
from .backend import open_runtime
from .common import EXIT_OK, AddCommand, Args, ms
from .options import add_runtime_options, add_shape_arguments, algorithm_kwargs, shape_call


def add_warmup_command(add: AddCommand) -> None:
    p = add("warmup", "compile the programs an op runs for these shapes, ahead of the first call",
            "Compile (and draw once: llvmpipe compiles a program at its first draw) every program OP "
            "runs for these shapes, on the runtime --backend names, and say how long it took. The "
            "packed programs serve every shape of their family, so one warm-up covers them all; "
            "the direct ones are compiled per shape. In Python: gpuconv.precompile(...).",
            "gpuconv warmup conv2d --input 1x64x64x16 --filter 3x3x16x32 --padding same", cmd_warmup)
    add_shape_arguments(p)
    add_runtime_options(p)


def cmd_warmup(args: Args) -> int:
    algorithm = algorithm_kwargs(args, "auto")
    with open_runtime(args) as runtime:
        # the plan that counts the output channels is WebGL2's: its texture limits, where it has them
        limits = ({"max_texture_size": runtime.max_texture_size, "max_draw_buffers": runtime.max_draw_buffers}
                  if runtime.target is WEBGL2 else {})
        positional, kwargs = shape_call(args, limits)
        start = time.perf_counter()
        compiled = precompile(args.op, positional[0], positional[1], *positional[2:], runtime=runtime,
                              **{**kwargs, **algorithm})
        seconds = time.perf_counter() - start
        renderer = checks.device_name(runtime)
        parallel = getattr(runtime, "last_compile_parallel", None)
    shapes = " * ".join(shape_text(v) for v in positional)
    how = {None: "", True: " (linked together, KHR_parallel_shader_compile)",
           False: " (linked together, each waited for: no KHR_parallel_shader_compile)"}[parallel]
    print(f"warmup: {args.op} {shapes}: {compiled} program(s) compiled in {ms(seconds)} on {renderer}{how}")
    return EXIT_OK

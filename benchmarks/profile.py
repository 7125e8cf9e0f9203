"""What bounds the packed programs on this GL device: an ablation profile.

GPU profilers don't see inside llvmpipe's JIT-compiled shaders, so this measures
by subtraction: it renders the real packed program for each layer, then variants
whose texture fetches are replaced by cheap values computed from the same
coordinates (so no loop or multiply-add is optimised away), and times each draw:

* ``full``: the program as it runs;
* ``no W fetch``: weight texels computed instead of fetched;
* ``no x fetch``: input texels computed instead of fetched;
* ``no fetch``: both: what the arithmetic and loop control alone cost.

The share of time that disappears with a fetch is what that fetch costs.

Usage::

    python benchmarks/profile.py [--repeat 7]
"""

from __future__ import annotations

import argparse
import re
import sys
import time

import numpy as np

import gpuconv
from gpuconv import codegen
from gpuconv.ops import plan_conv2d

LAYERS = [
    ("conv3x3", (1, 64, 64, 16), (3, 3, 16, 32), dict(padding="SAME"), False),
    ("conv3x3 batch", (4, 32, 32, 64), (3, 3, 64, 64), dict(padding="SAME"), False),
    ("conv1x1", (1, 56, 56, 128), (1, 1, 128, 128), dict(padding="VALID"), False),
    ("dw3x3", (1, 112, 112, 32), (3, 3, 32, 1), dict(padding="SAME"), True),
]


def without_fetches(source: str, samplers) -> str:
    """``source`` with every read of ``samplers`` computed instead of fetched.

    Handles ``texelFetch(S, ivec2(col, row), 0)`` and the texel-centre
    ``texture(S, (vec2(col, row) + 0.5) * size)`` of the packed conv2d program.
    """
    names = "|".join(samplers)
    # Distinct, coordinate-dependent components keep a mat4 full (a constant or a
    # diagonal matrix would let the compiler drop most multiply-adds).
    fake = r"(vec4(vec2(ivec2(\2)), 1.0, 2.0) * 1e-9)"
    source = re.sub(r"texelFetch\((%s), ivec2\(([^;]*?)\), 0\)" % names, fake, source)
    return re.sub(r"texture\((%s), \(vec2\(([^;]*?)\) \+ 0\.5\) \* \w+\)" % names, fake, source)


def time_draw(runtime, program, vao, spec, textures, repeat: int) -> float:
    ctx = runtime.ctx
    for name, value in spec.uniforms.items():
        if name in program:
            program[name].value = value
    for unit, name in enumerate(spec.variable_names):
        if name in program:
            program[name].value = unit
        textures[name].use(location=unit)
    layout = spec.output_layouts[0]
    outputs = [ctx.texture((o.cols, o.rows), o.components, dtype="f4") for o in spec.output_layouts]
    fbo = ctx.framebuffer(color_attachments=outputs)
    fbo.use()
    ctx.viewport = (0, 0, layout.cols, layout.rows)
    times = []
    for _ in range(repeat + 1):
        ctx.finish()
        start = time.perf_counter()
        vao.render(mode=ctx.TRIANGLE_STRIP)
        ctx.finish()
        times.append(time.perf_counter() - start)
    fbo.release()
    for texture in outputs:
        texture.release()
    return min(times[1:])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     epilog="example: python benchmarks/profile.py --repeat 7")
    parser.add_argument("--repeat", type=int, default=5, help="timed draws per variant (the best counts)")
    args = parser.parse_args(argv)
    runtime = gpuconv.get_runtime()
    ctx = runtime.ctx
    print(f"packed programs on {runtime.info()['renderer']}: draw time of ablated variants (best of {args.repeat})")
    header = f"{'layer':14s} {'full':>14s} {'no W fetch':>18s} {'no x fetch':>18s} {'no fetch':>18s}"
    print(header)
    rng = np.random.default_rng(0)
    for name, x_shape, w_shape, kwargs, depthwise in LAYERS:
        x = rng.uniform(-1, 1, x_shape).astype(np.float32)
        w = rng.uniform(-1, 1, w_shape).astype(np.float32)
        spec, arrays = plan_conv2d(x, w, depthwise=depthwise, algorithm="packed", **kwargs).steps[0]
        textures = {item.name: runtime.upload(arrays[item.name], item.layout) for item in spec.inputs}
        source = codegen.fragment_source(spec)
        variants = {"full": source, "no W fetch": without_fetches(source, ["W"]),
                    "no x fetch": without_fetches(source, ["x"]), "no fetch": without_fetches(source, ["W", "x"])}
        flops = 2 * spec.geometry.multiply_adds
        cells = []
        for label, text in variants.items():
            program = ctx.program(vertex_shader=codegen.vertex_source(), fragment_shader=text)
            vao = ctx.vertex_array(program, [(runtime._quad, "2f", "clipSpacePos")])
            seconds = time_draw(runtime, program, vao, spec, textures, args.repeat)
            vao.release()
            program.release()
            if label == "full":
                full = seconds
                cells.append(f"{seconds * 1e3:6.2f} ms {flops / seconds / 1e9:4.1f} GF/s")
            else:
                cells.append(f"{seconds * 1e3:6.2f} ms ({100 * (seconds / full - 1):+4.0f}%)")
        print(f"{name:14s} " + " ".join(f"{c:>18s}" for c in cells))
        for texture in textures.values():
            texture.release()
    return 0


if __name__ == "__main__":
    sys.exit(main())

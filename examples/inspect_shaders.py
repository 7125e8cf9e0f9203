"""The four remainder cases of Conv2D's vec4 depth loop, side by side.

TF.js's Conv2DProgram reads the input depth four channels at a time (two ``vec4``
fetches and one ``dot()`` per step) and handles the ``in_channels % 4`` leftover
channels after the loop with exactly one of three branches, picked when the source is
generated: a scalar multiply-add (1 left), a ``vec2`` dot (2) or a ``vec3`` dot (3);
a multiple of four has none.  This example generates the conv2d program for input
depths 4, 5, 6 and 7 (``x`` 1x7x7xD, filter 3x3xDx4, VALID) with
``gpuconv.shader_source`` (whose default is this direct, TF.js-style program; the
ops' default ``algorithm="auto"`` runs a packed program instead where it applies) --
no GL needed for that -- writes each to
``conv_d{D}.glsl``, writes ``conv_d4-7.diff`` (each program against the depth-4 one,
unified diffs) and runs each program once on the GPU (``algorithm="direct"``) against the float64 oracle.

Run it::

    .venv/bin/python examples/inspect_shaders.py --output out/shaders

The command-line equivalent of one file (with ``--annotate``, a ``//`` header naming
the shapes, textures, pads and the depth split is added after the ``#version`` line)::

    gpuconv shader conv2d --input 1x7x7x5 --filter 3x3x5x4 --annotate --output conv_d5.glsl

Exit status: 0 when every program agrees with the oracle to --tolerance, 1 otherwise.
"""

from __future__ import annotations

import argparse
import difflib
import os
import re
import sys
import textwrap

import numpy as np

import gpuconv

DEPTHS = (4, 5, 6, 7)
BRANCHES = {
    0: "none (depth is a multiple of 4: the vec4 loop covers it)",
    1: "1 leftover channel: a scalar multiply-add",
    2: "2 leftover channels: a vec2 dot()",
    3: "3 leftover channels: a vec3 dot()",
}


def shapes(depth: int, size: int, out_channels: int):
    return (1, size, size, depth), (3, 3, depth, out_channels)


def remainder_lines(source: str):
    """The lines of ``source`` that make up the leftover-channel branch (after the vec4 loop)."""
    lines = source.splitlines()
    for i, line in enumerate(lines):
        if re.search(r"//\s*\d+\s+leftover input channel", line):
            end = i + 1
            while end < len(lines) and "dotProd +=" not in lines[end - 1]:
                end += 1
            return lines[i:end]
    return []



def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description="Write the conv2d programs for input depths 4, 5, 6 and 7 and their diffs, "
                    "to compare the remainder branches of the vec4 depth loop; run each once "
                    "against the float64 oracle.")
    parser.add_argument("--size", type=int, default=7, metavar="N", help="input height and width (default 7)")
    parser.add_argument("--out-channels", type=int, default=4, metavar="N", help="filter output channels (default 4)")
    parser.add_argument("--small", action="store_true", help="the defaults (they are already small)")
    parser.add_argument("--no-run", action="store_true", help="only write the sources (no GL needed)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default="out", metavar="DIR",
                        help="where to write conv_d4.glsl ... conv_d7.glsl and conv_d4-7.diff (default ./out)")
    parser.add_argument("--tolerance", type=float, default=1e-5,
                        help="largest accepted error relative to the output's largest magnitude")
    args = parser.parse_args(argv)
    if args.size < 3 or args.out_channels < 1:
        parser.error("--size must be at least 3 and --out-channels positive")

    os.makedirs(args.output, exist_ok=True)
    sources = {}
    print(f"inspect_shaders: conv2d programs for x 1x{args.size}x{args.size}xD, filter 3x3xDx{args.out_channels}, "
          f"VALID, D = {', '.join(map(str, DEPTHS))}")
    for depth in DEPTHS:
        x_shape, w_shape = shapes(depth, args.size, args.out_channels)
        source = gpuconv.shader_source("conv2d", x_shape, w_shape, padding="VALID")
        sources[depth] = source
        path = os.path.join(args.output, f"conv_d{depth}.glsl")
        with open(path, "w", encoding="utf-8") as f:
            f.write(source)
        vec4_part, remainder = depth - depth % 4, depth % 4
        found = remainder_lines(source)
        print(f"  D={depth}: {path} ({len(source.splitlines())} lines): vec4 loop over channels "
              f"0..{vec4_part - 1}, remainder branch: {BRANCHES[remainder]}")
        if found:
            print(textwrap.indent(textwrap.dedent("\n".join(line for line in found if line.strip())), " " * 9))

    diff_path = os.path.join(args.output, "conv_d4-7.diff")
    with open(diff_path, "w", encoding="utf-8") as f:
        for depth in DEPTHS[1:]:
            f.writelines(difflib.unified_diff(
                sources[DEPTHS[0]].splitlines(keepends=True), sources[depth].splitlines(keepends=True),
                fromfile=f"conv_d{DEPTHS[0]}.glsl", tofile=f"conv_d{depth}.glsl", n=2))
    print(f"  diffs: {diff_path} (each program against conv_d{DEPTHS[0]}.glsl)")
    print(f"  the same from the command line, with a '//' header of the parameters:\n"
          f"    gpuconv shader conv2d --input 1x{args.size}x{args.size}x5 --filter 3x3x5x{args.out_channels} "
          f"--annotate --output conv_d5.glsl")

    if args.no_run:
        print("not run on the GPU (--no-run)")
        return 0
    rng = np.random.default_rng(args.seed)
    ok = True
    for depth in DEPTHS:
        x_shape, w_shape = shapes(depth, args.size, args.out_channels)
        x = rng.uniform(-1, 1, x_shape).astype(np.float32)
        w = rng.uniform(-1, 1, w_shape).astype(np.float32)
        # algorithm="direct": run the TF.js-style program written above (gpuconv's default,
        # "auto", would pick the packed program, whose source is the same for every shape).
        y = gpuconv.conv2d(x, w, padding="VALID", algorithm="direct")
        error = gpuconv.oracle.relative_error(y, gpuconv.oracle.conv2d(x, w, padding="VALID"))
        ok = ok and error <= args.tolerance
        print(f"  D={depth}: GPU vs float64 oracle {error:.2e} relative "
              f"({'ok' if error <= args.tolerance else 'FAIL'}, tolerance {args.tolerance:g})")
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

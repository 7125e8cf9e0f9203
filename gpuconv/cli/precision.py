"""``gpuconv precision``: one layer's error in float32 and in float16 storage on each runtime."""

from __future__ import annotations

import argparse
import os
from typing import Any, Dict, List, Tuple

import numpy as np

from .. import precision
from ..precision import DEFAULT_PRECISION_TOLERANCE
from ..programs import shape_text
from ..registry import OPS
from ..runtimes import RUNTIME_KINDS, GLUnavailableError, make_runtime
from .common import EXIT_FAILED, EXIT_OK, AddCommand, Args, UsageError, load_npy, ops_with
from .options import (
    OPS_HELP,
    add_conv_options,
    add_leading_options,
    algorithm_kwargs,
    check_fused_options,
    conv_kwargs,
    leading_values,
    lower,
    parse_shape,
    positive_float,
)


def add_precision_command(add: AddCommand) -> None:
    p = add("precision", "will a layer survive phones? its error in float32 and in float16 storage",
            "Run one configuration of OP with float32 storage and with float16 storage (R16F/RGBA16F "
            "textures, as TF.js stores tensors on phones without float32 render targets; on WebGPU, halves "
            "two to a 32-bit word) on the native runtime and in the browser's WebGL2 and on WebGPU (wgpu-py), "
            "and print for each the largest error against the float64 "
            "oracle, absolute and relative to the output's largest magnitude, float16's error bound "
            "(gpuconv.oracle.float16_error_bound) and the distance from the oracle's float16 prediction, "
            "with a verdict per storage against --tolerance (relative; default "
            f"{DEFAULT_PRECISION_TOLERANCE:g}). Values beyond float16's range (65504) in an input, filter, "
            "intermediate or the output are reported. Each array option takes a .npy file or a shape "
            "(1x64x64x16: seeded uniform values in [-1, 1], times --scale). Without --backend all three runtimes "
            "run, and a missing Chromium or WebGPU adapter is a note; --backend browser without one exits 3. "
            "Exits 1 if a "
            "verdict is FAIL.",
            "gpuconv precision conv2d --input 1x64x64x16 --filter 3x3x16x32 --padding same", cmd_precision)
    p.add_argument("op", choices=list(OPS), metavar="OP", help=f"one of: {OPS_HELP}")
    add_leading_options(p, "FILE.npy|SHAPE")
    add_conv_options(p)
    p.add_argument("--bias", metavar="B.npy|SHAPE", help=f"fused bias ({ops_with('fused')})")
    p.add_argument("--prelu-weights", metavar="P.npy|SHAPE", help="weights for --activation prelu")
    p.add_argument("--seed", type=int, default=0, help="seed of the random arrays given as shapes (default 0)")
    p.add_argument("--scale", type=positive_float, default=1.0, metavar="S",
                   help="multiply the random arrays by S (default 1: uniform in [-1, 1])")
    p.add_argument("--tolerance", type=positive_float, default=DEFAULT_PRECISION_TOLERANCE, metavar="T",
                   help=f"largest relative error a storage may have to pass (default {DEFAULT_PRECISION_TOLERANCE:g})")
    g = p.add_argument_group("runtime")
    g.add_argument("--backend", type=lower, choices=RUNTIME_KINDS, default=None,
                   help="measure on this runtime only (default: native, and the browser where Chromium is; "
                        "webgpu: float32 only, its buffers have no float16 storage yet)")


def cmd_precision(args: Args) -> int:
    entry = OPS[args.op]
    conv = conv_kwargs(args)
    check_fused_options(args)
    algorithm = algorithm_kwargs(args, "auto")
    rng = np.random.default_rng(args.seed)

    def load(value: str, option: str) -> np.ndarray:
        """A .npy file, or a shape: seeded uniform values in [-1, 1] times --scale."""
        if os.path.exists(value) or value.lower().endswith(".npy"):
            return load_npy(value, option)
        try:
            shape = parse_shape(value)
        except (ValueError, argparse.ArgumentTypeError) as exc:
            raise UsageError(f"{option}: {value!r} is neither a .npy file nor a shape like 1x64x64x16") from exc
        return (rng.uniform(-1, 1, size=shape) * args.scale).astype(np.float32)

    values = leading_values(args, load)
    arrays = entry.positional(values)
    fused: Dict[str, Any] = {}
    if entry.fused:
        fused = dict(activation=args.activation, leakyrelu_alpha=args.leakyrelu_alpha)
        if args.bias is not None:
            fused["bias"] = load(args.bias, "--bias")
        if args.prelu_weights is not None:
            fused["prelu_weights"] = load(args.prelu_weights, "--prelu-weights")
    given = ", ".join(f"{name} {shape_text(values[name] if name == entry.shape_argument else values[name].shape)}"
                      for name in entry.leading)
    options = " ".join(f"{key}={value}" for key, value in {**conv, **algorithm}.items()
                       if value not in (None, 1, "VALID") and key != "data_format" or
                       (key == "data_format" and value != entry.data_formats[0]))
    kinds = [args.backend] if args.backend else ["native", "browser", "webgpu"]
    runtimes: List[Tuple[str, Any]] = []
    try:
        for kind in kinds:
            try:
                runtimes.append((kind, make_runtime(kind)))
            except (GLUnavailableError, ImportError) as exc:
                if args.backend:  # asked for explicitly: no runtime is an error (exit 3)
                    raise GLUnavailableError(f"gpuconv precision --backend {kind}: {exc}") from exc
                runtimes.append((kind, f"no {kind} runtime ({str(exc).split(';')[0][:100]})"))
        result = precision.measure(args.op, entry.gpu, arrays, {**conv, **fused}, runtimes,
                                   call=f"{given}{'; ' + options if options else ''}", gpu_kwargs=algorithm)
    finally:
        for _, runtime in runtimes:
            if not isinstance(runtime, str):
                runtime.release()
    print("\n".join(precision.report(result, args.tolerance)))
    return EXIT_OK if precision.passed(result, args.tolerance) else EXIT_FAILED

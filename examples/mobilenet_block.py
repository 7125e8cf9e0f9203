"""A MobileNet depthwise-separable block on the GPU, batch norm folded into the filters.

MobileNet (v1) repeats one block::

    depthwise 3x3 -> batch norm -> relu6 -> pointwise 1x1 -> batch norm -> relu6

At inference a batch norm is an affine map per channel, ``gamma * (y - mean) /
sqrt(var + eps) + beta``, so it folds into the convolution before it: multiply the
filter's output channel ``k`` by ``scale[k] = gamma[k] / sqrt(var[k] + eps)`` and add a
bias ``beta[k] - mean[k] * scale[k]``.  gpuconv then runs each half as ONE program with
the bias and relu6 fused (TF.js's ``fused.depthwiseConv2d`` / ``fused.conv2d``)::

    gpuconv.depthwise_conv2d(x, folded_dw, padding="SAME", bias=b1, activation="relu6")
    gpuconv.conv2d(h, folded_pw, bias=b2, activation="relu6")

``--algorithm direct`` runs TF.js's one-output-per-fragment programs instead of the
packed ones that the default ``auto`` picks, to compare their times.  ``--backend webgpu``
runs the block on the WebGPU target instead (WGSL compute programs through wgpu-py: the vec4
depthwise program and the register-blocked conv2d), the same ops and the same oracle check.

The oracle computes the block unfused in float64 -- convolution, then batch norm with
the original gamma/beta/mean/var, then relu6, twice -- so the folding is checked too.
The weights are seeded random numbers (no trained model is downloaded).

Run it::

    .venv/bin/python examples/mobilenet_block.py            # 1x112x112x32 -> 64 channels
    .venv/bin/python examples/mobilenet_block.py --small    # 1x28x28x8 -> 16 channels
    .venv/bin/python examples/mobilenet_block.py --algorithm direct
    .venv/bin/python examples/mobilenet_block.py --backend webgpu

Exit status: 0 when the GPU agrees with the oracle to --tolerance (relative to the
output's largest magnitude), 1 when it does not.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

import numpy as np

import gpuconv

BN_EPSILON = 1e-3  # Keras's BatchNormalization default, as in MobileNet


def batch_norm_params(rng, channels: int) -> dict:
    """Seeded inference-time batch-norm parameters for ``channels`` channels."""
    return {
        "gamma": rng.uniform(0.5, 1.5, channels),
        "beta": rng.uniform(-0.5, 0.5, channels),
        "mean": rng.normal(0.0, 0.2, channels),
        "var": rng.uniform(0.5, 2.0, channels),
    }


def make_block(rng, in_channels: int, out_channels: int, multiplier: int = 1) -> dict:
    """Seeded weights: depthwise ``[3, 3, C, m]``, pointwise ``[1, 1, C*m, out]``, two batch norms."""
    mid = in_channels * multiplier
    return {
        "depthwise": rng.normal(0.0, np.sqrt(2.0 / 9.0), (3, 3, in_channels, multiplier)),
        "bn1": batch_norm_params(rng, mid),
        "pointwise": rng.normal(0.0, np.sqrt(2.0 / mid), (1, 1, mid, out_channels)),
        "bn2": batch_norm_params(rng, out_channels),
    }


def fold_batch_norm(filter: np.ndarray, bn: dict, depthwise: bool):
    """Fold ``bn`` into ``filter``; returns ``(folded filter float32, bias float32)``.

    The output channel of a conv2d filter ``[FH, FW, inC, outC]`` is its last axis; a
    depthwise filter ``[FH, FW, C, m]`` makes output channel ``k * m + q`` from
    ``filter[:, :, k, q]``, so the per-output-channel scale is reshaped to ``[C, m]``.
    """
    scale = bn["gamma"] / np.sqrt(bn["var"] + BN_EPSILON)
    bias = bn["beta"] - bn["mean"] * scale
    if depthwise:
        folded = filter * scale.reshape(filter.shape[2], filter.shape[3])
    else:
        folded = filter * scale
    return folded.astype(np.float32), bias.astype(np.float32)


def batch_norm(y: np.ndarray, bn: dict) -> np.ndarray:
    """Inference batch norm on the last (channel) axis, float64."""
    return bn["gamma"] * (y - bn["mean"]) / np.sqrt(bn["var"] + BN_EPSILON) + bn["beta"]


def relu6(y: np.ndarray) -> np.ndarray:
    return np.clip(y, 0.0, 6.0)


def block_oracle(x, block: dict, stride: int) -> np.ndarray:
    """The block unfused in float64: conv, explicit batch norm, relu6 -- twice."""
    h = gpuconv.oracle.depthwise_conv2d(x, block["depthwise"], strides=stride, padding="SAME")
    h = relu6(batch_norm(h, block["bn1"]))
    y = gpuconv.oracle.conv2d(h, block["pointwise"], padding="VALID")
    return relu6(batch_norm(y, block["bn2"]))


def block_gpu(x, folded: dict, stride: int, algorithm: str = "auto", runtime=None) -> np.ndarray:
    """The block on the GPU (``runtime``: the default one, or any gpuconv runtime): two programs,
    each with bias + relu6 fused."""
    h = gpuconv.depthwise_conv2d(x, folded["depthwise"], strides=stride, padding="SAME",
                                 bias=folded["bias1"], activation="relu6", algorithm=algorithm, runtime=runtime)
    return gpuconv.conv2d(h, folded["pointwise"], padding="VALID",
                          bias=folded["bias2"], activation="relu6", algorithm=algorithm, runtime=runtime)



def parse_shape(text: str):
    try:
        shape = tuple(int(v) for v in text.lower().split("x"))
    except ValueError:
        shape = ()
    if len(shape) != 4 or min(shape) < 1:
        raise argparse.ArgumentTypeError(f"expected an NHWC shape like 1x112x112x32, got {text!r}")
    return shape


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description="A MobileNet depthwise-separable block (depthwise 3x3 + folded batch norm + "
                    "relu6, pointwise 1x1 + folded batch norm + relu6) on the GPU, timed and "
                    "checked against an unfused float64 oracle.")
    parser.add_argument("--input", type=parse_shape, default=(1, 112, 112, 32), metavar="NxHxWxC",
                        help="input shape, NHWC (default 1x112x112x32, MobileNet v1's second layer)")
    parser.add_argument("--out-channels", type=int, default=None, metavar="N",
                        help="pointwise output channels (default: twice the input's)")
    parser.add_argument("--stride", type=int, choices=(1, 2), default=1,
                        help="depthwise stride (MobileNet uses 2 to halve the resolution)")
    parser.add_argument("--small", action="store_true",
                        help="a quick run: input 1x28x28x8 -> 16 channels, 3 timed repeats")
    parser.add_argument("--repeats", type=int, default=10, metavar="N",
                        help="warm runs to take the median of (default 10)")
    parser.add_argument("--algorithm", choices=("auto", "direct", "packed"), default="auto",
                        help="gpuconv's algorithm= for both ops: direct (TF.js's programs), packed "
                             "(several pixels x 4 channels per fragment) or auto (default: packed where it applies)")
    parser.add_argument("--backend", choices=("native", "webgpu"), default="native",
                        help="native: this thread's default runtime (WebGL2-style GL, EGL); webgpu: the WebGPU "
                             "target through wgpu-py (--algorithm packed is WebGL2's only)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default="out", metavar="DIR",
                        help="where to write mobilenet_block.json (timings and errors; default ./out)")
    parser.add_argument("--tolerance", type=float, default=1e-5,
                        help="largest accepted error relative to the output's largest magnitude")
    args = parser.parse_args(argv)
    shape = (1, 28, 28, 8) if args.small else args.input
    repeats = min(args.repeats, 3) if args.small else args.repeats
    if repeats < 1:
        parser.error("--repeats must be at least 1")
    out_channels = args.out_channels or 2 * shape[3]
    if args.backend == "webgpu" and args.algorithm == "packed":
        parser.error("--algorithm packed runs WebGL2's packed programs: use auto or direct with --backend webgpu")

    rng = np.random.default_rng(args.seed)
    x = rng.uniform(-1.0, 1.0, shape).astype(np.float32)
    block = make_block(rng, shape[3], out_channels)
    depthwise, bias1 = fold_batch_norm(block["depthwise"], block["bn1"], depthwise=True)
    pointwise, bias2 = fold_batch_norm(block["pointwise"], block["bn2"], depthwise=False)
    folded = {"depthwise": depthwise, "bias1": bias1, "pointwise": pointwise, "bias2": bias2}

    runtime = gpuconv.WebGPURuntime() if args.backend == "webgpu" else gpuconv.get_runtime()
    start = time.perf_counter()
    y = block_gpu(x, folded, args.stride, args.algorithm, runtime)
    cold = time.perf_counter() - start
    warm = []
    for _ in range(repeats):
        start = time.perf_counter()
        block_gpu(x, folded, args.stride, args.algorithm, runtime)
        warm.append(time.perf_counter() - start)
    info = runtime.info()
    device = info.get("renderer") or info.get("adapter")
    if args.backend == "webgpu":
        runtime.release()
    start = time.perf_counter()
    expected = block_oracle(x.astype(np.float64), block, args.stride)
    oracle_s = time.perf_counter() - start
    error = gpuconv.oracle.relative_error(y, expected)
    ok = error <= args.tolerance

    macs = (y.shape[1] * y.shape[2] * shape[3] * 9) + (y.shape[1] * y.shape[2] * shape[3] * out_channels)
    median = statistics.median(warm)
    report = {
        "input": list(shape), "output": list(y.shape), "stride": args.stride, "algorithm": args.algorithm,
        "backend": args.backend, "target": runtime.target.name, "renderer": device, "multiply_adds": int(macs),
        "warm_median_ms": median * 1e3, "warm_runs": repeats, "cold_ms": cold * 1e3,
        "oracle_ms": oracle_s * 1e3, "relative_error": error, "tolerance": args.tolerance,
        "zero_fraction": float(np.mean(expected == 0.0)), "six_fraction": float(np.mean(expected == 6.0)),
        "passed": ok,
    }
    os.makedirs(args.output, exist_ok=True)
    path = os.path.join(args.output, "mobilenet_block.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(report, f, indent=2)

    def dims(s):
        return "x".join(map(str, s))

    print(f"mobilenet_block: x {dims(shape)} (NHWC) -> depthwise 3x3 stride {args.stride} + BN + relu6 "
          f"-> pointwise 1x1 to {out_channels} + BN + relu6 -> {dims(y.shape)}")
    print(f"  folded   BN into the filters: depthwise {dims(depthwise.shape)} + bias [{bias1.size}], "
          f"pointwise {dims(pointwise.shape)} + bias [{bias2.size}] (2 programs, bias and relu6 fused)")
    print(f"  GPU      {median * 1e3:.1f} ms per block (warm median of {repeats}; "
          f"{macs / 1e6:.1f} M multiply-adds, {2 * macs / median / 1e9:.2f} GFLOP/s) "
          f"on {device} ({runtime.target.name}), algorithm={args.algorithm!r}")
    print(f"           first call {cold * 1e3:.1f} ms (compiles both programs)")
    print(f"  oracle   {oracle_s * 1e3:.1f} ms (float64 NumPy, unfused: conv, batch norm, relu6)")
    print(f"  output   {report['zero_fraction']:.0%} clipped at 0, {report['six_fraction']:.1%} at 6, "
          f"max {np.max(expected):.3f}")
    print(f"  error    GPU vs oracle: {error:.2e} relative to the largest output "
          f"(tolerance {args.tolerance:g})")
    print(f"  wrote    {path}")
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

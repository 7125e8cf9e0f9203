"""A MobileNet-style stack with its tensors kept on the GPU between ops (gpuconv.to_gpu).

MobileNet (v1) repeats one block: depthwise 3x3 -> batch norm -> relu6 -> pointwise 1x1
-> batch norm -> relu6, with batch norm folded into each convolution's filter and bias
(see ``examples/mobilenet_block.py``), so each half is ONE program with bias and relu6 fused.
This runs several blocks two ways:

* tensors: the input and every weight are uploaded once (``gpuconv.to_gpu``); each op takes
  the previous op's :class:`gpuconv.Tensor` and returns a new one, so activations never
  leave the GPU (a layout conversion program runs on the GPU where the next program reads
  its input stored otherwise); only the stack's output is read back (``.numpy()``);
* arrays: the same ops on NumPy arrays, so every op uploads its input and weights and
  reads its output back.

Both are checked against an unfused float64 oracle (conv, explicit batch norm, relu6) and
timed (median of a few warm runs).  The weights are seeded random numbers.

Run it::

    .venv/bin/python examples/mobilenet_tensors.py            # 1x112x112x32, 4 blocks to 256 channels
    .venv/bin/python examples/mobilenet_tensors.py --small    # 1x28x28x8, 3 blocks to 32 channels

Exit status: 0 when both agree with the oracle to --tolerance (relative to the output's
largest magnitude), 1 when either does not.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from typing import Dict, List, Sequence, Tuple

import numpy as np

import gpuconv

BN_EPSILON = 1e-3  # Keras's BatchNormalization default, as in MobileNet

#: (output channels, depthwise stride) of each block: MobileNet v1's blocks 1-4 ...
FULL_BLOCKS = ((64, 1), (128, 2), (128, 1), (256, 2))
#: ... and a small stack for a quick run.
SMALL_BLOCKS = ((16, 1), (32, 2), (32, 1))


def batch_norm_params(rng: np.random.Generator, channels: int) -> Dict[str, np.ndarray]:
    return {"gamma": rng.uniform(0.5, 1.5, channels), "beta": rng.uniform(-0.5, 0.5, channels),
            "mean": rng.normal(0.0, 0.2, channels), "var": rng.uniform(0.5, 2.0, channels)}


def make_stack(rng: np.random.Generator, in_channels: int, blocks: Sequence[Tuple[int, int]]) -> List[dict]:
    """Seeded weights and batch norms of each block."""
    stack = []
    for out_channels, stride in blocks:
        stack.append({
            "stride": stride,
            "depthwise": rng.normal(0.0, np.sqrt(2.0 / 9.0), (3, 3, in_channels, 1)),
            "bn1": batch_norm_params(rng, in_channels),
            "pointwise": rng.normal(0.0, np.sqrt(2.0 / in_channels), (1, 1, in_channels, out_channels)),
            "bn2": batch_norm_params(rng, out_channels),
        })
        in_channels = out_channels
    return stack


def fold(filter: np.ndarray, bn: Dict[str, np.ndarray], depthwise: bool) -> Tuple[np.ndarray, np.ndarray]:
    """Batch norm folded into the filter (per output channel) and a bias."""
    scale = bn["gamma"] / np.sqrt(bn["var"] + BN_EPSILON)
    bias = bn["beta"] - bn["mean"] * scale
    folded = filter * (scale.reshape(filter.shape[2], filter.shape[3]) if depthwise else scale)
    return folded.astype(np.float32), bias.astype(np.float32)


def folded_stack(stack: List[dict]) -> List[dict]:
    out = []
    for block in stack:
        dw, b1 = fold(block["depthwise"], block["bn1"], True)
        pw, b2 = fold(block["pointwise"], block["bn2"], False)
        out.append({"stride": block["stride"], "depthwise": dw, "bias1": b1, "pointwise": pw, "bias2": b2})
    return out


def stack_oracle(x: np.ndarray, stack: List[dict]) -> np.ndarray:
    """Unfused, float64: conv, batch norm, relu6, for each half of each block."""
    def bn_relu6(y: np.ndarray, bn: Dict[str, np.ndarray]) -> np.ndarray:
        return np.clip(bn["gamma"] * (y - bn["mean"]) / np.sqrt(bn["var"] + BN_EPSILON) + bn["beta"], 0.0, 6.0)

    y = x.astype(np.float64)
    for block in stack:
        y = bn_relu6(gpuconv.oracle.depthwise_conv2d(y, block["depthwise"], strides=block["stride"],
                                                     padding="SAME"), block["bn1"])
        y = bn_relu6(gpuconv.oracle.conv2d(y, block["pointwise"]), block["bn2"])
    return y


def run_stack(x, weights: List[dict], release: bool):
    """The stack on the GPU; ``x`` and the weights are arrays or Tensors.  With ``release``,
    each intermediate Tensor is freed as soon as the next op has read it."""
    y = x
    for block in weights:
        h = gpuconv.depthwise_conv2d(y, block["depthwise"], strides=block["stride"], padding="SAME",
                                     bias=block["bias1"], activation="relu6")
        if release and y is not x:
            y.release()
        y = gpuconv.conv2d(h, block["pointwise"], bias=block["bias2"], activation="relu6")
        if release:
            h.release()
    return y


def with_tensors(x: np.ndarray, weights: List[dict], runtime) -> np.ndarray:
    """Upload the input once, run the stack on Tensors, read the output back once."""
    with gpuconv.to_gpu(x, runtime) as t:
        y = run_stack(t, weights, release=True)
        with y:
            return y.numpy()


def timed(runs: Dict[str, object], repeats: int) -> Dict[str, Tuple[float, np.ndarray]]:
    """Each of ``runs`` (name -> function) ``repeats`` times, taking turns (so a busy machine
    slows them alike): name -> (median seconds, last result)."""
    times: Dict[str, List[float]] = {name: [] for name in runs}
    results: Dict[str, np.ndarray] = {}
    for _ in range(repeats):
        for name, fn in runs.items():
            start = time.perf_counter()
            results[name] = fn()  # type: ignore[operator]
            times[name].append(time.perf_counter() - start)
    return {name: (statistics.median(times[name]), results[name]) for name in runs}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", action="store_true", help="a quick run: 1x28x28x8, 3 blocks, 3 timed runs")
    parser.add_argument("--repeats", type=int, default=7, metavar="N",
                        help="timed warm runs of each, taking turns (default 7)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default="out", metavar="DIR",
                        help="where to write mobilenet_tensors.json (timings and errors; default ./out)")
    parser.add_argument("--tolerance", type=float, default=1e-5,
                        help="largest accepted error relative to the output's largest magnitude")
    args = parser.parse_args(argv)
    shape, blocks = ((1, 28, 28, 8), SMALL_BLOCKS) if args.small else ((1, 112, 112, 32), FULL_BLOCKS)
    repeats = min(args.repeats, 3) if args.small else args.repeats
    if repeats < 1:
        parser.error("--repeats must be at least 1")

    rng = np.random.default_rng(args.seed)
    x = rng.uniform(-1.0, 1.0, shape).astype(np.float32)
    stack = make_stack(rng, shape[3], blocks)
    arrays = folded_stack(stack)
    runtime = gpuconv.get_runtime()
    # The weights go up once, as Tensors (kept for every run).
    tensors = [{key: value if key == "stride" else gpuconv.to_gpu(value, runtime) for key, value in block.items()}
               for block in arrays]
    before = gpuconv.memory(runtime)

    run_arrays = lambda: run_stack(x, arrays, release=False)  # noqa: E731
    run_tensors = lambda: with_tensors(x, tensors, runtime)  # noqa: E731
    run_arrays(), run_tensors()  # compile every program (and conversion) once
    gpuconv.synchronize(runtime)
    medians = timed({"arrays": run_arrays, "tensors": run_tensors}, repeats)
    (arrays_s, y_arrays), (tensors_s, y_tensors) = medians["arrays"], medians["tensors"]
    after = gpuconv.memory(runtime)

    expected = stack_oracle(x, stack)
    errors = {"arrays": gpuconv.oracle.relative_error(y_arrays, expected),
              "tensors": gpuconv.oracle.relative_error(y_tensors, expected)}
    ok = all(error <= args.tolerance for error in errors.values())
    same = np.array_equal(y_arrays, y_tensors)

    dims = lambda s: "x".join(map(str, s))  # noqa: E731
    layers = " -> ".join(f"{c}{'/2' if s == 2 else ''}" for c, s in blocks)
    print(f"mobilenet_tensors: x {dims(shape)} (NHWC), {len(blocks)} blocks (depthwise 3x3 + BN + relu6, "
          f"pointwise 1x1 + BN + relu6; channels {shape[3]} -> {layers}) -> {dims(y_tensors.shape)}")
    print(f"  renderer {runtime.info()['renderer']}; {2 * len(blocks)} programs per run, bias and relu6 fused")
    print(f"  tensors  {tensors_s * 1e3:8.1f} ms per stack (median of {repeats}, runs taking turns): input "
          f"uploaded once, output read back once, activations on the GPU")
    print(f"  arrays   {arrays_s * 1e3:8.1f} ms per stack (median of {repeats}): every op uploads its "
          f"input and weights and reads its output back")
    print(f"  speed-up {arrays_s / tensors_s:.2f}x; tensors and arrays {'bit-identical' if same else 'differ'}; "
          f"gpuconv textures held: {before['textures']} (the weights) before the runs, "
          f"{after['textures']} after (each weight with its packed copy)")
    for name, error in errors.items():
        print(f"  {name:8s} relative error vs the float64 oracle {error:.2e} (tolerance {args.tolerance:g})")
    report = {"input": list(shape), "output": list(y_tensors.shape), "blocks": [list(b) for b in blocks],
              "renderer": runtime.info()["renderer"], "runs": repeats, "tensors_median_ms": tensors_s * 1e3,
              "arrays_median_ms": arrays_s * 1e3, "bit_identical": bool(same),
              "relative_error": errors, "tolerance": args.tolerance, "passed": bool(ok)}
    os.makedirs(args.output, exist_ok=True)
    with open(os.path.join(args.output, "mobilenet_tensors.json"), "w", encoding="utf-8") as f:
        json.dump(report, f, indent=2)
    print("PASS" if ok else "FAIL")
    for block in tensors:
        for value in block.values():
            if isinstance(value, gpuconv.Tensor):
                value.release()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

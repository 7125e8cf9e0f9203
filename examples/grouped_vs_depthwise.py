"""One depthwise convolution, three frameworks' spellings, the same result.

The question users keep asking: "I have TF's depthwise filter with a channel
multiplier; what is it in PyTorch (``groups=in_channels``) or Caffe (``group``)?"

* TensorFlow / TF.js: ``tf.nn.depthwise_conv2d(x, filter)``, ``x`` NHWC, filter
  ``[FH, FW, C, m]``; output channel ``k * m + q`` is input channel ``k`` convolved
  with ``filter[:, :, k, q]``.          -> ``gpuconv.depthwise_conv2d``
* PyTorch: ``F.conv2d(x, weight, groups=C)``, ``x`` NCHW, weight ``[C * m, 1, kH, kW]``
  (``[out_channels, in_channels / groups, kH, kW]``); group ``k`` owns output channels
  ``k*m .. k*m + m - 1``.                -> ``gpuconv.torch.conv2d``
* Caffe: a ``Convolution`` layer with ``num_output: C*m`` and ``group: C``, blobs
  NCHW, weight ``[C * m, 1, kh, kw]``, the same layout as PyTorch's.
                                         -> ``gpuconv.caffe.Convolution``

So ``torch_weight[k * m + q, 0, :, :] == tf_filter[:, :, k, q]``, i.e.
``torch_weight = tf_filter.transpose(2, 3, 0, 1).reshape(C * m, 1, FH, FW)`` and back
``tf_filter = torch_weight.reshape(C, m, FH, FW).transpose(2, 3, 0, 1)``.

Padding: PyTorch's ``padding=p`` and Caffe's ``pad: p`` pad both sides equally; TF's
``"SAME"`` puts the odd pixel after (bottom/right).  With stride 2 and an even input
they differ, so the TF call here uses the explicit pads ``[[p, p], [p, p]]``.

Run it::

    .venv/bin/python examples/grouped_vs_depthwise.py
    .venv/bin/python examples/grouped_vs_depthwise.py --channels 4 --multiplier 3 --stride 2

Writes ``mapping.txt`` (what is printed) and ``grouped_vs_depthwise.npz`` (the input,
both weight layouts and the three results) into ``--output``.  Exit status 0 when all
three agree with the float64 oracle to --tolerance, 1 otherwise.
"""

from __future__ import annotations

import argparse
import io
import os
import sys

import numpy as np

import gpuconv
import gpuconv.caffe
import gpuconv.torch


def tf_to_torch(tf_filter: np.ndarray) -> np.ndarray:
    """TF depthwise ``[FH, FW, C, m]`` -> PyTorch/Caffe grouped weight ``[C*m, 1, FH, FW]``."""
    fh, fw, channels, multiplier = tf_filter.shape
    return np.ascontiguousarray(tf_filter.transpose(2, 3, 0, 1).reshape(channels * multiplier, 1, fh, fw))


def torch_to_tf(weight: np.ndarray, channels: int) -> np.ndarray:
    """PyTorch/Caffe grouped weight ``[C*m, 1, kH, kW]`` (groups = C) -> TF ``[kH, kW, C, m]``."""
    out_channels, _, kh, kw = weight.shape
    return np.ascontiguousarray(weight.reshape(channels, out_channels // channels, kh, kw).transpose(2, 3, 0, 1))


def torch_reference(x_nchw, weight, stride, pad, groups):
    """PyTorch's own ``F.conv2d`` in float64 when PyTorch is installed, else ``None``."""
    try:
        import torch
    except ImportError:
        return None
    with torch.no_grad():
        y = torch.nn.functional.conv2d(torch.from_numpy(x_nchw).double(), torch.from_numpy(weight).double(),
                                       stride=stride, padding=pad, groups=groups)
    return y.numpy()



def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description="Show that TF's depthwise conv with a channel multiplier, PyTorch's grouped "
                    "conv (groups = in_channels) and Caffe's Convolution with group give the same "
                    "result on gpuconv, and how their weights map onto each other.")
    parser.add_argument("--channels", type=int, default=3, metavar="C", help="input channels (default 3)")
    parser.add_argument("--multiplier", type=int, default=2, metavar="M", help="channel multiplier (default 2)")
    parser.add_argument("--size", type=int, default=8, metavar="N", help="input height and width (default 8)")
    parser.add_argument("--kernel", type=int, default=3, metavar="K", help="kernel size (default 3)")
    parser.add_argument("--stride", type=int, default=1, metavar="S", help="stride (default 1)")
    parser.add_argument("--small", action="store_true", help="the defaults (they are already small)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default="out", metavar="DIR",
                        help="where to write mapping.txt and grouped_vs_depthwise.npz (default ./out)")
    parser.add_argument("--tolerance", type=float, default=1e-5,
                        help="largest accepted error relative to the output's largest magnitude")
    args = parser.parse_args(argv)
    for name in ("channels", "multiplier", "size", "kernel", "stride"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be positive")
    C, m, k, s = args.channels, args.multiplier, args.kernel, args.stride
    pad = k // 2  # "same-size" symmetric padding for an odd kernel, as PyTorch/Caffe users write it

    rng = np.random.default_rng(args.seed)
    x_nhwc = rng.uniform(-1, 1, (1, args.size, args.size, C)).astype(np.float32)
    x_nchw = np.ascontiguousarray(x_nhwc.transpose(0, 3, 1, 2))
    tf_filter = rng.uniform(-1, 1, (k, k, C, m)).astype(np.float32)
    torch_weight = tf_to_torch(tf_filter)
    assert np.array_equal(torch_to_tf(torch_weight, C), tf_filter)

    # 1. TensorFlow / TF.js: depthwise with a channel multiplier, NHWC.
    y_tf = gpuconv.depthwise_conv2d(x_nhwc, tf_filter, strides=s, padding=[[pad, pad], [pad, pad]])
    # 2. PyTorch: F.conv2d(x, weight, stride=s, padding=pad, groups=C), NCHW.
    y_torch = gpuconv.torch.conv2d(x_nchw, torch_weight, stride=s, padding=pad, groups=C)
    # 3. Caffe: Convolution { num_output: C*m group: C kernel_size: k pad: pad stride: s bias_term: false }.
    layer = gpuconv.caffe.Convolution(num_output=C * m, group=C, kernel_size=k, pad=pad, stride=s,
                                      bias_term=False, weight=torch_weight)
    y_caffe = layer(x_nchw)
    expected = gpuconv.oracle.depthwise_conv2d(x_nhwc, tf_filter, strides=s, padding=[[pad, pad], [pad, pad]])

    # Compare everything in NHWC.
    results = {"TF depthwise_conv2d": y_tf,
               "torch conv2d groups=C": y_torch.transpose(0, 2, 3, 1),
               "caffe Convolution group=C": y_caffe.transpose(0, 2, 3, 1)}
    names = list(results)
    errors = {name: gpuconv.oracle.relative_error(y, expected) for name, y in results.items()}
    pairwise = {(a, b): float(np.max(np.abs(results[a] - results[b])))
                for i, a in enumerate(names) for b in names[i + 1:]}
    ok = all(e <= args.tolerance for e in errors.values())

    out = io.StringIO()

    def say(text=""):
        print(text)
        out.write(text + "\n")

    say(f"grouped_vs_depthwise: input C={C} channels, multiplier m={m}, {k}x{k} kernel, stride {s}, "
        f"pad {pad} on every side -> {C * m} output channels")
    say()
    say("Weight layouts")
    say(f"  TF / TF.js  tf.nn.depthwise_conv2d, tf.depthwiseConv2d  filter [FH, FW, C, m]       = {list(tf_filter.shape)}")
    say(f"  PyTorch     F.conv2d(..., groups=C), nn.Conv2d          weight [C*m, 1, kH, kW]     = {list(torch_weight.shape)}")
    say(f"  Caffe       Convolution num_output=C*m group=C          weight [C*m, 1, kh, kw]     = {list(layer.weight.shape)}")
    say("  data: TF NHWC [N, H, W, C]; PyTorch and Caffe NCHW [N, C, H, W]")
    say()
    say("Index mapping (output channel o = k*m + q: input channel k, multiplier index q)")
    say("  out channel  input channel  TF filter           torch/caffe weight   equal")
    for o in range(C * m):
        ch, q = divmod(o, m)
        same = np.array_equal(tf_filter[:, :, ch, q], torch_weight[o, 0])
        tf_index, torch_index = f"[:, :, {ch}, {q}]", f"[{o}, 0, :, :]"
        say(f"  {o:>11}  {ch:>13}  {tf_index:<18}  {torch_index:<19}  {same}")
    say("  torch_weight = tf_filter.transpose(2, 3, 0, 1).reshape(C*m, 1, FH, FW)")
    say("  tf_filter    = torch_weight.reshape(C, m, kH, kW).transpose(2, 3, 0, 1)")
    say()
    say("Results (compared in NHWC)")
    for name, error in errors.items():
        say(f"  {name:<27} shape {list(results[name].shape)}  vs float64 oracle: {error:.2e} relative")
    for (a, b), diff in pairwise.items():
        say(f"  max |{a} - {b}| = {diff:.3g}")
    say(f"  (tolerance {args.tolerance:g} relative to the largest output, {np.max(np.abs(expected)):.3f})")
    reference = torch_reference(x_nchw, torch_weight, s, pad, C)
    if reference is not None:
        error = gpuconv.oracle.relative_error(y_torch, reference)
        ok = ok and error <= args.tolerance
        say(f"  PyTorch itself (torch.nn.functional.conv2d, float64) vs gpuconv.torch.conv2d: {error:.2e} relative")
    same = gpuconv.oracle.depthwise_conv2d(x_nhwc, tf_filter, strides=s, padding="SAME")
    if same.shape != expected.shape or not np.allclose(same, expected):
        say(f"  note: TF's padding=\"SAME\" would NOT match here (output {list(same.shape)}; SAME puts the "
            f"odd padding pixel after): use explicit pads [[{pad}, {pad}], [{pad}, {pad}]]")
    else:
        say(f"  note: here TF's padding=\"SAME\" equals the symmetric pad {pad} (it does not with "
            f"stride 2 on an even size)")

    os.makedirs(args.output, exist_ok=True)
    text_path = os.path.join(args.output, "mapping.txt")
    npz_path = os.path.join(args.output, "grouped_vs_depthwise.npz")
    with open(text_path, "w", encoding="utf-8") as f:
        f.write(out.getvalue())
    np.savez(npz_path, x_nhwc=x_nhwc, tf_filter=tf_filter, torch_weight=torch_weight,
             y_tf=y_tf, y_torch=y_torch, y_caffe=y_caffe, oracle=expected)
    print(f"wrote {text_path} and {npz_path}")
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

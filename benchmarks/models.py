"""gpuconv on the convolution layers of published architectures, beside TF.js 4.22.

Each model below is a table of its convolution layers (nothing else: pooling, linear
classifier heads, normalisation, channel shuffles and upsampling are left out), written from
its paper and reference implementation (cited per model), at its usual input size, batch 1,
NHWC.  A layer is one distinct convolution (op, input shape, filter, strides, padding,
activation the model applies right after it) and ``count``, how often the model runs it.

The run times each distinct layer warm, as ``benchmarks/bench.py`` times a layer (inputs
resident, a run is the draws then a sync, the median of ``--repeat`` runs after
``--warmup`` runs): gpuconv's fast path (``algorithm="auto"``) natively on WebGL2; with
``--browser`` also in headless Chromium's WebGL2, timed inside the page; with ``--tfjs``
(implies ``--browser``) TF.js 4.22's WebGL backend with its defaults in the same Chromium
build; with ``--webgpu`` gpuconv's WebGPU target natively and in the page, and with
``--tfjs-webgpu`` TF.js's WebGPU backend.  A model's total is the sum over its layers of
the warm time x ``count``; GFLOP/s = 2 x its multiply-adds / total.  Ratios are the other
side's time / gpuconv's (above 1: gpuconv is faster).  ``--rounds N`` takes a layer's sides in
turn N times, the repeats shared among the rounds, so that the machine's drift over a few
seconds reaches every side alike rather than the one timed in a slow block.

gpuconv runs each layer with the model's activation fused (and a bias, where the model has a
bias or a batch norm folded into one) when ``--fuse`` (the default); TF.js's runner
(benchmarks/tfjs/page.js) times the bare convolution, so the comparison is, if anything,
unfavourable to gpuconv.

``--cold``: per model, its first inference with nothing compiled: a fresh Python process
(``MESA_SHADER_CACHE_DISABLE=true``) calls every layer ``count`` times (``gpuconv.conv2d`` /
``depthwise_conv2d``: upload, compile where new, draw, read back), and, with ``--tfjs``,
a fresh Chromium with TF.js runs the same convolutions (``tf.tensor`` of the inputs, the op,
``await y.data()``), both timed around all the layers.  With ``--browser`` also gpuconv in a
fresh Chromium (``gpuconv.BrowserRuntime``).

Usage::

    python benchmarks/models.py --quick                      # a smoke run
    python benchmarks/models.py --models resnet18,mobilenet_v1 --tfjs --cold --layers
    python benchmarks/models.py --tfjs --cold --json models.json --png models.png

Uses benchmarks/bench.py's timing machinery (``_Resident``, ``_fast_plan``, ``samples``,
``time_in_page``) and benchmarks/tfjs/runner.py's ``TfjsBench`` (its ``_pages`` and
``_in_thread`` for the cold run, which its public API does not time).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

HERE = Path(__file__).resolve().parent


def load_bench():
    """benchmarks/bench.py as a module (this folder is not a package)."""
    name = "gpuconv_bench"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, HERE / "bench.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up there
        spec.loader.exec_module(module)
    return sys.modules[name]


# ---------------------------------------------------------------------------
# the layer tables

@dataclass(frozen=True)
class Conv:
    """One distinct convolution layer of a model (NHWC, batch 1).

    ``filter``: ``[kh, kw, in_channels / groups, out_channels]`` for conv2d,
    ``[kh, kw, channels, multiplier]`` for depthwise_conv2d.  ``after``: what the reference
    model puts right after the convolution's output, for the parameter counts: "bn" (a batch
    norm: 2 parameters per output channel, folded into a bias at inference), "bias" (the
    convolution's own bias) or "none".  ``activation``: the one the model applies next (fused
    by gpuconv where it supports it), or None.
    """
    name: str
    op: str
    x: tuple
    filter: tuple
    strides: int = 1
    padding: str = "SAME"
    activation: Optional[str] = None
    count: int = 1
    after: str = "bn"
    groups: int = 1

    @property
    def out_shape(self) -> tuple:
        n, h, w, _ = self.x
        kh, kw = self.filter[:2]
        if self.padding == "SAME":
            oh, ow = math.ceil(h / self.strides), math.ceil(w / self.strides)
        else:
            oh, ow = (h - kh) // self.strides + 1, (w - kw) // self.strides + 1
        channels = self.filter[2] * self.filter[3] if self.op == "depthwise_conv2d" else self.filter[3]
        return (n, oh, ow, channels)

    @property
    def macs(self) -> int:
        """Multiply-adds of one run."""
        kh, kw, cin, cout = self.filter
        _, oh, ow, _ = self.out_shape
        return oh * ow * kh * kw * cin * cout  # depthwise: cin = channels, cout = multiplier

    @property
    def params(self) -> int:
        """Weights, plus the bias or batch norm that follows (see ``after``), of one occurrence."""
        out = self.out_shape[-1]
        return int(np.prod(self.filter)) + {"bn": 2 * out, "bias": out, "none": 0}[self.after]


@dataclass
class Model:
    name: str
    title: str
    source: str
    input: tuple
    layers: List[Conv]

    @property
    def macs(self) -> int:
        return sum(layer.macs * layer.count for layer in self.layers)

    @property
    def params(self) -> int:
        return sum(layer.params * layer.count for layer in self.layers)

    @property
    def conv_count(self) -> int:
        return sum(layer.count for layer in self.layers)


def _same(h: int, s: int) -> int:
    return math.ceil(h / s)


class _Table:
    """Collects a model's layers in order, merging repeats of the same layer into its count."""

    def __init__(self):
        self.layers: List[Conv] = []

    def _add(self, layer: Conv, count: int) -> int:
        for i, known in enumerate(self.layers):
            if replace(known, name=layer.name, count=1) == replace(layer, count=1):
                self.layers[i] = replace(known, count=known.count + count)
                return layer.out_shape[1]
        self.layers.append(replace(layer, count=count))
        return layer.out_shape[1]

    def conv(self, name, hw, cin, cout, k=1, s=1, act=None, count=1, padding="SAME", after="bn", kw=None) -> int:
        """A conv2d on a ``hw`` x ``hw`` x ``cin`` input; returns the output's height."""
        return self._add(Conv(name, "conv2d", (1, hw, hw, cin), (k, kw or k, cin, cout), s, padding, act,
                              after=after), count)

    def dw(self, name, hw, c, k=3, s=1, act=None, count=1, after="bn") -> int:
        return self._add(Conv(name, "depthwise_conv2d", (1, hw, hw, c), (k, k, c, 1), s, "SAME", act,
                              after=after), count)


def vgg16(size: int = 224) -> Model:
    # Simonyan & Zisserman, "Very Deep Convolutional Networks for Large-Scale Image Recognition"
    # (arXiv:1409.1556), configuration D; torchvision.models.vgg16: 13 3x3 convolutions with
    # bias, ReLU, a 2x2 max pool after each block.
    t, hw, cin = _Table(), size, 3
    for block, (channels, convs) in enumerate([(64, 2), (128, 2), (256, 3), (512, 3), (512, 3)], 1):
        for i in range(convs):
            t.conv(f"conv{block}_{i + 1} 3x3 {cin}>{channels}", hw, cin, channels, 3, act="relu", after="bias")
            cin = channels
        hw //= 2
    return Model("vgg16", "VGG-16", "Simonyan & Zisserman 2014, arXiv:1409.1556 (torchvision.models.vgg16)",
                 (1, size, size, 3), t.layers)


def resnet18(size: int = 224) -> Model:
    # He et al., "Deep Residual Learning for Image Recognition" (arXiv:1512.03385), Table 1's
    # 18-layer column; torchvision.models.resnet18 (BasicBlock; the downsampling shortcut is a
    # 1x1 stride-2 convolution + batch norm).  Every convolution is followed by a batch norm;
    # ReLU after the first of a block and after the residual add of the second (counted here as
    # the second conv's activation), none on the shortcut.
    t = _Table()
    hw = t.conv("conv1 7x7/2 3>64", size, 3, 64, 7, 2, "relu")
    hw = _same(hw, 2)  # 3x3/2 max pool
    cin = 64
    for stage, channels in enumerate([64, 128, 256, 512], 1):
        for block in range(2):
            stride = 2 if stage > 1 and block == 0 else 1
            out = t.conv(f"layer{stage} 3x3/{stride} {cin}>{channels}", hw, cin, channels, 3, stride, "relu")
            if stride == 2:
                t.conv(f"layer{stage} shortcut 1x1/2 {cin}>{channels}", hw, cin, channels, 1, 2, padding="VALID")
            t.conv(f"layer{stage} 3x3 {channels}>{channels}", out, channels, channels, 3, 1, "relu")
            hw, cin = out, channels
    return Model("resnet18", "ResNet-18", "He et al. 2015, arXiv:1512.03385 (torchvision.models.resnet18)",
                 (1, size, size, 3), t.layers)


def mobilenet_v1(size: int = 224) -> Model:
    # Howard et al., "MobileNets: Efficient Convolutional Neural Networks for Mobile Vision
    # Applications" (arXiv:1704.04861), Table 1, width 1.0: a 3x3/2 convolution, then 13
    # depthwise 3x3 + pointwise 1x1 pairs, each followed by batch norm and ReLU (ReLU6 in
    # keras.applications.MobileNet, the implementation TF.js users load).
    t = _Table()
    hw = t.conv("conv1 3x3/2 3>32", size, 3, 32, 3, 2, "relu6")
    cin = 32
    for cout, stride in [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)] + [(512, 1)] * 5 + \
            [(1024, 2), (1024, 1)]:
        hw = t.dw(f"dw 3x3/{stride} {cin} @{hw}", hw, cin, 3, stride, "relu6")
        t.conv(f"pw 1x1 {cin}>{cout} @{hw}", hw, cin, cout, 1, 1, "relu6")
        cin = cout
    return Model("mobilenet_v1", "MobileNetV1", "Howard et al. 2017, arXiv:1704.04861 (keras.applications.MobileNet)",
                 (1, size, size, 3), t.layers)


def _divisible(value: float, divisor: int = 8) -> int:
    """MobileNet's channel rounding (to a multiple of 8, never down by more than 10%)."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def mobilenet_v3_small(size: int = 224) -> Model:
    # Howard et al., "Searching for MobileNetV3" (arXiv:1905.02244), Table 2 (MobileNetV3-Small);
    # torchvision.models.mobilenet_v3_small: each bneck is a 1x1 expansion (left out where the
    # expansion size equals the input's), a depthwise kxk, a squeeze-and-excite on the
    # expanded channels (two 1x1 convolutions with bias on the pooled 1x1 map, ReLU then
    # hard-sigmoid; squeeze = expansion / 4 rounded to 8) and a linear 1x1 projection.  The
    # last 1x1 convolution (96 > 576); the classifier after the pooling is linear (left out).
    table = [  # kernel, expansion, out, SE, activation, stride
        (3, 16, 16, True, "relu", 2), (3, 72, 24, False, "relu", 2), (3, 88, 24, False, "relu", 1),
        (5, 96, 40, True, "hard_swish", 2), (5, 240, 40, True, "hard_swish", 1),
        (5, 240, 40, True, "hard_swish", 1), (5, 120, 48, True, "hard_swish", 1),
        (5, 144, 48, True, "hard_swish", 1), (5, 288, 96, True, "hard_swish", 2),
        (5, 576, 96, True, "hard_swish", 1), (5, 576, 96, True, "hard_swish", 1)]
    t = _Table()
    hw = t.conv("conv1 3x3/2 3>16", size, 3, 16, 3, 2, "hard_swish")
    cin = 16
    for k, expansion, cout, se, act, stride in table:
        if expansion != cin:
            t.conv(f"expand 1x1 {cin}>{expansion} @{hw}", hw, cin, expansion, 1, 1, act)
        out = t.dw(f"dw {k}x{k}/{stride} {expansion} @{hw}", hw, expansion, k, stride, act)
        if se:
            squeeze = _divisible(expansion / 4)
            t.conv(f"se 1x1 {expansion}>{squeeze}", 1, expansion, squeeze, 1, 1, "relu", after="bias")
            t.conv(f"se 1x1 {squeeze}>{expansion}", 1, squeeze, expansion, 1, 1, "hard_sigmoid", after="bias")
        t.conv(f"project 1x1 {expansion}>{cout} @{out}", out, expansion, cout, 1, 1)
        hw, cin = out, cout
    t.conv(f"conv 1x1 {cin}>576 @{hw}", hw, cin, 576, 1, 1, "hard_swish")
    return Model("mobilenet_v3_small", "MobileNetV3-Small",
                 "Howard et al. 2019, arXiv:1905.02244 (torchvision.models.mobilenet_v3_small)",
                 (1, size, size, 3), t.layers)


def shufflenet_v2(size: int = 224) -> Model:
    # Ma et al., "ShuffleNet V2: Practical Guidelines for Efficient CNN Architecture Design"
    # (arXiv:1807.11164), Table 5, 1.0x (stage outputs 116, 232, 464; 4, 8, 4 units);
    # torchvision.models.shufflenet_v2_x1_0.  A stride-2 unit runs two branches on the whole
    # input (depthwise 3x3/2 + 1x1; 1x1 + depthwise 3x3/2 + 1x1); a stride-1 unit splits the
    # channels in half and runs 1x1 + depthwise 3x3 + 1x1 on one half (the split, concatenation
    # and shuffle move data, no convolution).  Batch norm after each; ReLU after the 1x1s.
    t = _Table()
    hw = t.conv("conv1 3x3/2 3>24", size, 3, 24, 3, 2, "relu")
    hw = _same(hw, 2)  # 3x3/2 max pool
    cin = 24
    for stage, (channels, units) in enumerate([(116, 4), (232, 8), (464, 4)], 2):
        half = channels // 2
        out = t.dw(f"stage{stage} dw 3x3/2 {cin} @{hw}", hw, cin, 3, 2)
        t.conv(f"stage{stage} 1x1 {cin}>{half} @{out}", out, cin, half, 1, 1, "relu")
        t.conv(f"stage{stage} 1x1 {cin}>{half} @{hw}", hw, cin, half, 1, 1, "relu")
        t.dw(f"stage{stage} dw 3x3/2 {half} @{hw}", hw, half, 3, 2)
        t.conv(f"stage{stage} 1x1 {half}>{half} @{out}", out, half, half, 1, 1, "relu", count=1 + 2 * (units - 1))
        t.dw(f"stage{stage} dw 3x3 {half} @{out}", out, half, 3, 1, count=units - 1)
        hw, cin = out, channels
    t.conv(f"conv5 1x1 {cin}>1024 @{hw}", hw, cin, 1024, 1, 1, "relu")
    return Model("shufflenet_v2", "ShuffleNetV2 1.0x",
                 "Ma et al. 2018, arXiv:1807.11164 (torchvision.models.shufflenet_v2_x1_0)",
                 (1, size, size, 3), t.layers)


def squeezenet1_1(size: int = 224) -> Model:
    # Iandola et al., "SqueezeNet: AlexNet-level accuracy with 50x fewer parameters"
    # (arXiv:1602.07360), version 1.1 (the SqueezeNet repository's v1.1: a 3x3/2 first
    # convolution with 64 filters, pooling earlier); torchvision.models.squeezenet1_1.  A fire
    # module: a 1x1 squeeze, then 1x1 and 3x3 expands side by side, each with bias and ReLU; the
    # final 1x1 convolution to the 1000 classes (ReLU) is a convolution too.  Max pools 3x3/2
    # with ceil mode.
    t = _Table()
    hw = t.conv("conv1 3x3/2 3>64", size, 3, 64, 3, 2, "relu", padding="VALID", after="bias")
    pool = lambda h: math.ceil((h - 3) / 2) + 1  # noqa: E731
    hw, cin = pool(hw), 64
    for fire, (squeeze, expand) in enumerate([(16, 64), (16, 64), (32, 128), (32, 128), (48, 192), (48, 192),
                                              (64, 256), (64, 256)], 2):
        if fire in (4, 6):
            hw = pool(hw)
        t.conv(f"fire{fire} squeeze 1x1 {cin}>{squeeze}", hw, cin, squeeze, 1, 1, "relu", after="bias")
        t.conv(f"fire{fire} expand 1x1 {squeeze}>{expand}", hw, squeeze, expand, 1, 1, "relu", after="bias")
        t.conv(f"fire{fire} expand 3x3 {squeeze}>{expand}", hw, squeeze, expand, 3, 1, "relu", after="bias")
        cin = 2 * expand
    t.conv(f"conv10 1x1 {cin}>1000", hw, cin, 1000, 1, 1, "relu", after="bias")
    return Model("squeezenet1_1", "SqueezeNet 1.1",
                 "Iandola et al. 2016, arXiv:1602.07360, v1.1 (torchvision.models.squeezenet1_1)",
                 (1, size, size, 3), t.layers)


def convnext_tiny(size: int = 224) -> Model:
    # Liu et al., "A ConvNet for the 2020s" (arXiv:2201.03545), ConvNeXt-T: a 4x4/4 stem, stages
    # of (3, 3, 9, 3) blocks at (96, 192, 384, 768) channels, 2x2/2 downsampling convolutions
    # between them; a block is a depthwise 7x7, a layer norm, a 1x1 to 4x the channels with
    # GELU and a 1x1 back (written as linear layers in torchvision.models.convnext_tiny: the same
    # 1x1 convolutions).  Every one has a bias.
    t = _Table()
    hw = t.conv("stem 4x4/4 3>96", size, 3, 96, 4, 4, padding="VALID", after="bias")
    dims, depths = [96, 192, 384, 768], [3, 3, 9, 3]
    for stage, (dim, depth) in enumerate(zip(dims, depths), 1):
        if stage > 1:
            hw = t.conv(f"downsample 2x2/2 {dims[stage - 2]}>{dim}", hw, dims[stage - 2], dim, 2, 2,
                        padding="VALID", after="bias")
        t.dw(f"stage{stage} dw 7x7 {dim} @{hw}", hw, dim, 7, 1, count=depth, after="bias")
        t.conv(f"stage{stage} 1x1 {dim}>{4 * dim} @{hw}", hw, dim, 4 * dim, 1, 1, "gelu", count=depth, after="bias")
        t.conv(f"stage{stage} 1x1 {4 * dim}>{dim} @{hw}", hw, 4 * dim, dim, 1, 1, count=depth, after="bias")
    return Model("convnext_tiny", "ConvNeXt-Tiny",
                 "Liu et al. 2022, arXiv:2201.03545 (torchvision.models.convnext_tiny)", (1, size, size, 3), t.layers)


def yolov8n(size: int = 640) -> Model:
    # Ultralytics YOLOv8 (Jocher, Chaurasia & Qiu 2023; no paper: the model file
    # ultralytics/cfg/models/v8/yolov8.yaml at scale n: depth 0.33, width 0.25), backbone and
    # neck (the Detect head's convolutions are left out).  Conv = convolution + batch norm +
    # SiLU ("swish"), padding k // 2.  C2f(c1, c2, n): a 1x1 c1 > c2 whose output is split in
    # two halves of c = c2 / 2, n bottlenecks of two 3x3 c > c, and a 1x1 (2 + n) c > c2.
    # SPPF: a 1x1 c1 > c1 / 2, three 5x5 max pools, a 1x1 2 c1 > c2.  Upsampling is nearest.
    t = _Table()

    def conv(hw, cin, cout, k=1, s=1, name=""):
        return t.conv(f"{name} {k}x{k}/{s} {cin}>{cout} @{hw}".strip(), hw, cin, cout, k, s, "swish")

    def c2f(hw, cin, cout, n, name):
        c = cout // 2
        conv(hw, cin, 2 * c, name=f"{name} cv1")
        t.conv(f"{name} bottleneck 3x3 {c}>{c} @{hw}", hw, c, c, 3, 1, "swish", count=2 * n)
        conv(hw, (2 + n) * c, cout, name=f"{name} cv2")

    hw = conv(size, 3, 16, 3, 2, "b0")
    hw = conv(hw, 16, 32, 3, 2, "b1")
    c2f(hw, 32, 32, 1, "b2 C2f")
    hw = conv(hw, 32, 64, 3, 2, "b3")
    p3 = hw
    c2f(hw, 64, 64, 2, "b4 C2f")
    hw = conv(hw, 64, 128, 3, 2, "b5")
    p4 = hw
    c2f(hw, 128, 128, 2, "b6 C2f")
    hw = conv(hw, 128, 256, 3, 2, "b7")
    p5 = hw
    c2f(hw, 256, 256, 1, "b8 C2f")
    conv(p5, 256, 128, name="b9 SPPF cv1")
    conv(p5, 512, 256, name="b9 SPPF cv2")
    c2f(p4, 256 + 128, 128, 1, "n12 C2f")       # upsampled P5 + P4
    c2f(p3, 128 + 64, 64, 1, "n15 C2f")         # upsampled + P3: the P3 output
    conv(p3, 64, 64, 3, 2, "n16")
    c2f(p4, 64 + 128, 128, 1, "n18 C2f")        # + layer 12: the P4 output
    conv(p4, 128, 128, 3, 2, "n19")
    c2f(p5, 128 + 256, 256, 1, "n21 C2f")       # + SPPF: the P5 output
    return Model("yolov8n", "YOLOv8n (backbone + neck)",
                 "Ultralytics YOLOv8n, ultralytics/cfg/models/v8/yolov8.yaml (scale n), 2023",
                 (1, size, size, 3), t.layers)


MODELS = {build.__name__: build for build in (vgg16, resnet18, mobilenet_v1, mobilenet_v3_small, shufflenet_v2,
                                             squeezenet1_1, convnext_tiny, yolov8n)}


def make_models(names: Optional[Sequence[str]] = None, quick: bool = False) -> List[Model]:
    """The models by name (default: all); ``quick``: two of them at a 32x32 input, their first
    four layers."""
    if quick:
        names = names or ["mobilenet_v1", "squeezenet1_1"]
        models = [MODELS[name](32) for name in names]
        for model in models:
            model.layers = model.layers[:4]
        return models
    return [MODELS[name]() for name in (names or MODELS)]


# ---------------------------------------------------------------------------
# timing one layer

def _arrays(layer: Conv, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, layer.x).astype(np.float32)
    w = rng.uniform(-1, 1, layer.filter).astype(np.float32) / math.sqrt(np.prod(layer.filter[:3]))
    bias = rng.uniform(-1, 1, layer.out_shape[-1]).astype(np.float32)
    return x, w, bias


def gpuconv_kwargs(layer: Conv, bias, fuse: bool) -> Dict[str, Any]:
    kwargs: Dict[str, Any] = {"padding": layer.padding, "strides": layer.strides}
    if layer.groups != 1:
        kwargs["groups"] = layer.groups
    if fuse and layer.after in ("bn", "bias"):
        kwargs["bias"] = bias
    if fuse and layer.activation:
        kwargs["activation"] = layer.activation
    return kwargs


def bench_layer(layer: Conv, bias, fuse: bool):
    bench = load_bench()
    return bench.Layer(layer.name, layer.op, layer.x, layer.filter, gpuconv_kwargs(layer, bias, fuse))


def time_resident(runtime, plan, repeat: int, warmup: int) -> List[float]:
    """Seconds of each timed run of a plan's draws + finish on resident inputs (bench.py's
    ``time_phases`` draw timing, with the warm-up count as an argument)."""
    bench = load_bench()
    resident = bench._Resident(runtime, plan)

    def once():
        _, made = resident.chain(runtime.draw)
        runtime.finish()
        runtime.free(made)

    try:
        return bench.samples(once, repeat, warmup)
    finally:
        resident.release()


def time_layer(layer: Conv, runtimes: Dict[str, Any], repeat: int, warmup: int, fuse: bool = True,
               check: bool = False, rounds: int = 1) -> Dict[str, Any]:
    """One distinct layer on each of ``runtimes`` (keys: native, browser, tfjs, webgpu,
    webgpu_page, tfjs_webgpu; any may be missing): medians in seconds, ``<key>_s``.

    ``rounds`` > 1 takes the sides in turn, ``ceil(repeat / rounds)`` timed runs each a round (the
    ``warmup`` before the first round, 2 before the others), the order reversed every other round:
    this machine's speed drifts within seconds, and a side timed in one block against another
    timed in the next would carry that drift into their ratio."""
    bench = load_bench()
    x, w, bias = _arrays(layer)
    blayer = bench_layer(layer, bias, fuse)
    arrays = (x, w, None)
    row: Dict[str, Any] = {"layer": layer.name, "op": layer.op, "x": list(layer.x), "filter": list(layer.filter),
                           "strides": layer.strides, "padding": layer.padding, "activation": layer.activation,
                           "count": layer.count, "mflop": 2 * layer.macs / 1e6}
    expected = None
    if check:
        expected = getattr(__import__("gpuconv").oracle, layer.op)(x, w, **blayer.kwargs)

    keys = [key for key in ("native", "browser", "webgpu", "webgpu_page", "tfjs", "tfjs_webgpu")
            if runtimes.get(key) is not None]
    plans = {key: bench._fast_plan(blayer, arrays, runtimes[key]) for key in keys if not key.startswith("tfjs")}
    per_round = -(-repeat // max(rounds, 1))
    samples: Dict[str, List[float]] = {key: [] for key in keys}
    for round_ in range(max(rounds, 1)):
        runs_before = warmup if round_ == 0 else min(warmup, 2)
        for key in (keys if round_ % 2 == 0 else keys[::-1]):
            runtime = runtimes[key]
            if key in ("native", "webgpu"):
                samples[key] += time_resident(runtime, plans[key], per_round, runs_before)
            elif key in ("browser", "webgpu_page"):
                samples[key] += bench.time_in_page(runtime, plans[key], per_round, runs_before)
            else:
                results = runtime.time_layer(layer.name, layer.op, x, w, None,
                                             {"padding": layer.padding, "strides": layer.strides}, per_round,
                                             runs_before)
                result = results["default" if key == "tfjs" else "webgpu"]
                samples[key] += result["synced"]
                row[f"{key}_programs"] = bench._programs(result["programs"])
    for key in keys:
        row[f"{key}_s"] = statistics.median(samples[key])
        row[f"{key}_samples"] = samples[key]
        if key in plans:
            row[f"{key}_programs"] = bench._programs(s.name for s in plans[key].specs)
        if check and key in plans:
            import gpuconv

            y = getattr(gpuconv, layer.op)(x, w, runtime=runtimes[key], **blayer.kwargs)
            row[f"{key}_rel_error"] = gpuconv.oracle.relative_error(y, expected)
    return row


# ---------------------------------------------------------------------------
# cold: the first inference of a model in a fresh process / page

def cold_gpuconv(model: Model, runtime, fuse: bool = True) -> float:
    """Seconds of every layer's calls (count each), the first ones compiling."""
    import gpuconv

    calls = []
    for layer in model.layers:
        x, w, bias = _arrays(layer)
        calls.append((getattr(gpuconv, layer.op), x, w, gpuconv_kwargs(layer, bias, fuse), layer.count))
    start = time.perf_counter()
    for op, x, w, kwargs, count in calls:
        for _ in range(count):
            op(x, w, runtime=runtime, **kwargs)
    return time.perf_counter() - start


#: The cold run in TF.js's page: inputs made untimed, then every layer's calls timed together
#: (tf.tensor of the input and filter, the op, await y.data(), count times each).
_TFJS_COLD = """async (layers) => {
  const made = layers.map((l) => {
    const fill = (n) => {
      const a = new Float32Array(n);
      for (let i = 0; i < n; i++) a[i] = Math.random() - 0.5;
      return a;
    };
    const size = (s) => s.reduce((a, b) => a * b, 1);
    return {l, x: fill(size(l.x)), w: fill(size(l.filter))};
  });
  const start = performance.now();
  for (const {l, x, w} of made) {
    for (let i = 0; i < l.count; i++) {
      const xt = tf.tensor(x, l.x, "float32"), wt = tf.tensor(w, l.filter, "float32");
      const y = l.op === "conv2d" ? tf.conv2d(xt, wt, l.strides, l.pad, "NHWC")
                                  : tf.depthwiseConv2d(xt, wt, l.strides, l.pad, "NHWC");
      await y.data();
      xt.dispose(); wt.dispose(); y.dispose();
    }
  }
  return (performance.now() - start) / 1e3;
}"""


def cold_tfjs(model: Model, tfjs_dir: Path, api: str = "webgl") -> float:
    """Seconds of TF.js's first inference of the model's layers in a fresh Chromium."""
    runner = load_bench().load_tfjs_runner()
    os.environ["MESA_SHADER_CACHE_DISABLE"] = "true"
    bench = runner.TfjsBench(gl="angle-egl", directory=tfjs_dir, api=api,
                             paths=["default"] if api == "webgl" else None)
    try:
        page = next(iter(bench._pages.values()))
        payload = [{"op": layer.op, "x": list(layer.x), "filter": list(layer.filter), "count": layer.count,
                    "strides": [layer.strides, layer.strides], "pad": layer.padding.lower()}
                   for layer in model.layers]
        return bench._in_thread(lambda: page.evaluate(_TFJS_COLD, payload))
    finally:
        bench.close()


def _cold_worker(args) -> int:
    """In a fresh process (MESA_SHADER_CACHE_DISABLE=true): the model's first inference on a
    new native runtime (and, with --browser, a new BrowserRuntime); prints JSON."""
    import gpuconv

    (model,) = make_models([args.cold_worker], args.quick)
    result = {}
    runtime = gpuconv.get_runtime()
    result["native"] = cold_gpuconv(model, runtime, args.fuse)
    if args.browser:
        with gpuconv.BrowserRuntime(gl="angle-egl") as browser:
            result["browser"] = cold_gpuconv(model, browser, args.fuse)
    print("COLD " + json.dumps(result))
    return 0


def time_cold(model: Model, args) -> Dict[str, float]:
    command = [sys.executable, str(Path(__file__).resolve()), "--cold-worker", model.name]
    command += ["--quick"] if args.quick else []
    command += ["--browser"] if args.browser else []
    command += [] if args.fuse else ["--no-fuse"]
    env = dict(os.environ, MESA_SHADER_CACHE_DISABLE="true")
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=3600)
    lines = [line for line in done.stdout.splitlines() if line.startswith("COLD ")]
    if done.returncode or not lines:
        raise RuntimeError(f"the cold run of {model.name} failed: {done.stderr[-2000:]}")
    result = json.loads(lines[-1][5:])
    if args.tfjs:
        result["tfjs"] = cold_tfjs(model, Path(args.tfjs_dir))
    return result


# ---------------------------------------------------------------------------
# totals and output

SERIES = {"native": "gpuconv native", "browser": "gpuconv page", "tfjs": "TF.js WebGL",
          "webgpu": "gpuconv WebGPU native", "webgpu_page": "gpuconv WebGPU page", "tfjs_webgpu": "TF.js WebGPU"}

#: (label, baseline, ours): ratio = baseline's time / ours (above 1: gpuconv is faster).
RATIOS = [("native/TF.js", "tfjs", "native"), ("page/TF.js", "tfjs", "browser"),
          ("WebGPU page/TF.js WebGPU", "tfjs_webgpu", "webgpu_page"),
          ("WebGPU native/TF.js WebGPU", "tfjs_webgpu", "webgpu")]


def model_totals(model: Model, rows: List[Dict[str, Any]]) -> Dict[str, Any]:
    total: Dict[str, Any] = {"model": model.name, "title": model.title, "source": model.source,
                             "input": list(model.input), "gflop": 2 * model.macs / 1e9, "convs": model.conv_count,
                             "distinct": len(model.layers), "params": model.params}
    for key in SERIES:
        if all(row.get(f"{key}_s") for row in rows):
            seconds = sum(row[f"{key}_s"] * row["count"] for row in rows)
            total[f"{key}_s"] = seconds
            total[f"{key}_gflops"] = total["gflop"] / seconds
    for label, baseline, ours in RATIOS:
        if total.get(f"{baseline}_s") and total.get(f"{ours}_s"):
            total[label] = total[f"{baseline}_s"] / total[f"{ours}_s"]
            per_layer = sorted((row[f"{baseline}_s"] / row[f"{ours}_s"], row["layer"]) for row in rows)
            for row in rows:
                row[label] = row[f"{baseline}_s"] / row[f"{ours}_s"]
            total[f"{label} worst"] = {"layer": per_layer[0][1], "ratio": per_layer[0][0]}
    return total


def _ms(seconds: Optional[float]) -> str:
    if not seconds:
        return "-"
    return f"{seconds * 1e3:.{2 if seconds < 0.01 else 1}f}"


def format_models(totals: List[Dict[str, Any]]) -> str:
    bench = load_bench()
    present = [key for key in SERIES if any(t.get(f"{key}_s") for t in totals)]
    ratios = [label for label, _, _ in RATIOS if any(label in t for t in totals)]
    header = ["model", "input", "GFLOP", "convs"] + [f"{SERIES[k]} ms (GF/s)" for k in present] + ratios + \
        [f"worst layer ({label})" for label in ratios]
    cold = [key for key in ("native", "browser", "tfjs") if any(t.get(f"cold_{key}_s") for t in totals)]
    header += [f"cold {SERIES[k]} ms" for k in cold]
    lines = []
    for t in totals:
        line = [t["title"], "x".join(map(str, t["input"][1:3])), f"{t['gflop']:.2f}", f"{t['convs']}"]
        line += [f"{_ms(t.get(f'{k}_s'))} ({t[f'{k}_gflops']:.1f})" if t.get(f"{k}_s") else "-" for k in present]
        line += [f"{t[label]:.2f}x" if label in t else "-" for label in ratios]
        line += [f"{t[f'{label} worst']['layer']}: {t[f'{label} worst']['ratio']:.2f}x" if label in t else "-"
                 for label in ratios]
        line += [_ms(t.get(f"cold_{k}_s")) for k in cold]
        lines.append(line)
    return bench._markdown(header, lines)


def format_layers(model: Model, rows: List[Dict[str, Any]]) -> str:
    bench = load_bench()
    present = [key for key in SERIES if any(r.get(f"{key}_s") for r in rows)]
    ratios = [label for label, _, _ in RATIOS if any(label in r for r in rows)]
    header = ["layer", "op", "input", "filter", "s", "act", "count", "MFLOP"] + \
        [f"{SERIES[k]} ms" for k in present] + ratios + ["gpuconv programs"]
    lines = []
    for r in rows:
        line = [r["layer"], r["op"], "x".join(map(str, r["x"][1:])), "x".join(map(str, r["filter"])),
                str(r["strides"]), r["activation"] or "-", str(r["count"]), f"{r['mflop']:.1f}"]
        line += [_ms(r.get(f"{k}_s")) for k in present]
        line += [f"{r[label]:.2f}x" if label in r else "-" for label in ratios]
        line.append(r.get("native_programs", "-"))
        lines.append(line)
    return f"{model.title} ({model.source})\n" + bench._markdown(header, lines)


def write_png(totals: List[Dict[str, Any]], path: str) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise SystemExit("--png needs matplotlib (pip install matplotlib, or gpuconv's bench extra)") from None
    series = [(label, f"{key}_s") for key, label in SERIES.items() if all(t.get(f"{key}_s") for t in totals)]
    series += [(f"cold {SERIES[k]}", f"cold_{k}_s") for k in ("native", "browser", "tfjs")
               if all(t.get(f"cold_{k}_s") for t in totals)]
    positions = np.arange(len(totals))
    fig, ax = plt.subplots(figsize=(11, 5.5))
    width = 0.8 / max(1, len(series))
    for i, (label, key) in enumerate(series):
        ax.bar(positions + (i - (len(series) - 1) / 2) * width, [t[key] * 1e3 for t in totals], width,
               label=label, hatch="//" if label.startswith("cold") else None)
    ax.set_xticks(positions, [t["title"] for t in totals], rotation=15)
    ax.set_ylabel("model total, ms (lower is better)")
    ax.set_yscale("log")
    ax.legend(fontsize=8, ncol=4, loc="upper center", bbox_to_anchor=(0.5, -0.2))
    ax.set_title("gpuconv vs TF.js 4.22: convolution layers of published models, batch 1")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


# ---------------------------------------------------------------------------

def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default=None,
                        help=f"comma-separated models (default: all): {', '.join(MODELS)}")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per layer (median); default 3")
    parser.add_argument("--warmup", type=int, default=2, help="untimed runs before them; default 2")
    parser.add_argument("--rounds", type=int, default=1,
                        help="take the sides in turn this many rounds, the repeats shared among them (the order "
                             "reversed every other round), so that the machine's drift reaches every side alike; "
                             "default 1")
    parser.add_argument("--quick", action="store_true", help="two small models at 32x32, four layers each")
    parser.add_argument("--layers", action="store_true", help="also print the per-layer tables")
    parser.add_argument("--browser", action="store_true", help="also gpuconv in headless Chromium, timed in the page")
    parser.add_argument("--tfjs", action="store_true", help="also TF.js 4.22's WebGL default path (implies --browser)")
    parser.add_argument("--webgpu", action="store_true", help="also gpuconv's WebGPU target, natively and in the page")
    parser.add_argument("--tfjs-webgpu", action="store_true", help="also TF.js 4.22's WebGPU (implies --webgpu)")
    parser.add_argument("--cold", action="store_true", help="also each model's first inference in a fresh process")
    parser.add_argument("--only", default=None, metavar="TEXT",
                        help="only the layers whose name contains TEXT (case-insensitive; comma-separated "
                             "alternatives), to time a few layers without their whole models")
    parser.add_argument("--no-fuse", dest="fuse", action="store_false",
                        help="run gpuconv's layers without the model's bias and activation")
    parser.add_argument("--check", action="store_true", help="also check gpuconv's outputs against the oracle")
    parser.add_argument("--tfjs-dir", default=str(HERE / "tfjs"), metavar="DIR")
    parser.add_argument("--json", default=None, metavar="PATH")
    parser.add_argument("--png", default=None, metavar="PATH")
    parser.add_argument("--cold-worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.browser = args.browser or args.tfjs
    args.webgpu = args.webgpu or args.tfjs_webgpu
    if args.cold_worker:
        return _cold_worker(args)
    names = [n.strip() for n in args.models.split(",")] if args.models else None
    unknown = [n for n in names or [] if n not in MODELS]
    if unknown:
        parser.error(f"--models: unknown {unknown}; known: {', '.join(MODELS)}")
    bench = load_bench()
    runner = None
    for wanted, api in ((args.tfjs, "webgl"), (args.tfjs_webgpu, "webgpu")):
        if wanted:
            runner = bench.load_tfjs_runner()
            problem = runner.missing(Path(args.tfjs_dir), api)
            if problem:
                parser.error(problem)
    repeat = 2 if args.quick else args.repeat
    models = make_models(names, args.quick)
    if args.only:
        wanted = [text.strip().lower() for text in args.only.split(",") if text.strip()]
        for model in models:
            model.layers = [layer for layer in model.layers if any(text in layer.name.lower() for text in wanted)]
        models = [model for model in models if model.layers]
        if not models:
            parser.error(f"--only {args.only!r}: no layer of the chosen models has that in its name")

    import gpuconv

    runtimes: Dict[str, Any] = {"native": gpuconv.get_runtime()}
    info = runtimes["native"].info()
    stamp = time.strftime("%Y-%m-%d %H:%M")
    print(f"gpuconv models benchmark on {info['renderer']}; median of {repeat} warm runs after {args.warmup}; "
          f"{stamp}, {bench._load()}; {bench._source_state()}; gpuconv {'with' if args.fuse else 'without'} "
          "the models' bias + activation fused, TF.js the bare convolution", flush=True)
    report: Dict[str, Any] = {"date": stamp, "device": info, "repeat": repeat, "warmup": args.warmup,
                              "rounds": args.rounds, "fuse": args.fuse, "load_before": bench._load(), "source": bench._source_state(),
                              "models": []}
    totals = []
    try:
        if args.browser:
            runtimes["browser"] = gpuconv.BrowserRuntime(gl="angle-egl")
            print(f"browser: Chromium {runtimes['browser'].browser_version}, "
                  f"{runtimes['browser'].info()['renderer']}", flush=True)
        if args.tfjs:
            runtimes["tfjs"] = runner.TfjsBench(gl="angle-egl", directory=Path(args.tfjs_dir), paths=["default"])
            page = runtimes["tfjs"].info["default"]
            print(f"TF.js {page['version']} default: {page['backend']} on {page['renderer']}", flush=True)
        if args.webgpu:
            runtimes["webgpu"] = gpuconv.WebGPURuntime()
            try:
                runtimes["webgpu_page"] = gpuconv.BrowserRuntime(gl="angle-egl", api="webgpu")
            except Exception as error:  # its column stays empty
                print(f"gpuconv WebGPU in the page: not timed: {error}", flush=True)
        if args.tfjs_webgpu:
            runtimes["tfjs_webgpu"] = runner.TfjsBench(gl="angle-egl", directory=Path(args.tfjs_dir), api="webgpu")
        for m, model in enumerate(models, 1):
            print(f"[{m}/{len(models)}] {model.title}: {len(model.layers)} distinct of {model.conv_count} "
                  f"convolutions, {2 * model.macs / 1e9:.2f} GFLOP", file=sys.stderr, flush=True)
            rows = []
            started = time.perf_counter()
            for i, layer in enumerate(model.layers, 1):
                print(f"  [{i}/{len(model.layers)}] {layer.name} x{layer.count} ...", file=sys.stderr, flush=True)
                rows.append(time_layer(layer, runtimes, repeat, args.warmup, args.fuse, args.check or args.quick,
                                       args.rounds))
            total = model_totals(model, rows)
            total["warm_run_s"] = time.perf_counter() - started
            if args.cold:
                print("  cold ...", file=sys.stderr, flush=True)
                for key, seconds in time_cold(model, args).items():
                    total[f"cold_{key}_s"] = seconds
            total["load"] = bench._load()
            totals.append(total)
            report["models"].append(dict(total, layers=rows))
            line = f"  {model.title}: native {_ms(total['native_s'])} ms ({total['native_gflops']:.1f} GF/s)"
            for label, _, _ in RATIOS:
                if label in total:
                    worst = total[f"{label} worst"]
                    line += f"; {label} {total[label]:.2f}x (worst {worst['layer']}: {worst['ratio']:.2f}x)"
            print(line, file=sys.stderr, flush=True)
            if args.layers:
                print(format_layers(model, rows), flush=True)
                print(flush=True)
    finally:
        for key in ("tfjs", "tfjs_webgpu"):
            if runtimes.get(key) is not None:
                runtimes[key].close()
        for key in ("browser", "webgpu_page", "webgpu"):
            if runtimes.get(key) is not None:
                runtimes[key].release()
    print(format_models(totals))
    report["load_after"] = bench._load()
    print(f"{report['load_after']} at the end")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(report, handle, indent=2, default=str)
    if args.png:
        write_png(totals, args.png)
    return 0


if __name__ == "__main__":
    sys.exit(main())

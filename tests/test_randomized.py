"""Seeded random configurations of every op against the float64 oracle (gpuconv.checks).

The agreement test runs 200 configurations with a fixed seed (each distinct
program is compiled once by the driver: shapes are kept small).  The coverage
test checks, without GL, that the generator reaches every op and argument form.
"""

import numpy as np

import gpuconv.ops

from gpuconv import checks, cli, geometry, registry
from gpuconv.arguments import ACTIVATIONS

SEED, COUNT = 20240601, 200

#: The ops of one forward 2-D convolution that takes algorithm= (their geometry's every field is checked below).
FORWARD_2D = {name for name, e in registry.OPS.items() if e.algorithms and not e.signature}
#: The gradient, transposed and 3-D ops.
NEWER = set(registry.OPS) - FORWARD_2D


def test_the_generator_is_seeded_and_deterministic():
    assert checks.config_at(3, 17) == checks.config_at(3, 17)
    assert checks.config_at(3, 17) != checks.config_at(3, 18)
    config = checks.config_at(3, 17)
    first, second = config.arrays(), config.arrays()
    for a, b in zip(first[0], second[0]):
        np.testing.assert_array_equal(a, b)


def _pair(value):
    if isinstance(value, int):
        return (value, value)
    return tuple(value) if len(value) == 2 else None


def test_the_generator_covers_every_op_and_argument():
    configs = [checks.config_at(SEED, i) for i in range(1500)]
    seen = {key: set() for key in ("op", "depth_mod_4", "format", "padding", "rounding", "activation",
                                   "prelu", "dtype", "unbatched", "groups", "multiplier", "stride",
                                   "dilation", "stride_form", "bias", "filter_size", "spatial", "algorithm")}
    for c in configs:
        if c.op not in FORWARD_2D:
            continue
        o = c.options
        plan = checks.plan_call(c.op, c.x, c.filters, o)
        g = plan.steps[0][0].geometry
        seen["op"].add(c.op)
        seen["depth_mod_4"].add((c.op, g.in_channels_per_group % 4))
        seen["format"].add(o["data_format"])
        padding = o["padding"]
        seen["padding"].add((c.op, "str" if isinstance(padding, str) else
                             "int" if isinstance(padding, int) else f"list{len(padding)}"))
        seen["rounding"].add(o.get("dim_rounding_mode"))
        seen["activation"].add(o.get("activation"))
        seen["prelu"].add(None if c.prelu is None else
                          "channel" if len(c.prelu) == 1 and c.prelu != (1,)
                          and c.prelu[0] == checks.result_channels(c.op, plan, o["data_format"])
                          else "full" if c.prelu == tuple(plan.out_shape) else "broadcast")
        seen["dtype"].add(c.dtype)
        seen["unbatched"].add((c.op, len(c.x) == (2 if c.op == "conv1d" else 3)))
        seen["groups"].add(g.groups > 1)
        seen["multiplier"].add(g.channel_multiplier if g.depthwise else None)
        seen["stride"].add(max(g.stride_height, g.stride_width))
        seen["dilation"].add(max(g.dilation_height, g.dilation_width))
        seen["stride_form"].add(type(o.get("strides", 0)).__name__)
        seen["bias"].add(c.bias is not None)
        seen["filter_size"].update((g.filter_height, g.filter_width))
        seen["spatial"].update((g.in_height, g.in_width))
        seen["algorithm"].add((c.op, o.get("algorithm")))
        # never a stride and a dilation both above 1; the generator only makes valid calls
        assert not (max(g.stride_height, g.stride_width) > 1 and max(g.dilation_height, g.dilation_width) > 1)
    assert {c.op for c in configs} == set(checks.OP_WEIGHTS)
    ops = FORWARD_2D
    assert seen["op"] == ops
    assert seen["depth_mod_4"] >= {(op, r) for op in ops for r in range(4)}
    assert seen["format"] == {"NHWC", "NCHW", "NWC", "NCW"}
    assert seen["padding"] >= {(op, kind) for op in ops for kind in ("str", "int")}
    assert seen["padding"] >= {(op, "list2") for op in ops} | {(op, "list4") for op in ops}
    assert seen["padding"] >= {("conv1d", "list3")}
    assert seen["rounding"] == {None, *geometry.ROUNDING_MODES}
    assert seen["activation"] == {None, *ACTIVATIONS}
    assert seen["prelu"] == {None, "channel", "full", "broadcast"}
    assert seen["dtype"] == {"float16", "float32", "float64"}
    assert {(op, True) for op in ops} <= seen["unbatched"]
    assert seen["groups"] == {True, False}
    assert seen["multiplier"] >= {1, 2, 3}
    assert seen["stride"] == seen["dilation"] == {1, 2, 3}
    assert seen["stride_form"] >= {"int", "tuple", "list"}
    assert seen["bias"] == {True, False}
    assert seen["filter_size"] == set(range(1, 6))
    assert seen["spatial"] == set(range(1, 13))
    # every op with each algorithm= (packed only where it applies)
    assert seen["algorithm"] >= {(op, a) for op in ops for a in ("auto", "direct")}
    assert {a for _, a in seen["algorithm"]} == set(gpuconv.ops.ALGORITHMS)


def test_the_generator_covers_the_gradient_transposed_and_3d_ops():
    configs = [checks.config_at(SEED, i) for i in range(1500)]
    seen = {key: set() for key in ("format", "padding", "rounding", "unbatched", "stride", "dilation",
                                   "stride_form", "bias", "activation", "dtype", "multiplier", "algorithm")}
    for c in configs:
        if c.op not in NEWER:
            continue
        o = c.options
        entry = registry.get(c.op)
        plan = checks.plan_call(c.op, c.x, c.filters, o)
        g = plan.steps[0][0].geometry
        axes = ("depth", "height", "width") if entry.spatial == 3 else ("height", "width")
        strides = [getattr(g, f"stride_{a}") for a in axes]
        dilations = [getattr(g, f"dilation_{a}") for a in axes]
        assert not (max(strides) > 1 and max(dilations) > 1)
        padding = o["padding"]
        seen["format"].add((c.op, o["data_format"]))
        seen["padding"].add((c.op, "str" if isinstance(padding, str) else "int" if isinstance(padding, int)
                             else f"list{len(padding)}"))
        seen["rounding"].add(o.get("dim_rounding_mode"))
        seen["unbatched"].add((c.op, len(c.x) == entry.spatial + 1))
        seen["stride"].add((c.op, max(strides)))
        seen["dilation"].add((c.op, max(dilations)))
        seen["stride_form"].add((entry.spatial, type(o["strides"]).__name__))
        seen["bias"].add((c.op, "none" if c.bias is None else "channel" if c.bias == (plan.out_shape[-1 if
                          o["data_format"].endswith("C") else -(entry.spatial + 1)],) else "broadcast"))
        seen["activation"].add((c.op, o.get("activation")))
        seen["dtype"].add(c.dtype)
        seen["multiplier"].add(g.channel_multiplier if getattr(g, "depthwise", False) else None)
        seen["algorithm"].add((c.op, o.get("algorithm")))
    assert {op for op, _ in seen["format"]} == NEWER
    assert seen["format"] >= {(op, f) for op in NEWER for f in registry.get(op).data_formats}
    assert seen["padding"] >= {(op, kind) for op in NEWER for kind in ("str", "int", "list2" if registry.get(op)
                                                                       .spatial == 2 else "list3")}
    assert {kind for _, kind in seen["padding"]} >= {"list4", "list5"}
    assert seen["rounding"] == {None, *geometry.ROUNDING_MODES}
    assert seen["unbatched"] >= {(op, True) for op in NEWER} | {(op, False) for op in NEWER}
    assert seen["stride"] >= {(op, s) for op in NEWER for s in (1, 2, 3)}
    assert seen["dilation"] >= {(op, d) for op in NEWER for d in (2, 3)}
    assert seen["stride_form"] >= {(2, "int"), (2, "tuple"), (2, "list"), (3, "int"), (3, "tuple"), (3, "list")}
    assert seen["bias"] >= {("conv2d_transpose", kind) for kind in ("none", "channel", "broadcast")}
    assert {a for op, a in seen["activation"] if op == "conv2d_transpose"} == {None, *ACTIVATIONS}
    assert seen["dtype"] == {"float16", "float32", "float64"}
    assert seen["multiplier"] >= {1, 2, 3}
    # conv2d_transpose and conv2d_backprop_input take algorithm= (no im2col), the others run
    # their direct programs only
    packed = {op for op in NEWER if registry.get(op).algorithms}
    assert packed == {"conv2d_transpose", "conv2d_backprop_input"}
    assert seen["algorithm"] >= {(op, a) for op in packed for a in ("auto", "direct", "packed")}
    assert {a for op, a in seen["algorithm"] if op not in packed} == {None}
    assert "im2col" not in {a for _, a in seen["algorithm"]}


def test_the_generator_draws_a_bias_that_broadcasts():
    kinds = set()
    for i in range(1500):
        c = checks.config_at(SEED, i)
        if c.bias is not None:
            plan = checks.plan_call(c.op, c.x, c.filters, c.options)
            out = plan.out_shape
            if len(c.bias) == 1 and c.bias != (1,):  # one per channel of the result (separable: pointwise)
                assert c.bias[0] == checks.result_channels(c.op, plan, c.options["data_format"]), c
            kinds.add((c.op, "channel" if len(c.bias) == 1 and c.bias != (1,) else
                       "scalar" if c.bias in ((), (1,)) else "full" if c.bias == tuple(out) else "broadcast"))
    assert kinds >= {(op, kind) for op in ("conv2d", "depthwise_conv2d", "separable_conv2d", "conv2d_transpose")
                     for kind in ("channel", "scalar", "full", "broadcast")}


def test_the_generator_draws_a_residual_for_every_fused_op():
    drawn = set()
    for i in range(600):
        c = checks.config_at(SEED, i)
        if c.residual is not None:
            assert registry.get(c.op).fused
            assert c.residual == tuple(checks.plan_call(c.op, c.x, c.filters, c.options).out_shape), c
            assert checks.oracle_result(c).shape == c.residual
            drawn.add(c.op)
    assert drawn == set(registry.ops_with("fused"))


def test_random_configurations_agree_with_the_oracle(runtime):
    report = checks.run_many(COUNT, SEED, runtime=runtime)
    assert report.count == COUNT and set(report.ops) == set(checks.OP_WEIGHTS)
    assert report.failed == 0, "\n".join(report.failures)
    assert report.largest <= 1e-5


def test_gpuconv_random_command(capsys, runtime):
    assert cli.main(["random", "--count", "8", "--seed", str(SEED)]) == 0
    captured = capsys.readouterr()
    last = captured.out.strip().splitlines()[-1]
    assert last.startswith("random: 8 passed, 0 failed, largest error ")
    assert "random [8/8]" in captured.err  # progress on stderr


def test_gpuconv_random_reports_each_failure_so_it_can_be_repeated(capsys, runtime, monkeypatch):
    monkeypatch.setattr(checks, "run_config",
                        lambda config, runtime=None: 0.5 if config.op == "conv1d" else 1e-7)
    assert cli.main(["random", "--count", "12", "--seed", "5", "--start", "3"]) == 1
    out = capsys.readouterr().out
    failures = [line for line in out.splitlines() if line.startswith("FAIL #")]
    assert failures and all("relative error 0.5 > 1e-05" in line for line in failures)
    index = int(failures[0].split("#")[1].split(":")[0])
    assert "gpuconv.conv1d(x " in out
    assert f"repeat: gpuconv random --seed 5 --start {index} --count 1" in out
    assert out.strip().splitlines()[-1].startswith(f"random: {12 - len(failures)} passed, {len(failures)} failed, "
                                                   f"largest error 0.5")
    # the repeat command runs exactly that configuration
    assert checks.config_at(5, index).op == "conv1d"

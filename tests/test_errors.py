"""Issue 5: bad input gets a clear TypeError or ValueError, before any GL is touched.

One table of (entry point, arguments, exception, message) rows covers every category
of bad input for every public entry point: ``gpuconv.conv2d``, ``depthwise_conv2d``,
``separable_conv2d``, ``conv1d``, ``gpuconv.torch.conv2d`` and
``gpuconv.caffe.Convolution``.  Each message must name the argument, say what was
expected and what was given.  The table runs with context creation made to fail,
so a check that came after the GPU work would show up as the wrong exception.
Categories an entry point has no argument for (a data format in PyTorch's
conv2d, a fused bias in separable_conv2d, ...) have no row for it.
"""

import re

import numpy as np
import pytest

import gpuconv
import gpuconv.runtimes.native
from gpuconv import caffe
from gpuconv import torch as gtorch
from gpuconv.layout import TextureTooLargeError

X = np.zeros((1, 5, 5, 3), np.float32)        # NHWC
W = np.zeros((3, 3, 3, 4), np.float32)        # [FH, FW, inC, outC]
DW = np.zeros((3, 3, 3, 2), np.float32)       # depthwise, multiplier 2
PW = np.zeros((1, 1, 6, 4), np.float32)       # pointwise
X1 = np.zeros((1, 10, 3), np.float32)         # NWC
W1 = np.zeros((3, 3, 4), np.float32)          # [FW, inC, outC]
XT = np.zeros((1, 3, 5, 5), np.float32)       # NCHW
WT = np.zeros((4, 3, 3, 3), np.float32)       # PyTorch / Caffe [outC, inC/groups, kH, kW]
B4 = np.zeros(4, np.float32)


def conv2d(x=X, filter=W, **kwargs):
    return gpuconv.conv2d(x, filter, **kwargs)


def depthwise(x=X, filter=DW, **kwargs):
    return gpuconv.depthwise_conv2d(x, filter, **kwargs)


def separable(x=X, depthwise_filter=DW, pointwise_filter=PW, **kwargs):
    return gpuconv.separable_conv2d(x, depthwise_filter, pointwise_filter, **kwargs)


def conv1d(x=X1, filter=W1, **kwargs):
    return gpuconv.conv1d(x, filter, **kwargs)


def torch_conv2d(input=XT, weight=WT, **kwargs):
    return gtorch.conv2d(input, weight, **kwargs)


def caffe_layer(bottom=XT, weight=WT, bias=B4, **param):
    """Build a Caffe Convolution layer (num_output 4, kernel 3 unless given) and run it on ``bottom``."""
    param = {"num_output": 4, "kernel_size": 3, **param}
    return caffe.Convolution(**param, weight=weight, bias=bias)(bottom)


NOT_FLOAT = r"must have a floating-point dtype \(float16, float32 or float64\), got"
TOO_BIG = (r"the filter \(effective size 7x7 after dilation\) does not fit in the padded input \(5x5\): "
           r"the output would be -1x-1")
# conv1d checks its stride, dilation and channels under its own names
# (geometry.check_conv1d_arguments), not as the height-1 conv2d it becomes.

ROWS = [
    # -- not an array where a tensor belongs ------------------------------------------------
    ("conv2d", conv2d, dict(x={}), TypeError, r"x must be a NumPy array of floats, got dict"),
    ("conv2d", conv2d, dict(x="abc"), TypeError, r"x must be a NumPy array of floats, got str"),
    ("conv2d", conv2d, dict(filter=None), TypeError, r"filter must be a NumPy array of floats, got NoneType"),
    ("conv2d", conv2d, dict(x=[[[[1.0, 2.0]], [[3.0]]]]), TypeError, r"x must be an array of floats, got a list that is not a rectangular"),
    ("conv2d", conv2d, dict(bias="b"), TypeError, r"bias must be a NumPy array of floats, got str"),
    ("conv2d", conv2d, dict(activation="prelu", prelu_weights={}), TypeError, r"prelu_weights must be a NumPy array of floats, got dict"),
    ("depthwise", depthwise, dict(x=None), TypeError, r"x must be a NumPy array of floats, got NoneType"),
    ("depthwise", depthwise, dict(filter={"w": 1}), TypeError, r"filter must be a NumPy array of floats, got dict"),
    ("separable", separable, dict(x="x"), TypeError, r"x must be a NumPy array of floats, got str"),
    ("separable", separable, dict(depthwise_filter=None), TypeError, r"filter must be a NumPy array of floats, got NoneType"),
    ("separable", separable, dict(pointwise_filter={}), TypeError, r"pointwise_filter must be a NumPy array of floats, got dict"),
    ("conv1d", conv1d, dict(x={}), TypeError, r"x must be a NumPy array of floats, got dict"),
    ("conv1d", conv1d, dict(filter="w"), TypeError, r"filter must be a NumPy array of floats, got str"),
    ("torch", torch_conv2d, dict(input=None), TypeError, r"input must be a NumPy array of floats, got NoneType"),
    ("torch", torch_conv2d, dict(weight={}), TypeError, r"weight must be a NumPy array of floats, got dict"),
    ("torch", torch_conv2d, dict(bias="b"), TypeError, r"bias must be a NumPy array of floats, got str"),
    ("caffe", caffe_layer, dict(bottom=None), TypeError, r"bottom must be a NumPy array of floats, got NoneType"),
    ("caffe", caffe_layer, dict(weight="w"), TypeError, r"weight must be a NumPy array of floats, got str"),
    ("caffe", caffe_layer, dict(bias={}), TypeError, r"bias must be a NumPy array of floats, got dict"),
    # -- integer, bool, complex or object dtypes ---------------------------------------------
    ("conv2d", conv2d, dict(x=X.astype(np.int32)), TypeError, r"x " + NOT_FLOAT + r" int32"),
    ("conv2d", conv2d, dict(filter=W.astype(bool)), TypeError, r"filter " + NOT_FLOAT + r" bool"),
    ("conv2d", conv2d, dict(x=X.astype(np.complex64)), TypeError, r"x " + NOT_FLOAT + r" complex64"),
    ("conv2d", conv2d, dict(x=X.astype(object)), TypeError, r"x " + NOT_FLOAT + r" object"),
    ("conv2d", conv2d, dict(x=[[[[True, False]]]]), TypeError, r"x must be an array of floats, got a list of bools"),
    ("conv2d", conv2d, dict(bias=B4.astype(np.int64)), TypeError, r"bias " + NOT_FLOAT + r" int64"),
    ("conv2d", conv2d, dict(activation="prelu", prelu_weights=B4.astype(np.uint8)), TypeError, r"prelu_weights " + NOT_FLOAT + r" uint8"),
    ("depthwise", depthwise, dict(x=X.astype(np.int64)), TypeError, r"x " + NOT_FLOAT + r" int64"),
    ("depthwise", depthwise, dict(filter=DW.astype(np.complex128)), TypeError, r"filter " + NOT_FLOAT + r" complex128"),
    ("separable", separable, dict(pointwise_filter=PW.astype(np.int16)), TypeError, r"pointwise_filter " + NOT_FLOAT + r" int16"),
    ("separable", separable, dict(x=X.astype(bool)), TypeError, r"x " + NOT_FLOAT + r" bool"),
    ("conv1d", conv1d, dict(x=X1.astype(object)), TypeError, r"x " + NOT_FLOAT + r" object"),
    ("conv1d", conv1d, dict(filter=W1.astype(np.int8)), TypeError, r"filter " + NOT_FLOAT + r" int8"),
    ("torch", torch_conv2d, dict(input=XT.astype(np.int64)), TypeError, r"input " + NOT_FLOAT + r" int64"),
    ("torch", torch_conv2d, dict(weight=WT.astype(np.complex64)), TypeError, r"weight " + NOT_FLOAT + r" complex64"),
    ("caffe", caffe_layer, dict(bottom=XT.astype(bool)), TypeError, r"bottom " + NOT_FLOAT + r" bool"),
    ("caffe", caffe_layer, dict(weight=WT.astype(np.int32)), TypeError, r"weight " + NOT_FLOAT + r" int32"),
    # -- wrong rank of input or filter --------------------------------------------------------
    ("conv2d", conv2d, dict(x=X[0, 0]), ValueError, r"x must be rank 3 or 4 \(\[batch, height, width, channels\] or \[height, width, channels\]\), got shape \(5, 3\)"),
    ("conv2d", conv2d, dict(filter=W[0]), ValueError, r"filter must be rank 4 \(\[filter_height, filter_width, in_channels / groups, out_channels\]\), got shape \(3, 3, 4\)"),
    ("depthwise", depthwise, dict(x=X[None]), ValueError, r"x must be rank 3 or 4 .*got shape \(1, 1, 5, 5, 3\)"),
    ("depthwise", depthwise, dict(filter=DW[0, 0]), ValueError, r"filter must be rank 4 \(\[filter_height, filter_width, in_channels, channel_multiplier\]\), got shape \(3, 2\)"),
    ("separable", separable, dict(x=X[0, 0, 0]), ValueError, r"x must be rank 3 or 4 .*got shape \(3,\)"),
    ("separable", separable, dict(pointwise_filter=PW[0, 0]), ValueError, r"pointwise_filter must be rank 4 \(\[1, 1, in_channels \* channel_multiplier, out_channels\]\), got shape \(6, 4\)"),
    ("conv1d", conv1d, dict(x=X), ValueError, r"x must be rank 2 or 3 \(\[batch, width, channels\]\), got shape \(1, 5, 5, 3\)"),
    ("conv1d", conv1d, dict(filter=W), ValueError, r"filter must be rank 3 \(\[filter_width, in_channels, out_channels\]\), got shape \(3, 3, 3, 4\)"),
    ("torch", torch_conv2d, dict(input=XT[0, 0]), ValueError, r"input must be rank 3 or 4 \(\[batch, in_channels, height, width\] or \[in_channels, height, width\]\), got shape \(5, 5\)"),
    ("torch", torch_conv2d, dict(weight=WT[0]), ValueError, r"weight must be rank 4 \(\[out_channels, in_channels/groups, kH, kW\]\), got shape \(3, 3, 3\)"),
    ("caffe", caffe_layer, dict(bottom=XT[0]), ValueError, r"bottom must be rank 4 \(\[num, channels, height, width\]\), got shape \(3, 5, 5\)"),
    ("caffe", caffe_layer, dict(weight=WT[0]), ValueError, r"weight must be rank 4 \(\[num_output, channels / group, kernel_h, kernel_w\]\), got shape \(3, 3, 3\)"),
    # -- channel mismatch between input and filter --------------------------------------------
    ("conv2d", conv2d, dict(filter=np.zeros((3, 3, 2, 4), np.float32)), ValueError, r"filter's in_channels \(dimension 2, 2\) must equal x's channels \(3\)"),
    ("conv2d", conv2d, dict(x=XT, data_format="NCHW", filter=np.zeros((3, 3, 5, 4), np.float32)), ValueError, r"filter's in_channels \(dimension 2, 5\) must equal x's channels \(3\)"),
    ("depthwise", depthwise, dict(filter=np.zeros((3, 3, 4, 1), np.float32)), ValueError, r"filter's in_channels \(dimension 2, 4\) must equal x's channels \(3\) for a depthwise convolution"),
    ("separable", separable, dict(depthwise_filter=np.zeros((3, 3, 2, 2), np.float32)), ValueError, r"filter's in_channels \(dimension 2, 2\) must equal x's channels \(3\) for a depthwise"),
    ("conv1d", conv1d, dict(filter=np.zeros((3, 2, 4), np.float32)), ValueError, r"filter's in_channels \(dimension 1 of \[filter_width, in_channels, out_channels\], 2\) must equal x's channels \(3\)"),
    ("torch", torch_conv2d, dict(weight=np.zeros((4, 2, 3, 3), np.float32)), ValueError, r"weight of shape \(4, 2, 3, 3\) expects an input with 2 channels .* but input of shape \(1, 3, 5, 5\) has 3 channels"),
    ("caffe", caffe_layer, dict(bottom=np.zeros((1, 2, 5, 5), np.float32)), ValueError, r"weight must have shape \[num_output, channels / group, kernel_h, kernel_w\] = \[4, 2, 3, 3\] for a bottom of shape \(1, 2, 5, 5\) and group=1, got shape \(4, 3, 3, 3\)"),
    # -- wrong pointwise-filter shape for separable ---------------------------------------------
    ("separable", separable, dict(pointwise_filter=np.zeros((1, 1, 5, 4), np.float32)), ValueError, r"pointwise_filter must have shape \[1, 1, in_channels \* channel_multiplier, out_channels\] = \[1, 1, 6, out_channels\], got \(1, 1, 5, 4\)"),
    ("separable", separable, dict(pointwise_filter=np.zeros((3, 3, 6, 4), np.float32)), ValueError, r"pointwise_filter must have shape \[1, 1, .*got \(3, 3, 6, 4\)"),
    # -- groups not dividing the channels -----------------------------------------------------
    ("conv2d", conv2d, dict(groups=2), ValueError, r"groups \(2\) must divide both x's channels \(3\) and the filter's out_channels \(4\)"),
    ("conv2d", conv2d, dict(x=np.zeros((1, 5, 5, 4), np.float32), filter=np.zeros((3, 3, 2, 3), np.float32), groups=2), ValueError, r"groups \(2\) must divide both x's channels \(4\) and the filter's out_channels \(3\)"),
    ("conv2d", conv2d, dict(groups=0), ValueError, r"groups must be a positive integer, got 0"),
    ("conv2d", conv2d, dict(groups=1.5), ValueError, r"groups must be a positive integer, got 1.5"),
    ("torch", torch_conv2d, dict(groups=2), ValueError, r"given groups=2, weight of shape \(4, 3, 3, 3\) expects an input with 6 channels"),
    ("torch", torch_conv2d, dict(weight=np.zeros((4, 1, 3, 3), np.float32), groups=3), ValueError, r"weight's out_channels \(dimension 0 of \[out_channels, in_channels/groups, kH, kW\], 4\) must be divisible by groups=3"),
    ("torch", torch_conv2d, dict(groups=0), ValueError, r"groups must be a positive integer, got 0"),
    ("caffe", caffe_layer, dict(group=3), ValueError, r"num_output \(4\) must be a multiple of group \(3\)"),
    ("caffe", caffe_layer, dict(group=2, weight=np.zeros((4, 1, 3, 3), np.float32)), ValueError, r"the input's channels \(3\) must be a multiple of group \(2\)"),
    # -- bias / prelu weights of the wrong size ---------------------------------------------------
    ("conv2d", conv2d, dict(bias=np.zeros(3, np.float32)), ValueError, r"bias must have one value per output channel, shape \(4,\), got shape \(3,\)"),
    ("conv2d", conv2d, dict(bias=np.zeros((2, 4), np.float32)), ValueError, r"bias must have one value per output channel, shape \(4,\), got shape \(2, 4\), which does not broadcast to the output shape \(1, 3, 3, 4\)"),
    ("conv2d", conv2d, dict(activation="prelu", prelu_weights=np.zeros(3, np.float32)), ValueError, r"prelu_weights of shape \(3,\) do not broadcast to the output shape \(1, 3, 3, 4\); give one weight per channel \(4,\)"),
    ("conv2d", conv2d, dict(activation="prelu"), ValueError, r"activation 'prelu' needs prelu_weights"),
    ("conv2d", conv2d, dict(prelu_weights=B4), ValueError, r"prelu_weights is only used with activation='prelu', got activation='linear'"),
    ("depthwise", depthwise, dict(bias=B4), ValueError, r"bias must have one value per output channel, shape \(6,\), got shape \(4,\)"),
    ("depthwise", depthwise, dict(activation="prelu", prelu_weights=np.zeros((2, 2), np.float32)), ValueError, r"prelu_weights of shape \(2, 2\) do not broadcast to the output shape \(1, 3, 3, 6\)"),
    ("torch", torch_conv2d, dict(bias=np.zeros(5, np.float32)), ValueError, r"bias must have shape \[out_channels\] = \[4\] for a weight of shape \(4, 3, 3, 3\), got shape \(5,\)"),
    ("caffe", caffe_layer, dict(bias=np.zeros(3, np.float32)), ValueError, r"bias must have shape \[num_output\] = \[4\], got shape \(3,\)"),
    ("caffe", caffe_layer, dict(bias=None), ValueError, r"bias_term is true: a bias of shape \[num_output\] = \[4\] is required"),
    # -- strides or dilations zero, negative or not integers -----------------------------------------
    ("conv2d", conv2d, dict(strides=0), ValueError, r"strides must be positive integers, got 0"),
    ("conv2d", conv2d, dict(strides=(1, -2)), ValueError, r"strides must be positive integers, got \(1, -2\)"),
    ("conv2d", conv2d, dict(strides=1.5), TypeError, r"strides must be a positive int, an \(h, w\) pair of ints or a 4-list of ints, got 1.5"),
    ("conv2d", conv2d, dict(strides="2"), TypeError, r"strides must be a positive int, .*got '2'"),
    ("conv2d", conv2d, dict(strides=[2, 2, 2, 2]), ValueError, r"strides as a 4-list must be \[1, h, w, 1\] for NHWC \(batch and channel entries 1\), got \[2, 2, 2, 2\]"),
    ("conv2d", conv2d, dict(dilations=True), TypeError, r"dilations must be a positive int, .*got True"),
    ("conv2d", conv2d, dict(dilations=[1, 0]), ValueError, r"dilations must be positive integers, got \[1, 0\]"),
    ("depthwise", depthwise, dict(strides=-1), ValueError, r"strides must be positive integers, got -1"),
    ("depthwise", depthwise, dict(dilations=2.0), TypeError, r"dilations must be a positive int, .*got 2.0"),
    ("separable", separable, dict(strides=(0, 1)), ValueError, r"strides must be positive integers, got \(0, 1\)"),
    ("separable", separable, dict(dilations=(1, 1.5)), TypeError, r"dilations must be a positive int, .*got \(1, 1.5\)"),
    ("conv1d", conv1d, dict(stride=0), ValueError, r"stride must be a positive int for conv1d, got 0"),
    ("conv1d", conv1d, dict(dilation=-1), ValueError, r"dilation must be a positive int for conv1d, got -1"),
    ("conv1d", conv1d, dict(stride=1.5), TypeError, r"stride must be a positive int for conv1d \(one value, along the width\), got 1.5"),
    ("conv1d", conv1d, dict(dilation=(1, 2)), TypeError, r"dilation must be a positive int for conv1d \(one value, along the width\), got \(1, 2\)"),
    ("torch", torch_conv2d, dict(stride=0), ValueError, r"stride must be positive integers, got 0"),
    ("torch", torch_conv2d, dict(stride=1.5), TypeError, r"stride must be an int or a pair \(h, w\) of ints, got 1.5"),
    ("torch", torch_conv2d, dict(dilation=(1, 2, 3)), ValueError, r"dilation must be an int or a pair \(h, w\) of ints, got \(1, 2, 3\)"),
    ("caffe", caffe_layer, dict(stride=0), ValueError, r"stride must be positive, got 0"),
    ("caffe", caffe_layer, dict(stride=1.5), TypeError, r"stride must be an integer, got 1.5"),
    ("caffe", caffe_layer, dict(dilation=-1), ValueError, r"dilation must be positive, got -1"),
    # -- strides and dilations both above 1 ------------------------------------------------------------
    ("depthwise", depthwise, dict(strides=(1, 2), dilations=(2, 1)), ValueError, r"strides and dilations cannot both be greater than 1 for a depthwise or separable convolution \(TF and TF.js refuse it too; conv2d accepts it\), got strides=\(1, 2\) and dilations=\(2, 1\)"),
    ("separable", separable, dict(strides=2, dilations=(1, 2)), ValueError, r"strides and dilations cannot both be greater than 1"),
    # -- unknown padding strings or data formats ---------------------------------------------------------
    ("conv2d", conv2d, dict(padding="FULL"), ValueError, r"padding must be 'SAME', 'VALID', an int or explicit pads, got 'FULL'"),
    ("conv2d", conv2d, dict(padding=None), TypeError, r"padding must be 'SAME', 'VALID', an int or explicit pads, got None"),
    ("depthwise", depthwise, dict(padding="causal"), ValueError, r"padding must be 'SAME', 'VALID', .*got 'causal'"),
    ("separable", separable, dict(padding=""), ValueError, r"padding must be 'SAME', 'VALID', .*got ''"),
    ("conv1d", conv1d, dict(padding="causal"), ValueError, r"padding must be 'SAME', 'VALID', .*got 'causal'"),
    ("torch", torch_conv2d, dict(padding="full"), ValueError, r"padding must be 'same', 'valid', an int or a pair \(padH, padW\), got 'full'"),
    ("caffe", caffe_layer, dict(pad="same"), TypeError, r"pad must be an integer, got 'same'"),
    ("conv2d", conv2d, dict(data_format="NWC"), ValueError, r"data_format must be 'NHWC' or 'NCHW', got 'NWC'"),
    ("depthwise", depthwise, dict(data_format=None), ValueError, r"data_format must be 'NHWC' or 'NCHW', got None"),
    ("separable", separable, dict(data_format="CHWN"), ValueError, r"data_format must be 'NHWC' or 'NCHW', got 'CHWN'"),
    ("conv1d", conv1d, dict(data_format="NHWC"), ValueError, r"data_format must be 'NWC' or 'NCW' for conv1d, got 'NHWC'"),
    # -- negative explicit pads ---------------------------------------------------------------------------
    ("conv2d", conv2d, dict(padding=-1), ValueError, r"padding must be non-negative, got -1"),
    ("conv2d", conv2d, dict(padding=[[0, 0], [-1, 1]]), ValueError, r"explicit padding must be non-negative, got \[\[0, 0\], \[-1, 1\]\]"),
    ("depthwise", depthwise, dict(padding=[[0, 0], [1, 1], [0, -2], [0, 0]]), ValueError, r"explicit padding must be non-negative, got \[\[0, 0\], \[1, 1\], \[0, -2\], \[0, 0\]\]"),
    ("separable", separable, dict(padding=-2), ValueError, r"padding must be non-negative, got -2"),
    ("conv1d", conv1d, dict(padding=[-1, 2]), ValueError, r"explicit padding must be non-negative, got \[-1, 2\]"),
    ("conv1d", conv1d, dict(padding=-3), ValueError, r"padding must be non-negative, got -3"),
    ("torch", torch_conv2d, dict(padding=(1, -1)), ValueError, r"negative padding is not supported, got padding=\(1, -1\)"),
    ("caffe", caffe_layer, dict(pad=-1), ValueError, r"pad must be non-negative, got -1"),
    ("caffe", caffe_layer, dict(pad_h=-1), ValueError, r"pad_h must be non-negative, got -1"),
    # -- a non-integer pad; a non-integer, 'same' or 'valid' pad with dim_rounding_mode -----------------------------
    ("conv2d", conv2d, dict(padding=1.5), ValueError, r"padding must be an integer number of pixels, got 1.5"),
    ("conv2d", conv2d, dict(padding=[[0, 1.0], [1, 1]]), ValueError, r"explicit padding must hold integers, got \[\[0, 1.0\], \[1, 1\]\]"),
    ("conv2d", conv2d, dict(padding=1.5, dim_rounding_mode="floor"), ValueError, r"padding must be an integer when dim_rounding_mode is given \('floor'\), got 1.5"),
    ("conv2d", conv2d, dict(padding="same", dim_rounding_mode="ceil"), ValueError, r"padding must be an integer when dim_rounding_mode is given \('ceil'\), got 'same'"),
    ("depthwise", depthwise, dict(padding="VALID", dim_rounding_mode="round"), ValueError, r"padding must be an integer when dim_rounding_mode is given \('round'\), got 'VALID'"),
    ("separable", separable, dict(padding=0.5), ValueError, r"padding must be an integer number of pixels, got 0.5"),
    ("conv1d", conv1d, dict(padding=[1, 0.5]), ValueError, r"explicit padding must hold integers, got \[1, 0.5\]"),
    ("conv1d", conv1d, dict(padding=2.5, dim_rounding_mode="ceil"), ValueError, r"padding must be an integer when dim_rounding_mode is given \('ceil'\), got 2.5"),
    ("conv1d", conv1d, dict(padding="same", dim_rounding_mode="floor"), ValueError, r"padding must be an integer when dim_rounding_mode is given \('floor'\), got 'same'"),
    ("torch", torch_conv2d, dict(padding=1.5), TypeError, r"padding must be 'same', 'valid', an int or a pair \(padH, padW\) of ints, got 1.5"),
    ("caffe", caffe_layer, dict(pad=0.5), TypeError, r"pad must be an integer, got 0.5"),
    # -- unknown activation or rounding mode ----------------------------------------------------------------
    ("conv2d", conv2d, dict(activation="mish"), ValueError, r"activation must be one of 'linear', 'relu', 'relu6', 'elu', 'sigmoid', 'leakyrelu', 'prelu', 'swish', 'hard_swish', 'hard_sigmoid', 'gelu', 'gelu_tanh' or None, got 'mish'"),
    ("conv2d", conv2d, dict(activation="leakyrelu", leakyrelu_alpha="0.2"), TypeError, r"leakyrelu_alpha must be a finite real number, got '0.2'"),
    ("depthwise", depthwise, dict(activation=print), ValueError, r"activation must be one of .* or None, got <built-in function print>"),
    ("conv2d", conv2d, dict(padding=1, dim_rounding_mode="up"), ValueError, r"dim_rounding_mode must be one of 'floor', 'round', 'ceil' or None, got 'up'"),
    ("depthwise", depthwise, dict(padding=1, dim_rounding_mode="Floor"), ValueError, r"dim_rounding_mode must be one of 'floor', 'round', 'ceil' or None, got 'Floor'"),
    ("conv1d", conv1d, dict(padding=1, dim_rounding_mode="trunc"), ValueError, r"dim_rounding_mode must be one of 'floor', 'round', 'ceil' or None, got 'trunc'"),
    # -- a filter larger than the padded input: the same message from every entry point ------------------------
    ("conv2d", conv2d, dict(filter=np.zeros((7, 7, 3, 4), np.float32)), ValueError, TOO_BIG),
    ("depthwise", depthwise, dict(filter=np.zeros((7, 7, 3, 1), np.float32)), ValueError, TOO_BIG),
    ("separable", separable, dict(depthwise_filter=np.zeros((7, 7, 3, 2), np.float32)), ValueError, TOO_BIG),
    ("torch", torch_conv2d, dict(weight=np.zeros((4, 3, 7, 7), np.float32)), ValueError, TOO_BIG),
    ("caffe", caffe_layer, dict(kernel_size=7, weight=np.zeros((4, 3, 7, 7), np.float32)), ValueError, TOO_BIG),
    ("conv1d", conv1d, dict(filter=np.zeros((12, 3, 4), np.float32)), ValueError,
     r"the filter \(effective size 1x12 after dilation\) does not fit in the padded input \(1x10\)"),
    ("conv2d", conv2d, dict(dilations=3), ValueError, r"the filter \(effective size 7x7 after dilation\) does not fit"),
    ("conv2d", conv2d, dict(padding=[[0, 0], [0, 1]], filter=np.zeros((1, 7, 3, 4), np.float32)), ValueError, r"effective size 1x7 after dilation\) does not fit in the padded input \(5x6\)"),
]


def _id(row):
    values = row.values if hasattr(row, "values") else row
    name, _, kwargs, exc, _ = values
    def short(v):
        if isinstance(v, np.ndarray):
            return f"{v.dtype}{list(v.shape)}"
        return re.sub(r"\s+", "", repr(v))[:24]
    return f"{name}-{exc.__name__}-" + ",".join(f"{k}={short(v)}" for k, v in kwargs.items())


@pytest.fixture
def no_gl(monkeypatch):
    """Make every attempt at a GL context fail loudly, and forget this thread's default runtime."""
    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise gpuconv.GLUnavailableError("test: the argument checks must come before any GL")

    monkeypatch.setattr(gpuconv.runtimes.native, "create_context", refuse)
    monkeypatch.setattr(gpuconv.runtimes._defaults, "holder", None, raising=False)
    return attempts


@pytest.mark.parametrize("name, call, kwargs, exception, pattern", ROWS, ids=[_id(r) for r in ROWS])
def test_bad_input_is_refused_clearly_before_any_gl(no_gl, name, call, kwargs, exception, pattern):
    with pytest.raises(exception, match=pattern) as info:
        call(**kwargs)
    assert type(info.value) in (TypeError, ValueError), type(info.value)  # not a subclass of something else
    assert not no_gl, "a GL context was asked for before the arguments were checked"


def test_the_table_covers_every_category_for_every_entry_point():
    names = {(r.values if hasattr(r, "values") else r)[0] for r in ROWS}
    assert names == {"conv2d", "depthwise", "separable", "conv1d", "torch", "caffe"}
    patterns = [(r.values if hasattr(r, "values") else r) for r in ROWS]
    for entry in names:
        texts = " | ".join(p[4] for p in patterns if p[0] == entry)
        for category in ("must be a NumPy array", "floating-point dtype", "rank", "channels",
                         "does not fit in the padded input", "positive",
                         "non-negative|negative padding", "integer", "pad"):
            assert re.search(category, texts), (entry, category)
    for entry in ("depthwise", "separable"):  # conv2d, conv1d and the adapters take both, as TF's conv2d does
        texts = " | ".join(p[4] for p in patterns if p[0] == entry)
        assert "both be greater than 1" in texts, entry
    for entry in ("conv2d", "depthwise", "separable", "conv1d"):  # the TF-style arguments
        texts = " | ".join(p[4] for p in patterns if p[0] == entry)
        for category in ("data_format must be", "padding must be 'SAME', 'VALID'"):
            assert category in texts, (entry, category)
    for entry in ("conv2d", "depthwise", "conv1d"):
        texts = " | ".join(p[4] for p in patterns if p[0] == entry)
        assert "dim_rounding_mode must be one of" in texts and "when dim_rounding_mode is given" in texts
    for entry in ("conv2d", "depthwise"):  # the fused epilogue
        texts = " | ".join(p[4] for p in patterns if p[0] == entry)
        assert "activation must be one of" in texts and "bias must have one value" in texts


def test_a_filter_too_large_gets_the_same_message_everywhere(no_gl):
    messages = set()
    for call, kwargs in ((conv2d, dict(filter=np.zeros((7, 7, 3, 4), np.float32))),
                         (depthwise, dict(filter=np.zeros((7, 7, 3, 1), np.float32))),
                         (separable, dict(depthwise_filter=np.zeros((7, 7, 3, 2), np.float32))),
                         (torch_conv2d, dict(weight=np.zeros((4, 3, 7, 7), np.float32))),
                         (caffe_layer, dict(kernel_size=7, weight=np.zeros((4, 3, 7, 7), np.float32))),
                         (gpuconv.oracle.conv2d, dict(x=X, filter=np.zeros((7, 7, 3, 4), np.float32)))):
        with pytest.raises(ValueError) as info:
            call(**kwargs)
        messages.add(str(info.value))
    assert len(messages) == 1, messages
    # ... and the shapes-only entry point says it too, without GL
    with pytest.raises(ValueError, match=TOO_BIG):
        gpuconv.shader_source("conv2d", (1, 5, 5, 3), (7, 7, 3, 4))


def test_a_tensor_that_fits_no_texture_is_refused_with_the_limit(no_gl):
    with pytest.raises(TextureTooLargeError) as info:
        gpuconv.shader_source("conv2d", (2, 20, 30, 3), (3, 3, 3, 4), padding="SAME", max_texture_size=32)
    assert isinstance(info.value, ValueError)
    assert re.search(r"a tensor of shape \(2, 20, 30, 3\) \(3600 values\) does not fit in one texture: "
                     r"the limit is 32x32 = 1024 values", str(info.value))


def test_a_runtime_with_a_lowered_limit_refuses_before_drawing(runtime, monkeypatch):
    monkeypatch.setattr(runtime, "max_texture_size", 8)
    draws = []
    monkeypatch.setattr(type(runtime), "draw", lambda self, *a: draws.append(a))
    x = np.zeros((1, 10, 10, 1), np.float32)
    for call in (lambda: gpuconv.conv2d(x, np.zeros((3, 3, 1, 1), np.float32), runtime=runtime),
                 lambda: gpuconv.separable_conv2d(x, np.zeros((3, 3, 1, 1), np.float32),
                                                  np.zeros((1, 1, 1, 2), np.float32), runtime=runtime),
                 lambda: gpuconv.conv1d(np.zeros((1, 100, 1), np.float32), np.zeros((3, 1, 1), np.float32),
                                        runtime=runtime)):
        with pytest.raises(TextureTooLargeError, match=r"the limit is 8x8 = 64 values"):
            call()
    assert not draws


# -- odd but valid values never give a wrong answer ---------------------------------------------------


def test_unusual_array_layouts_and_number_types_give_the_right_answer(runtime):
    rng = np.random.default_rng(5)
    x = rng.uniform(-1, 1, (2, 7, 6, 3)).astype(np.float32)
    w = rng.uniform(-1, 1, (3, 3, 3, 4)).astype(np.float32)
    expected = gpuconv.oracle.conv2d(x, w, strides=2, padding=1)
    variants = {
        "big-endian": (x.astype(">f4"), w.astype(">f4")),
        "Fortran order": (np.asfortranarray(x), np.asfortranarray(w)),
        "negative strides": (x[:, ::-1, ::-1][:, ::-1, ::-1], w[::-1][::-1]),
        "non-contiguous view": (np.repeat(x, 2, axis=3)[..., ::2], np.repeat(w, 2, axis=2)[:, :, ::2]),
        "read-only": (np.frombuffer(x.tobytes(), np.float32).reshape(x.shape), w),
        "nested lists": (x.tolist(), w.tolist()),
    }
    for label, (xv, wv) in variants.items():
        y = gpuconv.conv2d(xv, wv, strides=np.int64(2), padding=np.int32(1), runtime=runtime)
        assert y.dtype == np.float32 and y.shape == expected.shape, label
        np.testing.assert_allclose(y, expected, rtol=0, atol=1e-5, err_msg=label)


# -- NaN and infinity propagate as in the oracle; the zero padding reads nothing outside ------------------

# Mesa's NIR optimiser rewrites `x < 0.0 ? 0.0 : x` into fmax(x, 0.0) (nir_opt_algebraic.py:
# (('bcsel', ('flt', a, b), b, a), ('fmax', a, b)), an exact rule, allowed because GLSL leaves
# NaN undefined) and llvmpipe's fmax returns the other operand for NaN: unguarded, relu(NaN)
# came out 0 and relu6(NaN) 6.  shaders/epilogue.glsl now tests isnan(x) first (as TF.js
# does); relu and relu6 below keep it honest.
NAN_ACTIVATIONS = [None, "relu", "relu6", "elu", "sigmoid", "leakyrelu", "prelu"]


def _with_specials(rng, shape, channel_axis):
    x = rng.uniform(-1, 1, shape).astype(np.float32)
    flat = x.reshape(-1)
    picks = rng.choice(flat.size, 6, replace=False)
    flat[picks] = [np.nan, np.inf, -np.inf, np.inf, -np.inf, np.nan]
    return x


def assert_same_specials_and_close(y, expected, tol=1e-5):
    assert y.shape == expected.shape and y.dtype == np.float32
    np.testing.assert_array_equal(np.isnan(y), np.isnan(expected), err_msg="NaN positions differ")
    np.testing.assert_array_equal(np.isposinf(y), np.isposinf(expected), err_msg="+inf positions differ")
    np.testing.assert_array_equal(np.isneginf(y), np.isneginf(expected), err_msg="-inf positions differ")
    finite = np.isfinite(expected)
    scale = max(float(np.max(np.abs(expected[finite]), initial=0.0)), 1e-30)
    assert np.max(np.abs(y[finite] - expected[finite]), initial=0.0) <= tol * scale


@pytest.mark.parametrize("activation", NAN_ACTIVATIONS)
@pytest.mark.parametrize("op, filter_shape, data_format", [
    ("conv2d", (3, 3, 5, 4), "NHWC"), ("conv2d", (2, 3, 5, 3), "NCHW"),
    ("depthwise_conv2d", (3, 3, 5, 2), "NHWC"), ("depthwise_conv2d", (3, 2, 5, 1), "NCHW"),
])
def test_nan_and_infinity_propagate_as_in_the_oracle(runtime, op, filter_shape, data_format, activation):
    rng = np.random.default_rng(11)
    shape = (2, 6, 7, 5) if data_format == "NHWC" else (2, 5, 6, 7)
    x = _with_specials(rng, shape, 3 if data_format == "NHWC" else 1)
    w = rng.uniform(-1, 1, filter_shape).astype(np.float32)
    out_c = filter_shape[3] * (5 if op == "depthwise_conv2d" else 1)
    kwargs = dict(padding="SAME", data_format=data_format, activation=activation,
                  bias=rng.uniform(-1, 1, out_c).astype(np.float32))
    if activation == "prelu":
        kwargs["prelu_weights"] = rng.uniform(0, 1, out_c).astype(np.float32)
    y = getattr(gpuconv, op)(x, w, **kwargs, runtime=runtime)
    expected = getattr(gpuconv.oracle, op)(x, w, **kwargs)
    assert np.isnan(expected).any() and np.isfinite(expected).any()
    if activation not in ("relu6", "sigmoid"):  # these two map every infinity to a finite value
        assert np.isinf(expected).any()
    assert_same_specials_and_close(y, expected)


# A program that fetched a zero for a tap outside the input and multiplied it by the weight
# (the packed conv2d's column-reuse path once did) would turn a NaN or infinite weight on a
# padding tap into 0 * inf = NaN; the direct programs and the oracle skip such taps.


@pytest.mark.parametrize("op, algorithm", [
    ("conv2d", "direct"), ("conv2d", "auto"),
    ("depthwise_conv2d", "direct"), ("depthwise_conv2d", "auto"),
])
def test_non_finite_filter_values_propagate_as_in_the_oracle(runtime, op, algorithm):
    rng = np.random.default_rng(12)
    x = rng.uniform(-1, 1, (1, 6, 6, 3)).astype(np.float32)
    w = rng.uniform(-1, 1, (3, 3, 3, 2)).astype(np.float32)
    w[1, 1, 0, 0], w[0, 2, 1, 1], w[2, 0, 2, 0] = np.inf, np.nan, -np.inf
    for kwargs in (dict(padding="SAME"), dict(padding="VALID", strides=2), dict(padding=[[2, 0], [0, 1]])):
        y = getattr(gpuconv, op)(x, w, **kwargs, algorithm=algorithm, runtime=runtime)
        assert_same_specials_and_close(y, getattr(gpuconv.oracle, op)(x, w, **kwargs))


def _huge_edges(rng, shape, h_axis, w_axis):
    """Small values inside, +-1e30 on the first and last row and column of every image."""
    x = rng.uniform(-1, 1, shape).astype(np.float32)
    edge = np.zeros(shape, bool)
    for axis in (h_axis, w_axis):
        index = [slice(None)] * len(shape)
        for end in (0, -1):
            index[axis] = end
            edge[tuple(index)] = True
    x[edge] = rng.choice([-1e30, 1e30], int(edge.sum())).astype(np.float32)
    return x


@pytest.mark.parametrize("op, data_format, limit", [
    ("conv2d", "NHWC", None), ("conv2d", "NCHW", None), ("depthwise_conv2d", "NHWC", None),
    ("depthwise_conv2d", "NCHW", None), ("conv2d", "NHWC", 40), ("depthwise_conv2d", "NCHW", 40),
])
def test_padding_taps_read_nothing_outside_the_input(runtime, monkeypatch, op, data_format, limit):
    # Every texel next to the input in memory (the row above, the column left, the
    # previous image) is a huge edge value, so a tap that read outside the input
    # instead of skipping it would move a border output by ~1e30.
    if limit is not None:  # wrapped (squarish) layouts: neighbours in the flat array
        monkeypatch.setattr(runtime, "max_texture_size", limit)
    rng = np.random.default_rng(13)
    shape = (2, 9, 8, 3) if data_format == "NHWC" else (2, 3, 9, 8)
    h_axis, w_axis = (1, 2) if data_format == "NHWC" else (2, 3)
    x = _huge_edges(rng, shape, h_axis, w_axis)
    w = rng.uniform(0.5, 1, (3, 3, 3, 2)).astype(np.float32)
    for kwargs in (dict(padding="SAME"), dict(padding=2, strides=2, dim_rounding_mode="ceil"),
                   dict(padding=[[2, 1], [1, 2]], dilations=2)):
        kwargs["data_format"] = data_format
        y = getattr(gpuconv, op)(x, w, **kwargs, runtime=runtime)
        expected = getattr(gpuconv.oracle, op)(x, w, **kwargs)
        magnitude = getattr(gpuconv.oracle, op)(np.abs(x), np.abs(w), **kwargs)  # sum of |x| |w| per output
        assert np.all(np.abs(y - expected) <= 1e-5 * magnitude + 1e-6), kwargs
        # the borders are where the padding is: they hold both huge and small outputs
        assert (np.abs(expected) > 1e29).any() and (np.abs(expected) < 10).any()

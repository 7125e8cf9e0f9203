{% extends "conv2d_backprop_filter.glsl" %}
{#- Conv3DDerFilterProgram (TF.js): one element df[wF, wR, wC, d1, d2] of the gradient of conv3d
    with respect to its filter per fragment: the sum over the batch and dy's positions
    (yF, yR, yC) of x[b, xF, xR, xC, d1] * dy[b, yF, yR, yC, d2], with
    xF = yF * stride + wF * dilation - padFront (and xR, xC alike); positions outside x (the
    zero padding) are skipped.  df is written as [FD * FH, FW, in_channels, out_channels].
    With slices > 1 each fragment sums only slice s of the batch's dy positions (in order),
    written at row (s * FD + wF) * FH + wR, as Conv2DDerFilterProgram's slices. -#}

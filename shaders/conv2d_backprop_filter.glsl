{% extends "program.glsl" %}
{#- Conv2DDerFilterProgram (TF.js): one element df[wR, wC, d1, d2] of the gradient of conv2d
    with respect to its filter per fragment: the sum over the batch and dy's positions
    (yR, yC) of x[b, xR, xC, d1] * dy[b, yR, yC, d2], xR = yR * stride + wR * dilation - padTop
    (and xC alike); positions outside x (the zero padding) are skipped.
    With slices > 1 (many dy positions) each fragment sums only slice s of them, the batch's
    dy positions in order, and writes df's rows for slice s at s * FH + wR: llvmpipe ends
    every loop of a fragment after 65535 iterations in all, and short float32 sums drift less;
    SliceSumProgram adds the slices up.  Written for any spatial rank (gradient_macros.glsl):
    Conv3DDerFilterProgram and DepthwiseConv2DDerFilterProgram extend it. -#}

{% from "gradient_macros.glsl" import filter_tap, dy_loop %}

{% macro getX(channel) -%}
{{ tensors.read("getX", "b", "x", g, channel, channels_last) }}
{%- endmacro %}
{% macro getDy(channel) -%}
{{ tensors.read("getDy", "b", "y", g, channel, channels_last) }}
{%- endmacro %}

{% block main %}
void main() {
  ivec4 coords = getOutputCoords();
{{ filter_tap(g, slices) }}
  int wC = coords.y;
  int d1 = coords.z;
{% block out_channel %}
  int d2 = coords.w;
{% endblock %}

  float dotProd = 0.0;
{% call dy_loop(g, slices, slice_length) %}
        dotProd += {{ getX("d1") }} * {{ getDy("d2") }};
{% endcall %}

  setOutput(dotProd);
}
{% endblock %}

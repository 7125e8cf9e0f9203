{% extends "program.glsl" %}
{#- Conv2DDerInputProgram (TF.js): one element of dx, the gradient of conv2d with respect to
    its input, per fragment (also the transposed convolution, then with its fused epilogue).
    dx[b, xR, xC, d1] sums dy[b, dyR, dyC, d2] * W[FH-1-wR, FW-1-wC, d1, d2] over the taps
    whose dy position (xR - padTopT + wR * dilation) / stride is a whole number inside dy:
    the filter flipped by index, run over dy's window with the transposed pads
    padTopT = (effective filter height - 1) - padTop (and left alike).  Out channels d2 by
    vec4, the 1, 2 or 3 left over in one branch chosen here. -#}

{% from "gradient_macros.glsl" import dy_window_loop %}

{% macro getDy(depth) -%}
{{ tensors.read("getDy", "batch", "dy", g, depth, channels_last) }}
{%- endmacro %}
{% macro getW(depth) -%}
getW(wRPerm, wCPerm, d1, {{ depth }})
{%- endmacro %}

{#- main()'s start: this fragment's dx element (batch, d1) and dyRCorner, dyCCorner (its
    position less the transposed pads), for dy_window_loop. -#}
{% macro dx_position() %}
  ivec4 coords = getOutputCoords();
  int batch = coords[0];
  int d1 = coords[{{ channel_axis }}];

  ivec2 dyCorner = ivec2(coords[{{ height_axis }}], coords[{{ width_axis }}]) - ivec2({{ pad_top_t }}, {{ pad_left_t }});
  int dyRCorner = dyCorner.x;
  int dyCCorner = dyCorner.y;
{%- endmacro %}

{% block main %}
void main() {
{{ dx_position() }}

  float dotProd = 0.0;
{% call dy_window_loop(g) %}

      {{ tensors.channel_dot(getDy, getW, depth_vec4, depth_remainder, "d2", "out", "dyValues", "wValues") | trim | indent(6) }}
{% endcall %}


{% if bias_full %}
  dotProd += getBias(coords.x, coords.y, coords.z, coords.w);
{{ fused.apply(epilogue_unbiased, "dotProd", "coords", "d1") }}
{% else %}
{{ fused.apply(epilogue, "dotProd", "coords", "d1") }}
{% endif %}
  setOutput(dotProd);
}
{% endblock %}

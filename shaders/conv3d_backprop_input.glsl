{% extends "program.glsl" %}
{% from "gradient_macros.glsl" import dy_window_loop %}
{#- Conv3DDerInputProgram (TF.js): one element of dx, the gradient of conv3d with respect to
    its input, per fragment (also the transposed 3-D convolution), as Conv2DDerInputProgram
    with a third (depth) filter loop: dx[b, xF, xR, xC, d1] sums
    dy[b, dyF, dyR, dyC, d2] * W[FD-1-wF, FH-1-wR, FW-1-wC, d1, d2] over the taps whose dy
    position is a whole number inside dy.  Out channels d2 by vec4, the 1, 2 or 3 left over
    in one branch chosen here.  dx is written as a rank-4 tensor, its first two dimensions
    folded into one (batch and depth for NDHWC, batch and channels for NCDHW). -#}

{% macro getDy(depth) -%}
{{ tensors.read("getDy", "batch", "dy", g, depth, channels_last) }}
{%- endmacro %}
{% macro getW(depth) -%}
getW(wFPerm, wRPerm, wCPerm, d1, {{ depth }})
{%- endmacro %}

{% block main %}
void main() {
  ivec4 coords = getOutputCoords();
{{ tensors.unfold_coords_3d("x", "d1", g.in_depth, g.in_channels, channels_last) }}

  int dyFCorner = xF - {{ pad_front_t }};
  int dyRCorner = xR - {{ pad_top_t }};
  int dyCCorner = xC - {{ pad_left_t }};

  float dotProd = 0.0;
{% call dy_window_loop(g) %}

      {{ tensors.channel_dot(getDy, getW, depth_vec4, depth_remainder, "d2", "out", "dyValues", "wValues") | trim | indent(6) }}
{% endcall %}


  setOutput(dotProd);
}
{% endblock %}

{% extends "program.glsl" %}
{#- Conv2DDerInputProgram (TF.js): one element of dx, the gradient of conv2d with respect to
    its input, per fragment (also the transposed convolution, then with its fused epilogue).
    dx[b, xR, xC, d1] sums dy[b, dyR, dyC, d2] * W[FH-1-wR, FW-1-wC, d1, d2] over the taps
    whose dy position (xR - padTopT + wR * dilation) / stride is a whole number inside dy:
    the filter flipped by index, run over dy's window with the transposed pads
    padTopT = (effective filter height - 1) - padTop (and left alike).  Out channels d2 by
    vec4, the 1, 2 or 3 left over in one branch chosen here. -#}

{% macro getDy(depth) -%}
{% if channels_last -%}
getDy(batch, dyR, dyC, {{ depth }})
{%- else -%}
getDy(batch, {{ depth }}, dyR, dyC)
{%- endif %}
{%- endmacro %}
{% macro getW(depth) -%}
getW(wRPerm, wCPerm, d1, {{ depth }})
{%- endmacro %}

{% from "gradient_macros.glsl" import dy_position %}

{% block main %}
void main() {
  ivec4 coords = getOutputCoords();
  int batch = coords[0];
  int d1 = coords[{{ channel_axis }}];

  ivec2 dyCorner = ivec2(coords[{{ height_axis }}], coords[{{ width_axis }}]) - ivec2({{ pad_top_t }}, {{ pad_left_t }});
  int dyRCorner = dyCorner.x;
  int dyCCorner = dyCorner.y;

  float dotProd = 0.0;
  for (int wR = 0; wR < {{ g.filter_height }}; wR++) {
    int dyRNum = dyRCorner + wR * {{ g.dilation_height }};
{{ dy_position("dyR", "dyRNum", g.stride_height, g.out_height) }}
    int wRPerm = {{ g.filter_height - 1 }} - wR;
    for (int wC = 0; wC < {{ g.filter_width }}; wC++) {
      int dyCNum = dyCCorner + wC * {{ g.dilation_width }};
{{ dy_position("dyC", "dyCNum", g.stride_width, g.out_width) | indent(2, first=True) }}
      int wCPerm = {{ g.filter_width - 1 }} - wC;

      {{ tensors.channel_dot(getDy, getW, depth_vec4, depth_remainder, "d2", "out", "dyValues", "wValues") | trim | indent(6) }}
    }
  }

{% if bias_full %}
  dotProd += getBias(coords.x, coords.y, coords.z, coords.w);
{{ fused.apply(epilogue_unbiased, "dotProd", "coords", "d1") }}
{% else %}
{{ fused.apply(epilogue, "dotProd", "coords", "d1") }}
{% endif %}
  setOutput(dotProd);
}
{% endblock %}

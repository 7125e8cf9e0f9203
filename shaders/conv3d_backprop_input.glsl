{% extends "program.glsl" %}
{% from "gradient_macros.glsl" import dy_position %}
{#- Conv3DDerInputProgram (TF.js): one element of dx, the gradient of conv3d with respect to
    its input, per fragment (also the transposed 3-D convolution), as Conv2DDerInputProgram
    with a third (depth) filter loop: dx[b, xF, xR, xC, d1] sums
    dy[b, dyF, dyR, dyC, d2] * W[FD-1-wF, FH-1-wR, FW-1-wC, d1, d2] over the taps whose dy
    position is a whole number inside dy.  Out channels d2 by vec4, the 1, 2 or 3 left over
    in one branch chosen here.  dx is written as a rank-4 tensor, its first two dimensions
    folded into one (batch and depth for NDHWC, batch and channels for NCDHW). -#}

{% macro getDy(depth) -%}
{% if channels_last -%}
getDy(batch, dyF, dyR, dyC, {{ depth }})
{%- else -%}
getDy(batch, {{ depth }}, dyF, dyR, dyC)
{%- endif %}
{%- endmacro %}
{% macro getW(depth) -%}
getW(wFPerm, wRPerm, wCPerm, d1, {{ depth }})
{%- endmacro %}

{% block main %}
void main() {
  ivec4 coords = getOutputCoords();
{% if channels_last %}
  // coords: (batch * {{ g.in_depth }} + depth, row, column, channel)
  int batch = coords.x / {{ g.in_depth }};
  int xF = coords.x - batch * {{ g.in_depth }};
  int xR = coords.y;
  int xC = coords.z;
  int d1 = coords.w;
{% else %}
  // coords: (batch * {{ g.in_channels }} + channel, depth, row, column)
  int batch = coords.x / {{ g.in_channels }};
  int d1 = coords.x - batch * {{ g.in_channels }};
  int xF = coords.y;
  int xR = coords.z;
  int xC = coords.w;
{% endif %}

  int dyFCorner = xF - {{ pad_front_t }};
  int dyRCorner = xR - {{ pad_top_t }};
  int dyCCorner = xC - {{ pad_left_t }};

  float dotProd = 0.0;
  for (int wF = 0; wF < {{ g.filter_depth }}; wF++) {
    int dyFNum = dyFCorner + wF * {{ g.dilation_depth }};
{{ dy_position("dyF", "dyFNum", g.stride_depth, g.out_depth) }}
    int wFPerm = {{ g.filter_depth - 1 }} - wF;
    for (int wR = 0; wR < {{ g.filter_height }}; wR++) {
      int dyRNum = dyRCorner + wR * {{ g.dilation_height }};
{{ dy_position("dyR", "dyRNum", g.stride_height, g.out_height) | indent(2, first=True) }}
      int wRPerm = {{ g.filter_height - 1 }} - wR;
      for (int wC = 0; wC < {{ g.filter_width }}; wC++) {
        int dyCNum = dyCCorner + wC * {{ g.dilation_width }};
{{ dy_position("dyC", "dyCNum", g.stride_width, g.out_width) | indent(4, first=True) }}
        int wCPerm = {{ g.filter_width - 1 }} - wC;

        {{ tensors.channel_dot(getDy, getW, depth_vec4, depth_remainder, "d2", "out", "dyValues", "wValues") | trim | indent(8) }}
      }
    }
  }

  setOutput(dotProd);
}
{% endblock %}

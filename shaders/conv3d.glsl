{% extends "program.glsl" %}
{#- Conv3DProgram (TF.js): one output element per fragment.  The window loops run over the
    filter's depth, height and width, skipping taps outside the input (the zero padding);
    the input-depth loop is unrolled by vec4, the 1, 2 or 3 leftover channels in one branch
    chosen here.  The output is written as a rank-4 tensor, the batch folded into the
    output depth (NDHWC) or into the channels (NCDHW), and unfolded at the top of main(). -#}

{% macro getX(depth) -%}
{{ tensors.read("getX", "batch", "x", g, depth, channels_last) }}
{%- endmacro %}
{% macro getW(depth) -%}
getW(wF, wR, wC, {{ depth }}, d2)
{%- endmacro %}

{% block main %}
void main() {
  ivec4 coords = getOutputCoords();
{{ tensors.unfold_coords_3d("y", "d2", g.out_depth, g.out_channels, channels_last) }}

  int xFCorner = yF * {{ g.stride_depth }} - {{ g.pad_front }};
  int xRCorner = yR * {{ g.stride_height }} - {{ g.pad_top }};
  int xCCorner = yC * {{ g.stride_width }} - {{ g.pad_left }};

  float dotProd = 0.0;
{% call tensors.window_loop(g) %}

      {{ tensors.channel_dot(getX, getW, depth_vec4, depth_remainder, "d1", "input", "xValues", "wValues") | trim | indent(6) }}
{% endcall %}


  setOutput(dotProd);
}
{% endblock %}

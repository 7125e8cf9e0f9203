{% extends "conv2d_backprop_filter.glsl" %}
{#- DepthwiseConv2DDerFilterProgram (TF.js): df[wR, wC, d1, q] pairs input channel d1 with
    output channel d1 * multiplier + q only; otherwise as Conv2DDerFilterProgram. -#}

{% block main %}
void main() {
  ivec4 coords = getOutputCoords();
{{ filter_tap(g, slices) }}
  int wC = coords.y;
  int d1 = coords.z;
  int d2 = d1 * {{ g.channel_multiplier }} + coords.w;

  float dotProd = 0.0;
{% call dy_loop(g, slices, slice_length) %}
        dotProd += {{ getX("d1") }} * {{ getDy("d2") }};
{% endcall %}

  setOutput(dotProd);
}
{% endblock %}

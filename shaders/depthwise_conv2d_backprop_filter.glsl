{% extends "conv2d_backprop_filter.glsl" %}
{#- DepthwiseConv2DDerFilterProgram (TF.js): df[wR, wC, d1, q] pairs input channel d1 with
    output channel d1 * multiplier + q only; otherwise as Conv2DDerFilterProgram. -#}

{% block out_channel %}
  int d2 = d1 * {{ g.channel_multiplier }} + coords.w;
{% endblock %}

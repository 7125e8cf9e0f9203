{% extends "conv2d_backprop_input.glsl" %}
{#- DepthwiseConv2DDerInputProgram (TF.js): dx[b, xR, xC, d1] sums, over the same taps as
    Conv2DDerInputProgram, dy[b, dyR, dyC, d1 * multiplier + q] * W[FH-1-wR, FW-1-wC, d1, q]
    for the multiplier's q: input channel d1 fed only its own multiplier's output channels. -#}

{% block main %}
void main() {
{{ dx_position() }}

  float dotProd = 0.0;
{% call dy_window_loop(g) %}
{% if g.channel_multiplier > 1 %}
      for (int q = 0; q < {{ g.channel_multiplier }}; q++) {
        dotProd += {{ getDy("d1 * " ~ g.channel_multiplier ~ " + q") }} * getW(wRPerm, wCPerm, d1, q);
      }
{% else %}
      dotProd += {{ getDy("d1") }} * getW(wRPerm, wCPerm, d1, 0);
{% endif %}
{% endcall %}


  setOutput(dotProd);
}
{% endblock %}

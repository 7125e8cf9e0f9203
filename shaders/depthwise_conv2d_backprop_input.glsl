{% extends "conv2d_backprop_input.glsl" %}
{#- DepthwiseConv2DDerInputProgram (TF.js): dx[b, xR, xC, d1] sums, over the same taps as
    Conv2DDerInputProgram, dy[b, dyR, dyC, d1 * multiplier + q] * W[FH-1-wR, FW-1-wC, d1, q]
    for the multiplier's q: input channel d1 fed only its own multiplier's output channels. -#}

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
{% if g.channel_multiplier > 1 %}
      for (int q = 0; q < {{ g.channel_multiplier }}; q++) {
        dotProd += {{ getDy("d1 * " ~ g.channel_multiplier ~ " + q") }} * getW(wRPerm, wCPerm, d1, q);
      }
{% else %}
      dotProd += {{ getDy("d1") }} * getW(wRPerm, wCPerm, d1, 0);
{% endif %}
    }
  }

  setOutput(dotProd);
}
{% endblock %}

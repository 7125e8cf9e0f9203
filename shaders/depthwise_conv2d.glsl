{% extends "program.glsl" %}
{#- DepthwiseConv2DProgram (TF.js): output channel d2 = d1 * multiplier + q convolves
    input channel d1 with filter column q; one multiply-add per tap, no depth loop. -#}

{% block main %}
void main() {
  ivec4 coords = getOutputCoords();
  int batch = coords[0];
  int d2 = coords[{{ channel_axis }}];
{% if g.channel_multiplier > 1 %}
  int d1 = d2 / {{ g.channel_multiplier }};
  int q = d2 - d1 * {{ g.channel_multiplier }};
{% else %}
  int d1 = d2;
  int q = 0;
{% endif %}

  ivec2 xRCCorner = ivec2(coords[{{ height_axis }}], coords[{{ width_axis }}]) * ivec2({{ g.stride_height }}, {{ g.stride_width }}) - ivec2({{ g.pad_top }}, {{ g.pad_left }});
  int xRCorner = xRCCorner.x;
  int xCCorner = xRCCorner.y;

  float dotProd = 0.0;
{% call tensors.window_loop(g) %}
{% if channels_last %}
      float xVal = getX(batch, xR, xC, d1);
{% else %}
      float xVal = getX(batch, d1, xR, xC);
{% endif %}
      float wVal = getW(wR, wC, d1, q);
      dotProd += xVal * wVal;
{% endcall %}

{{ fused.apply(epilogue, "dotProd", "coords", "d2") }}
  setOutput(dotProd);
}
{% endblock %}

{% extends "program.glsl" %}
{#- Conv2DProgram (TF.js): one output element per fragment.  The input-depth loop is
    unrolled by vec4; the 1, 2 or 3 leftover channels get one branch chosen here, at
    generation time.  Taps outside the input are skipped, which is the zero padding. -#}

{#- x and W at input channel `depth` of the current tap: they read main()'s `batch`, `d2`
    and `inChannelOffset` (grouped) and window_loop's `xR`, `xC`, `wR`, `wC`. -#}
{% macro channel(depth) -%}
{{ "inChannelOffset + " if groups > 1 }}{{ depth }}
{%- endmacro %}
{% macro getX(depth) -%}
{% if channels_last -%}
getX(batch, xR, xC, {{ channel(depth) }})
{%- else -%}
getX(batch, {{ channel(depth) }}, xR, xC)
{%- endif %}
{%- endmacro %}
{% macro getW(depth) -%}
getW(wR, wC, {{ depth }}, d2)
{%- endmacro %}

{% block main %}
void main() {
  ivec4 coords = getOutputCoords();
  int batch = coords[0];
  int d2 = coords[{{ channel_axis }}];

  ivec2 xRCCorner = ivec2(coords[{{ height_axis }}], coords[{{ width_axis }}]) * ivec2({{ g.stride_height }}, {{ g.stride_width }}) - ivec2({{ g.pad_top }}, {{ g.pad_left }});
  int xRCorner = xRCCorner.x;
  int xCCorner = xRCCorner.y;
{% if groups > 1 %}
  // Grouped convolution: output channel d2 reads only its own group's input channels.
  int inChannelOffset = (d2 / {{ g.out_channels_per_group }}) * {{ g.in_channels_per_group }};
{% endif %}

  float dotProd = 0.0;
{% call tensors.window_loop(g) %}

      {{ tensors.channel_dot(getX, getW, depth_vec4, depth_remainder, "d1", "input", "xValues", "wValues") | trim | indent(6) }}
{% endcall %}

{{ fused.apply(epilogue, "dotProd", "coords", "d2") }}
  setOutput(dotProd);
}
{% endblock %}

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
{% if depth_vec4 > 0 %}

      for (int d1 = 0; d1 < {{ depth_vec4 }}; d1 += 4) {
        vec4 xValues = vec4(
          {{ getX("d1") }},
          {{ getX("d1 + 1") }},
          {{ getX("d1 + 2") }},
          {{ getX("d1 + 3") }}
        );
        vec4 wValues = vec4(
          {{ getW("d1") }},
          {{ getW("d1 + 1") }},
          {{ getW("d1 + 2") }},
          {{ getW("d1 + 3") }}
        );
        dotProd += dot(xValues, wValues);
      }
{% endif %}
{% if depth_remainder == 1 %}

      // 1 leftover input channel
      dotProd += {{ getX(depth_vec4) }} * {{ getW(depth_vec4) }};
{% elif depth_remainder == 2 %}

      // 2 leftover input channels
      vec2 xValues = vec2(
        {{ getX(depth_vec4) }},
        {{ getX(depth_vec4 + 1) }}
      );
      vec2 wValues = vec2(
        {{ getW(depth_vec4) }},
        {{ getW(depth_vec4 + 1) }}
      );
      dotProd += dot(xValues, wValues);
{% elif depth_remainder == 3 %}

      // 3 leftover input channels
      vec3 xValues = vec3(
        {{ getX(depth_vec4) }},
        {{ getX(depth_vec4 + 1) }},
        {{ getX(depth_vec4 + 2) }}
      );
      vec3 wValues = vec3(
        {{ getW(depth_vec4) }},
        {{ getW(depth_vec4 + 1) }},
        {{ getW(depth_vec4 + 2) }}
      );
      dotProd += dot(xValues, wValues);
{% endif %}
{% endcall %}

{{ fused.apply(epilogue, "dotProd", "coords", "d2") }}
  setOutput(dotProd);
}
{% endblock %}

{% extends "program.glsl" %}
{#- Conv2DDerFilterProgram (TF.js): one element df[wR, wC, d1, d2] of the gradient of conv2d
    with respect to its filter per fragment: the sum over the batch and dy's positions
    (yR, yC) of x[b, xR, xC, d1] * dy[b, yR, yC, d2], xR = yR * stride + wR * dilation - padTop
    (and xC alike); positions outside x (the zero padding) are skipped.
    With slices > 1 (many dy positions) each fragment sums only slice s of them, the batch's
    dy positions in order, and writes df's rows for slice s at s * FH + wR: llvmpipe ends
    every loop of a fragment after 65535 iterations in all, and short float32 sums drift less;
    SliceSumProgram adds the slices up. -#}

{% macro getX(channel) -%}
{% if channels_last -%}
getX(b, xR, xC, {{ channel }})
{%- else -%}
getX(b, {{ channel }}, xR, xC)
{%- endif %}
{%- endmacro %}
{% macro getDy(channel) -%}
{% if channels_last -%}
getDy(b, yR, yC, {{ channel }})
{%- else -%}
getDy(b, {{ channel }}, yR, yC)
{%- endif %}
{%- endmacro %}

{#- int wR (and int s, the slice, when sliced) from the output row coords.x. -#}
{% macro filter_row(g) %}
{% if slices > 1 %}
  int s = coords.x / {{ g.filter_height }};
  int wR = coords.x - s * {{ g.filter_height }};
{% else %}
  int wR = coords.x;
{% endif %}
{%- endmacro %}

{#- The sum over the batch and dy's positions (or slice s of them); the caller's body runs
    with b, xR, xC, yR, yC, xR and xC inside x. -#}
{% macro dy_loop(g) %}
{% if slices > 1 %}
{% set plane = g.out_height * g.out_width %}
{% set positions = g.batch * plane %}
  // slice s: dy positions s * {{ slice_length }} onwards (of {{ positions }}, batch by batch, row by row)
  int first = s * {{ slice_length }};
  int count = min({{ slice_length }}, {{ positions }} - first);
  int b = first / {{ plane }};
  int yR = (first - b * {{ plane }}) / {{ g.out_width }};
  int yC = first - b * {{ plane }} - yR * {{ g.out_width }};
  for (int i = 0; i < count; i++) {
    int xR = wR * {{ g.dilation_height }} - {{ g.pad_top }} + yR * {{ g.stride_height }};
    int xC = wC * {{ g.dilation_width }} - {{ g.pad_left }} + yC * {{ g.stride_width }};
    if (xR >= 0 && xR < {{ g.in_height }} && xC >= 0 && xC < {{ g.in_width }}) {
{{ caller() }}    }
    yC++;
    if (yC == {{ g.out_width }}) {
      yC = 0;
      yR++;
      if (yR == {{ g.out_height }}) {
        yR = 0;
        b++;
      }
    }
  }
{% else %}
  for (int b = 0; b < {{ g.batch }}; b++) {
    for (int yR = 0; yR < {{ g.out_height }}; yR++) {
      int xR = wR * {{ g.dilation_height }} - {{ g.pad_top }} + yR * {{ g.stride_height }};
      if (xR < 0 || xR >= {{ g.in_height }}) {
        continue;
      }
      for (int yC = 0; yC < {{ g.out_width }}; yC++) {
        int xC = wC * {{ g.dilation_width }} - {{ g.pad_left }} + yC * {{ g.stride_width }};
        if (xC < 0 || xC >= {{ g.in_width }}) {
          continue;
        }
{{ caller() }}      }
    }
  }
{% endif %}
{%- endmacro %}

{% block main %}
void main() {
  ivec4 coords = getOutputCoords();
{{ filter_row(g) }}
  int wC = coords.y;
  int d1 = coords.z;
  int d2 = coords.w;

  float dotProd = 0.0;
{% call dy_loop(g) %}
        dotProd += {{ getX("d1") }} * {{ getDy("d2") }};
{% endcall %}

  setOutput(dotProd);
}
{% endblock %}

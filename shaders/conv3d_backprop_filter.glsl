{% extends "program.glsl" %}
{#- Conv3DDerFilterProgram (TF.js): one element df[wF, wR, wC, d1, d2] of the gradient of conv3d
    with respect to its filter per fragment: the sum over the batch and dy's positions
    (yF, yR, yC) of x[b, xF, xR, xC, d1] * dy[b, yF, yR, yC, d2], with
    xF = yF * stride + wF * dilation - padFront (and xR, xC alike); positions outside x (the
    zero padding) are skipped.  df is written as [FD * FH, FW, in_channels, out_channels].
    With slices > 1 each fragment sums only slice s of the batch's dy positions (in order),
    written at row (s * FD + wF) * FH + wR, as Conv2DDerFilterProgram's slices. -#}

{% macro getX(channel) -%}
{% if channels_last -%}
getX(b, xF, xR, xC, {{ channel }})
{%- else -%}
getX(b, {{ channel }}, xF, xR, xC)
{%- endif %}
{%- endmacro %}
{% macro getDy(channel) -%}
{% if channels_last -%}
getDy(b, yF, yR, yC, {{ channel }})
{%- else -%}
getDy(b, {{ channel }}, yF, yR, yC)
{%- endif %}
{%- endmacro %}

{% block main %}
void main() {
  ivec4 coords = getOutputCoords();
{% if slices > 1 %}
  // coords: ((s * {{ g.filter_depth }} + wF) * {{ g.filter_height }} + wR, wC, d1, d2), s the slice
  int sF = coords.x / {{ g.filter_height }};
  int wR = coords.x - sF * {{ g.filter_height }};
  int s = sF / {{ g.filter_depth }};
  int wF = sF - s * {{ g.filter_depth }};
{% else %}
  // coords: (wF * {{ g.filter_height }} + wR, wC, d1, d2)
  int wF = coords.x / {{ g.filter_height }};
  int wR = coords.x - wF * {{ g.filter_height }};
{% endif %}
  int wC = coords.y;
  int d1 = coords.z;
  int d2 = coords.w;

  float dotProd = 0.0;
{% if slices > 1 %}
{% set plane = g.out_height * g.out_width %}
{% set volume = g.out_depth * plane %}
{% set positions = g.batch * volume %}
  // slice s: dy positions s * {{ slice_length }} onwards (of {{ positions }}, batch by batch, in order)
  int first = s * {{ slice_length }};
  int count = min({{ slice_length }}, {{ positions }} - first);
  int b = first / {{ volume }};
  int rest = first - b * {{ volume }};
  int yF = rest / {{ plane }};
  rest -= yF * {{ plane }};
  int yR = rest / {{ g.out_width }};
  int yC = rest - yR * {{ g.out_width }};
  for (int i = 0; i < count; i++) {
    int xF = wF * {{ g.dilation_depth }} - {{ g.pad_front }} + yF * {{ g.stride_depth }};
    int xR = wR * {{ g.dilation_height }} - {{ g.pad_top }} + yR * {{ g.stride_height }};
    int xC = wC * {{ g.dilation_width }} - {{ g.pad_left }} + yC * {{ g.stride_width }};
    if (xF >= 0 && xF < {{ g.in_depth }} && xR >= 0 && xR < {{ g.in_height }} && xC >= 0 && xC < {{ g.in_width }}) {
      dotProd += {{ getX("d1") }} * {{ getDy("d2") }};
    }
    yC++;
    if (yC == {{ g.out_width }}) {
      yC = 0;
      yR++;
      if (yR == {{ g.out_height }}) {
        yR = 0;
        yF++;
        if (yF == {{ g.out_depth }}) {
          yF = 0;
          b++;
        }
      }
    }
  }
{% else %}
  for (int b = 0; b < {{ g.batch }}; b++) {
    for (int yF = 0; yF < {{ g.out_depth }}; yF++) {
      int xF = wF * {{ g.dilation_depth }} - {{ g.pad_front }} + yF * {{ g.stride_depth }};
      if (xF < 0 || xF >= {{ g.in_depth }}) {
        continue;
      }
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
          dotProd += {{ getX("d1") }} * {{ getDy("d2") }};
        }
      }
    }
  }
{% endif %}

  setOutput(dotProd);
}
{% endblock %}

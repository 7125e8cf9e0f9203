{% extends "program.glsl" %}
{#- Conv3DDerFilterProgram (TF.js): one element df[wF, wR, wC, d1, d2] of the gradient of conv3d
    with respect to its filter per fragment: the sum over the batch and dy's positions
    (yF, yR, yC) of x[b, xF, xR, xC, d1] * dy[b, yF, yR, yC, d2], with
    xF = yF * stride + wF * dilation - padFront (and xR, xC alike); positions outside x (the
    zero padding) are skipped.  df is written as [FD * FH, FW, in_channels, out_channels]. -#}

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
  // coords: (wF * {{ g.filter_height }} + wR, wC, d1, d2)
  int wF = coords.x / {{ g.filter_height }};
  int wR = coords.x - wF * {{ g.filter_height }};
  int wC = coords.y;
  int d1 = coords.z;
  int d2 = coords.w;

  float dotProd = 0.0;
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

  setOutput(dotProd);
}
{% endblock %}

{% extends "program.glsl" %}
{#- Conv2DDerFilterProgram (TF.js): one element df[wR, wC, d1, d2] of the gradient of conv2d
    with respect to its filter per fragment: the sum over the batch and dy's positions
    (yR, yC) of x[b, xR, xC, d1] * dy[b, yR, yC, d2], xR = yR * stride + wR * dilation - padTop
    (and xC alike); positions outside x (the zero padding) are skipped. -#}

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

{#- The sum over the batch and dy's positions; the caller's body runs with b, xR, xC, yR, yC. -#}
{% macro dy_loop(g) %}
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
{%- endmacro %}

{% block main %}
void main() {
  ivec4 coords = getOutputCoords();
  int wR = coords.x;
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

{#- Shared by the programs of the gradient with respect to the input (Conv2DDerInputProgram,
    DepthwiseConv2DDerInputProgram, Conv3DDerInputProgram). -#}

{#- Inside a filter-tap loop: `int {{ name }}`, the dy position whose tap lands on this
    dx position, from `numerator` = dx position - transposed pad + tap * dilation (that dy
    position times the stride); the tap is skipped (`continue`) when it lands between dy
    positions or outside dy. -#}
{% macro dy_position(name, numerator, stride, size) %}
    if ({{ numerator }} < 0) {
      continue;
    }
{% if stride > 1 %}
    int {{ name }} = {{ numerator }} / {{ stride }};
    if ({{ name }} * {{ stride }} != {{ numerator }} || {{ name }} >= {{ size }}) {
      continue;
    }
{% else %}
    int {{ name }} = {{ numerator }};
    if ({{ name }} >= {{ size }}) {
      continue;
    }
{% endif %}
{%- endmacro %}

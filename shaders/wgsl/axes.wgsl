{#- Index arithmetic over any number of spatial axes (the 3-D programs and the filter gradients):
    an axis is a dict-like with name ("F" depth, "R" rows, "C" columns), filter, input, output,
    stride, dilation and pad (before). -#}

{#- The flat index of spatial position <prefix><axis name> on each of `axes` of batch `b` in a tensor
    of spatial `sizes` (`volume` positions) and `channels` channels, at channel 0: add `channel * channel_stride(...)`. -#}
{% macro pixel(channels_last, b, prefix, axes, sizes, channels, volume) -%}
{% set coords = [] %}{% for axis in axes %}{% set _ = coords.append(prefix ~ axis.name) %}{% endfor -%}
{% if channels_last -%}
{% set ns = namespace(e=b) -%}
{% for c in coords %}{% set ns.e = "(" ~ ns.e ~ " * " ~ sizes[loop.index0] ~ "u + " ~ c ~ ")" %}{% endfor -%}
{{ ns.e }} * {{ channels }}u
{%- else -%}
{% set ns = namespace(e=coords[0]) -%}
{% for c in coords[1:] %}{% set ns.e = "(" ~ ns.e ~ " * " ~ sizes[loop.index] ~ "u + " ~ c ~ ")" %}{% endfor -%}
{{ b }} * {{ channels * volume }}u + {{ ns.e }}
{%- endif %}
{%- endmacro %}

{#- How far apart two neighbouring channels of a tensor of `volume` spatial positions lie. -#}
{% macro channel_stride(channels_last, volume) -%}
{{ 1 if channels_last else volume }}u
{%- endmacro %}

{#- Let-bindings <prefix><axis name> (and `batch`, unless empty) of flat position `index` over
    batch x the axes' `field` sizes (row-major: the last axis fastest). -#}
{% macro split_position(index, axes, field, prefix, batch="b") -%}
{% set ns = namespace(stride=1) %}
{% for axis in axes | reverse %}
{% if ns.stride == 1 %}
  let {{ prefix }}{{ axis.name }} = {{ index }} % {{ axis[field] }}u;
{% else %}
  let {{ prefix }}{{ axis.name }} = ({{ index }} / {{ ns.stride }}u) % {{ axis[field] }}u;
{% endif %}
{% set ns.stride = ns.stride * axis[field] %}
{% endfor %}
{% if batch %}
  let {{ batch }} = {{ index }} / {{ ns.stride }}u;
{% endif %}
{%- endmacro %}

{#- Let-bindings of the element at flat `index` of a tensor with `channels` channels over `axes`'
    `field` sizes: `channel`, the batch `b` and <prefix><axis name> on each axis. -#}
{% macro split_element(channels_last, index, axes, field, prefix, channel, channels) -%}
{% if channels_last %}
  let {{ channel }} = {{ index }} % {{ channels }}u;
{{ split_position("(" ~ index ~ " / " ~ channels ~ "u)", axes, field, prefix) }}
{% else %}
{{ split_position(index, axes, field, prefix, "b" ~ channel) }}
  let {{ channel }} = b{{ channel }} % {{ channels }}u;
  let b = b{{ channel }} / {{ channels }}u;
{%- endif %}
{%- endmacro %}

{#- The input gradient's loops over the filter taps: per axis A, tap w<A> and d<A>, the dy position
    it reads for dx position `positions[i]` through the transposed pads `pad_t[i]` (taps between dy
    positions or outside dy are skipped).  The caller's body runs inside (written at the innermost
    loop's indentation); the macro closes the loops. -#}
{% macro dy_tap_loops(axes, positions, pad_t) %}
{% for axis in axes %}
{% set pad = "  " * loop.index0 %}
  {{ pad }}for (var w{{ axis.name }} = 0u; w{{ axis.name }} < {{ axis.filter }}u; w{{ axis.name }}++) {
  {{ pad }}  let d{{ axis.name }}Num = i32({{ positions[loop.index0] }} + w{{ axis.name }} * {{ axis.dilation }}u) - {{ pad_t[loop.index0] }};
  {{ pad }}  if (d{{ axis.name }}Num < 0 || d{{ axis.name }}Num % {{ axis.stride }} != 0 || d{{ axis.name }}Num / {{ axis.stride }} >= {{ axis.output }}) {
  {{ pad }}    continue;
  {{ pad }}  }
  {{ pad }}  let d{{ axis.name }} = u32(d{{ axis.name }}Num / {{ axis.stride }});
{% endfor %}
{{ caller() }}
{%- for axis in axes | reverse %}
  {{ "  " * loop.revindex0 }}}
{% endfor %}
{%- endmacro %}

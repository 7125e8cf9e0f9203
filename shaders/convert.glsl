{#- A layout conversion (gpuconv.convert.ConversionSpec): copies a tensor from one texture
    layout into another on the GPU.  Both sides speak the tensor's logical row-major flat
    index i: for each target texel and component, targetIndex() gives i (-1 for a padding
    texel or component, written as 0.0), and readSource(i) fetches element i wherever the
    source layout keeps it.  Every size is baked in as a constant. -#}
{% include "header.glsl" %}

// {{ description }}
{% for input in inputs %}
uniform sampler2D {{ input.name }};
{% endfor %}
out vec4 outputColor;

{#- int b = rest / 300; rest -= b * 300; ...: a flat index -> coordinates, row-major. -#}
{% macro decompose(steps) %}
  int rest = i;
{% for name, stride in steps %}
{% if loop.last %}
  int {{ name }} = rest;
{% else %}
  int {{ name }} = rest / {{ stride }};
  rest -= {{ name }} * {{ stride }};
{% endif %}
{% endfor %}
{%- endmacro %}

{% if copy %}
// Texel for texel: the target's texel (col, row) holds channels 4 * c4 .. 4 * c4 + 3 of pixel
// (b, h, w), which the source ({{ source.text }}) keeps in one texel of texture w % {{ source.count }}.
void main() {
  int row = int(gl_FragCoord.y);
  int col = int(gl_FragCoord.x);
  int b = row / {{ target.height }};
  int h = row - b * {{ target.height }};
  int w = col / {{ target.depth4 }};
  int c4 = col - w * {{ target.depth4 }};
  int q = w / {{ source.count }};
  int j = w - q * {{ source.count }};
  int unfoldedRow = row;
  int band = unfoldedRow / {{ source.rows }};
  ivec2 texel = ivec2(band * {{ source.unfolded_cols }} + q * {{ source.depth4 }} + c4,
                      unfoldedRow - band * {{ source.rows }});
  vec4 t;
{% for input in inputs %}
  {{ "} else " if not loop.first }}if (j == {{ loop.index0 }}) {
    t = texelFetch({{ input.name }}, texel, 0);
{% endfor %}
  }
  // the channels past the last one are padding: zeros
  outputColor = mix(vec4(0.0), t, lessThan(ivec4(c4 * 4) + ivec4(0, 1, 2, 3), ivec4({{ target.channels }})));
}
{% else %}
// Element i of the source ({{ source.text }}).
float readSource(int i) {
{% if source.kind == "texture" %}
  int row = i / {{ source.cols }};
  int col = i - row * {{ source.cols }};
  return texelFetch(src, ivec2(col, row), 0).r;
{% else %}
{{ decompose(source.steps) }}
{% if source.kind == "split" %}
  // pixel w is pixel q * {{ source.count }} + j of the row: texture j, column group q
  int q = w / {{ source.count }};
  int j = w - q * {{ source.count }};
  int unfoldedRow = b * {{ source.height }} + h;
  int band = unfoldedRow / {{ source.rows }};
  ivec2 texel = ivec2(band * {{ source.unfolded_cols }} + q * {{ source.depth4 }} + c / 4,
                      unfoldedRow - band * {{ source.rows }});
  int k = c - (c / 4) * 4;
  vec4 t;
{% for input in inputs %}
  {{ "} else " if not loop.first }}if (j == {{ loop.index0 }}) {
    t = texelFetch({{ input.name }}, texel, 0);
{% endfor %}
  }
{% else %}
  // channel c is stored {{ source.repeat }} time(s) from channel c * {{ source.repeat }}
  int s = c * {{ source.repeat }};
  ivec2 texel = ivec2(w * {{ source.depth4 }} + s / 4, b * {{ source.height }} + h);
  int k = s - (s / 4) * 4;
  vec4 t = texelFetch(src, texel, 0);
{% endif %}
  return k == 0 ? t.x : (k == 1 ? t.y : (k == 2 ? t.z : t.w));
{% endif %}
}

// The flat index of the element the target ({{ target.text }}) keeps in component k of texel (col, row),
// or -1 where it keeps padding.
int targetIndex(int row, int col, int k) {
{% if target.kind == "texture" %}
  int i = row * {{ target.cols }} + col;
  return i < {{ target.size }} ? i : -1;
{% elif target.kind == "packed_image" %}
  int b = row / {{ target.height }};
  int h = row - b * {{ target.height }};
  int w = col / {{ target.depth4 }};
  int s = (col - w * {{ target.depth4 }}) * 4 + k;  // the stored channel
  if (s >= {{ target.stored }}) {
    return -1;
  }
  int c = s / {{ target.repeat }};
{% if target.channels_last %}
  return ((b * {{ target.height }} + h) * {{ target.width }} + w) * {{ target.channels }} + c;
{% else %}
  return ((b * {{ target.channels }} + c) * {{ target.height }} + h) * {{ target.width }} + w;
{% endif %}
{% elif target.kind == "filter_conv" %}
  int o = col * 4 + k;
  int tap = row / {{ target.rows_per_tap }};
  int c = row - tap * {{ target.rows_per_tap }};
  if (o >= {{ target.out_channels }} || c >= {{ target.channels }}) {
    return -1;
  }
{% if target.swapped %}
  // swapped: the filter is [.., {{ target.out_channels }}, {{ target.channels }}], element (tap, o, c)
  return (tap * {{ target.out_channels }} + o) * {{ target.channels }} + c;
{% else %}
  return (tap * {{ target.channels }} + c) * {{ target.out_channels }} + o;
{% endif %}
{% elif target.kind == "transpose_matmul_filter" %}
  // [FH, FW, {{ target.out_channels }}, {{ target.channels }}] read as the matrix [{{ target.channels }}, taps * {{ target.tap_columns }}]:
  // column tap * {{ target.tap_columns }} + o of row c is element (tap, o, c)
  int column = col * 4 + k;
  int tap = column / {{ target.tap_columns }};
  int o = column - tap * {{ target.tap_columns }};
  if (o >= {{ target.out_channels }} || row >= {{ target.channels }}) {
    return -1;
  }
  return (tap * {{ target.out_channels }} + o) * {{ target.channels }} + row;
{% elif target.kind == "filter_depthwise" %}
  int o = col * 4 + k;
  return o < {{ target.out_channels }} ? row * {{ target.out_channels }} + o : -1;
{% else %}
  int o = col * 4 + k;
  return o < {{ target.length }} ? o : -1;
{% endif %}
}

void main() {
  int row = int(gl_FragCoord.y);
  int col = int(gl_FragCoord.x);
  vec4 result = vec4(0.0);
{% for k in range(target.components) %}
  int i{{ k }} = targetIndex(row, col, {{ k }});
  if (i{{ k }} >= 0) {
    result.{{ "xyzw"[k] }} = readSource(i{{ k }});
  }
{% endfor %}
  outputColor = result;
}
{% endif %}

{#- Conv3DProgram (TF.js) on WebGPU: one output value y[b, yF, yR, yC, k] per invocation, the sum
    over the filter window (depth, rows, columns) and the input channels of
    x[b, y * stride + w * dilation - pad, c] * W[wF, wR, wC, c, k].  Taps on the padding are
    skipped, never multiplied by zero. -#}
{% import "wgsl/common.wgsl" as common %}
{% import "wgsl/axes.wgsl" as ax %}
{{ common.header(description, grid, notes) }}
{{ common.bindings(inputs, output) }}

{{ common.element_main(workgroup_size, dispatch, invocations, size) }}
{{ ax.split_element(channels_last, "index", axes, "output", "y", "k", out_channels) }}
  var value = 0.0;
{% for axis in axes %}
{% set pad = "  " * loop.index0 %}
  {{ pad }}for (var w{{ axis.name }} = 0u; w{{ axis.name }} < {{ axis.filter }}u; w{{ axis.name }}++) {
  {{ pad }}  let x{{ axis.name }} = y{{ axis.name }} * {{ axis.stride }}u + w{{ axis.name }} * {{ axis.dilation }}u{% if axis.pad %} - {{ axis.pad }}u{% endif %};
  {{ pad }}  if (x{{ axis.name }} >= {{ axis.input }}u) {
  {{ pad }}    continue;  // on the padding (before x, it wraps past u32)
  {{ pad }}  }
{% endfor %}
{% set pad = "  " * (axes | length) %}
  {{ pad }}let xPixel = {{ ax.pixel(channels_last, "b", "x", axes, in_sizes, in_channels, in_volume) }};
  {{ pad }}let wTap = {{ tap_index }};
  {{ pad }}for (var c = 0u; c < {{ in_channels }}u; c++) {
  {{ pad }}  value += load_x(xPixel + c * {{ ax.channel_stride(channels_last, in_volume) }}) * load_W((wTap * {{ in_channels }}u + c) * {{ out_channels }}u + k);
  {{ pad }}}
{% for axis in axes | reverse %}
  {{ "  " * loop.revindex0 }}}
{% endfor %}
  store_result(index, value);
}

{#- Conv3DDerInputProgram (TF.js) on WebGPU: one element dx[b, xF, xR, xC, c] of the gradient of
    conv3d with respect to its input per invocation (also the transposed 3-D convolution): the sum
    of dy[b, d, k] * W[FD-1-wF, FH-1-wR, FW-1-wC, c, k] over the output channels k and the taps w
    whose dy position d = (x - pad_t + w * dilation) / stride is a whole number inside dy, with
    the transposed pads pad_t = effective filter - 1 - pad (before). -#}
{% import "wgsl/common.wgsl" as common %}
{% import "wgsl/axes.wgsl" as ax %}
{{ common.header(description, grid, notes) }}
{{ common.bindings(inputs, output) }}

{{ common.element_main(workgroup_size, dispatch, invocations, size) }}
{{ ax.split_element(channels_last, "index", axes, "input", "x", "c", in_channels) }}
  var value = 0.0;
{% call ax.dy_tap_loops(axes, ["xF", "xR", "xC"], pad_t) %}
{% set pad = "  " * (axes | length) %}
  {{ pad }}let dyPixel = {{ ax.pixel(channels_last, "b", "d", axes, out_sizes, out_channels, out_volume) }};
  {{ pad }}let wTap = {{ flipped_tap_index }};  // the filter flipped
  {{ pad }}let wStart = (wTap * {{ in_channels }}u + c) * {{ out_channels }}u;
  {{ pad }}for (var k = 0u; k < {{ out_channels }}u; k++) {
  {{ pad }}  value += load_dy(dyPixel + k * {{ ax.channel_stride(channels_last, out_volume) }}) * load_W(wStart + k);
  {{ pad }}}
{% endcall %}
  store_result(index, value);
}

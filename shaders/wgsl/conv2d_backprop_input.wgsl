{#- Conv2DDerInputProgram / DepthwiseConv2DDerInputProgram (TF.js): one element of dx, the
    gradient of a convolution with respect to its input, per invocation; with an epilogue, the
    transposed convolution.  dx[b, r, c, d1] sums dy[b, dR, dC, d2] * W[FH-1-wR, FW-1-wC, d1, d2]
    over the taps whose dy position (r - pad_t + wR * dilation) / stride is a whole number
    inside dy: the filter flipped, run over dy with the transposed pads
    pad_t = effective filter height - 1 - pad_top (and for the columns alike). -#}
{% import "wgsl/common.wgsl" as common %}
{% import "wgsl/axes.wgsl" as ax %}
{{ common.header(description, grid, notes) }}
{{ common.bindings(inputs, output) }}
{{ common.activation_function(epilogue) }}

{{ common.element_main(workgroup_size, dispatch, invocations, size) }}
{{ common.split_index(channels_last, "index", g.in_height, g.in_width, g.in_channels) }}
  var value = 0.0;
{% call ax.dy_tap_loops(axes, ["row", "col"], pad_t) %}
      let wTap = ({{ g.filter_height - 1 }}u - wR) * {{ g.filter_width }}u + {{ g.filter_width - 1 }}u - wC;  // the filter flipped
{% if g.depthwise %}
      for (var q = 0u; q < {{ g.channel_multiplier }}u; q++) {
        let d2 = channel * {{ g.channel_multiplier }}u + q;
        value += load_dy({{ common.image_index(channels_last, "b", "dR", "dC", "d2", g.out_height, g.out_width, g.out_channels) }})
            * load_W((wTap * {{ g.in_channels }}u + channel) * {{ g.channel_multiplier }}u + q);
      }
{% else %}
      let wStart = (wTap * {{ g.in_channels }}u + channel) * {{ g.out_channels }}u;
      for (var d2 = 0u; d2 < {{ g.out_channels }}u; d2++) {
        value += load_dy({{ common.image_index(channels_last, "b", "dR", "dC", "d2", g.out_height, g.out_width, g.out_channels) }})
            * load_W(wStart + d2);
      }
{% endif %}
{% endcall %}
{{ common.apply(epilogue, "value", "index", "channel", bias_full) }}
  store_result(index, value);
}

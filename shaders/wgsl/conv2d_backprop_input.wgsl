{#- Conv2DDerInputProgram / DepthwiseConv2DDerInputProgram (TF.js): one element of dx, the
    gradient of a convolution with respect to its input, per invocation; with an epilogue, the
    transposed convolution.  dx[b, r, c, d1] sums dy[b, dyR, dyC, d2] * W[FH-1-wR, FW-1-wC, d1, d2]
    over the taps whose dy position (r - pad_top_t + wR * dilation) / stride is a whole number
    inside dy: the filter flipped, run over dy with the transposed pads
    pad_top_t = effective filter height - 1 - pad_top (and left alike). -#}
{% import "wgsl/common.wgsl" as common %}
{{ common.header(description, grid, notes) }}
{{ common.bindings(inputs, output) }}
{{ common.activation_function(epilogue) }}

{{ common.element_main(workgroup_size, dispatch, invocations, size) }}
{{ common.split_index(channels_last, "index", g.in_height, g.in_width, g.in_channels) }}
  var value = 0.0;
  for (var wR = 0u; wR < {{ g.filter_height }}u; wR++) {
    let dyRNum = i32(row + wR * {{ g.dilation_height }}u) - {{ pad_top_t }};
    if (dyRNum < 0 || dyRNum % {{ g.stride_height }} != 0 || dyRNum / {{ g.stride_height }} >= {{ g.out_height }}) {
      continue;
    }
    let dyR = u32(dyRNum / {{ g.stride_height }});
    let wRPerm = {{ g.filter_height - 1 }}u - wR;
    for (var wC = 0u; wC < {{ g.filter_width }}u; wC++) {
      let dyCNum = i32(col + wC * {{ g.dilation_width }}u) - {{ pad_left_t }};
      if (dyCNum < 0 || dyCNum % {{ g.stride_width }} != 0 || dyCNum / {{ g.stride_width }} >= {{ g.out_width }}) {
        continue;
      }
      let dyC = u32(dyCNum / {{ g.stride_width }});
      let wCPerm = {{ g.filter_width - 1 }}u - wC;
{% if g.depthwise %}
      for (var q = 0u; q < {{ g.channel_multiplier }}u; q++) {
        let d2 = channel * {{ g.channel_multiplier }}u + q;
        value += load_dy({{ common.image_index(channels_last, "b", "dyR", "dyC", "d2", g.out_height, g.out_width, g.out_channels) }})
            * load_W(((wRPerm * {{ g.filter_width }}u + wCPerm) * {{ g.in_channels }}u + channel) * {{ g.channel_multiplier }}u + q);
      }
{% else %}
      let wStart = ((wRPerm * {{ g.filter_width }}u + wCPerm) * {{ g.in_channels }}u + channel) * {{ g.out_channels }}u;
      for (var d2 = 0u; d2 < {{ g.out_channels }}u; d2++) {
        value += load_dy({{ common.image_index(channels_last, "b", "dyR", "dyC", "d2", g.out_height, g.out_width, g.out_channels) }})
            * load_W(wStart + d2);
      }
{% endif %}
    }
  }
{{ common.apply(epilogue, "value", "index", "channel", bias_full) }}
  store_result(index, value);
}

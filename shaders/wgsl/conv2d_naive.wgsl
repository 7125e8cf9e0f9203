{#- Conv2DNaiveProgram / DepthwiseConv2DProgram (TF.js's WebGPU backend): one output value per
    invocation.  conv2d sums the group's input channels at every tap of the filter window;
    depthwise reads the one input channel its output channel comes from.  Taps on the
    padding are skipped (never a zero times a weight, so a non-finite weight there is unused,
    as in the oracle). -#}
{% import "wgsl/common.wgsl" as common %}
{{ common.header(description, grid, notes) }}
{{ common.bindings(inputs, output) }}
{{ common.activation_function(epilogue) }}

{{ common.element_main(workgroup_size, dispatch, invocations, size) }}
{{ common.split_index(channels_last, "index", g.out_height, g.out_width, g.out_channels) }}
{% if g.depthwise %}
  let inChannel = channel / {{ g.channel_multiplier }}u;
  let q = channel % {{ g.channel_multiplier }}u;
{% else %}
  let group = channel / {{ g.out_channels // g.groups }}u;
  let firstChannel = group * {{ g.in_channels_per_group }}u;
{% endif %}
  var value = 0.0;
  for (var fh = 0u; fh < {{ g.filter_height }}u; fh++) {
    let inRow = i32(row * {{ g.stride_height }}u + fh * {{ g.dilation_height }}u) - {{ g.pad_top }};
    if (inRow < 0 || inRow >= {{ g.in_height }}) {
      continue;
    }
    for (var fw = 0u; fw < {{ g.filter_width }}u; fw++) {
      let inCol = i32(col * {{ g.stride_width }}u + fw * {{ g.dilation_width }}u) - {{ g.pad_left }};
      if (inCol < 0 || inCol >= {{ g.in_width }}) {
        continue;
      }
{% if g.depthwise %}
      let xValue = load_x({{ common.image_index(channels_last, "b", "u32(inRow)", "u32(inCol)", "inChannel", g.in_height, g.in_width, g.in_channels) }});
      value += xValue * load_W(((fh * {{ g.filter_width }}u + fw) * {{ g.in_channels }}u + inChannel) * {{ g.channel_multiplier }}u + q);
{% else %}
      let tap = (fh * {{ g.filter_width }}u + fw) * {{ g.in_channels_per_group }}u;
      for (var ci = 0u; ci < {{ g.in_channels_per_group }}u; ci++) {
        let xValue = load_x({{ common.image_index(channels_last, "b", "u32(inRow)", "u32(inCol)", "firstChannel + ci", g.in_height, g.in_width, g.in_channels) }});
        value += xValue * load_W((tap + ci) * {{ g.out_channels }}u + channel);
      }
{% endif %}
    }
  }
{{ common.apply(epilogue, "value", "index", "channel") }}
  store_result(index, value);
}

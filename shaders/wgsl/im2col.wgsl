{#- Im2ColProgram (TF.js's WebGPU backend, for its small conv2d outputs): writes the im2col
    matrix A[group][row][k] that Conv2DMMProgram (from_matrix) then multiplies by W: row is an
    output pixel (batch x out_height x out_width), k a tap and input channel of the group
    (filter_height x filter_width x input channels per group, channels fastest, as W's rows).
    One element per invocation; a tap on the padding is a zero (multiplied by its weight later,
    as in TF.js). -#}
{% import "wgsl/common.wgsl" as common %}
{{ common.header(description, grid, notes) }}
{{ common.bindings(inputs, output) }}

{{ common.element_main(workgroup_size, dispatch, invocations, size) }}
  let k = index % {{ depth }}u;
  let row = (index / {{ depth }}u) % {{ rows }}u;
  let group = index / {{ depth * rows }}u;
  let outCol = row % {{ g.out_width }}u;
  let outRow = (row / {{ g.out_width }}u) % {{ g.out_height }}u;
  let b = row / {{ g.out_width * g.out_height }}u;
  let ci = k % {{ g.in_channels_per_group }}u;
  let tap = k / {{ g.in_channels_per_group }}u;
  let inRow = i32(outRow * {{ g.stride_height }}u + (tap / {{ g.filter_width }}u) * {{ g.dilation_height }}u) - {{ g.pad_top }};
  let inCol = i32(outCol * {{ g.stride_width }}u + (tap % {{ g.filter_width }}u) * {{ g.dilation_width }}u) - {{ g.pad_left }};
  var value = 0.0;
  if (inRow >= 0 && inRow < {{ g.in_height }} && inCol >= 0 && inCol < {{ g.in_width }}) {
    let channel = group * {{ g.in_channels_per_group }}u + ci;
    value = load_x({{ common.image_index(channels_last, "b", "u32(inRow)", "u32(inCol)", "channel", g.in_height, g.in_width, g.in_channels) }});
  }
  store_result(index, value);
}

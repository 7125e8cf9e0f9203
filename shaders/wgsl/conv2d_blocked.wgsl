{#- Conv2DBlockedProgram (gpuconv's own): NHWC conv2d, register-blocked.  Each invocation computes
    `pixels` neighbouring output pixels of one row x `blocks` vec4s of output channels, with no
    workgroup memory and no barriers: per filter row and block of input channels it reads the
    `span` input columns its pixels' windows cover once, and reuses each for every (pixel, tap)
    whose window holds it; W is read as vec4s of output channels.  On a CPU adapter (lavapipe,
    ANGLE over llvmpipe) this does several times the multiply-adds per load of the tiled GEMM.
    x is read as vec4s of input channels when the group's channels come in fours (x_vec4),
    else one channel at a time.  Taps on the padding read zeros. -#}
{% import "wgsl/common.wgsl" as common %}
{{ common.header(description, grid, notes) }}
{{ common.bindings(inputs, output, "vec4<f32>", {"x": "vec4<f32>" if x_vec4 else "f32"}) }}
{{ common.activation_function(epilogue) }}

{{ common.activate4_function(epilogue) }}

{{ common.element_main(workgroup_size, dispatch, invocations, size) }}
  // output channels 4 * block .. 4 * (block + {{ blocks }}) - 1
  let block = (index % {{ out_blocks // blocks }}u) * {{ blocks }}u;
  let columnGroup = (index / {{ out_blocks // blocks }}u) % {{ column_groups }}u;
  let outRow = (index / {{ out_blocks // blocks * column_groups }}u) % {{ g.out_height }}u;
  let b = index / {{ out_blocks // blocks * column_groups * g.out_height }}u;
  let firstOutCol = columnGroup * {{ pixels }}u;
  let firstInCol = i32(firstOutCol * {{ g.stride_width }}u) - {{ g.pad_left }};
{% if g.groups > 1 %}
  let firstChannel = (block * 4u / {{ g.out_channels // g.groups }}u) * {{ g.in_channels_per_group }}u;
{% else %}
  let firstChannel = 0u;
{% endif %}
{% for p in range(pixels) %}
{% for q in range(blocks) %}
  var sum{{ p }}_{{ q }} = vec4<f32>(0.0);
{% endfor %}
{% endfor %}
  for (var fh = 0u; fh < {{ g.filter_height }}u; fh++) {
    let inRow = i32(outRow * {{ g.stride_height }}u + fh * {{ g.dilation_height }}u) - {{ g.pad_top }};
    if (inRow < 0 || inRow >= {{ g.in_height }}) {
      continue;
    }
    let rowStart = (b * {{ g.in_height }}u + u32(inRow)) * {{ g.in_width }}u;
    for (var c = 0u; c < {{ steps }}u; c++) {
      // input channel{{ "s" if x_vec4 }} {{ "firstChannel + 4c .. + 3" if x_vec4 else "firstChannel + c" }} of the span's columns
{% for s in range(span) %}
      var x{{ s }} = {{ "vec4<f32>(0.0)" if x_vec4 else "0.0" }};
      if (firstInCol + {{ s }} >= 0 && firstInCol + {{ s }} < {{ g.in_width }}) {
        x{{ s }} = load_x((rowStart + u32(firstInCol + {{ s }})) * {{ x_stride }}u + {{ "firstChannel / 4u" if x_vec4 else "firstChannel" }} + c);
      }
{% endfor %}
{% for fw in range(g.filter_width) %}
      {
        let tap = ((fh * {{ g.filter_width }}u + {{ fw }}u) * {{ g.in_channels_per_group }}u + {{ "4u * c" if x_vec4 else "c" }}) * {{ out_blocks }}u + block;
{% for q in range(blocks) %}
{% for i in range(4 if x_vec4 else 1) %}
        let w{{ q }}_{{ i }} = load_W(tap + {{ i * out_blocks + q }}u);
{% endfor %}
{% endfor %}
{% for p in range(pixels) %}
{% set s = p * g.stride_width + fw * g.dilation_width %}
{% for q in range(blocks) %}
{% if x_vec4 %}
        sum{{ p }}_{{ q }} += x{{ s }}.x * w{{ q }}_0 + x{{ s }}.y * w{{ q }}_1 + x{{ s }}.z * w{{ q }}_2 + x{{ s }}.w * w{{ q }}_3;
{% else %}
        sum{{ p }}_{{ q }} += x{{ s }} * w{{ q }}_0;
{% endif %}
{% endfor %}
{% endfor %}
      }
{% endfor %}
    }
  }
  let outStart = (b * {{ g.out_height }}u + outRow) * {{ g.out_width }}u + firstOutCol;
{% for p in range(pixels) %}
  {{ "" if loop.first else "if (firstOutCol + %du < %du) " | format(p, g.out_width) }}{
    let at = (outStart + {{ p }}u) * {{ out_blocks }}u + block;
{% for q in range(blocks) %}
    store_result(at + {{ q }}u, activate4(sum{{ p }}_{{ q }}, block + {{ q }}u, at + {{ q }}u));
{% endfor %}
  }
{% endfor %}
}

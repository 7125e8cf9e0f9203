{#- DepthwiseConv2DVec4Program (TF.js's WebGPU backend, here with any channel multiplier m): NHWC,
    input channels a multiple of 4.  Each invocation computes `columns` neighbouring output pixels
    of the 4 x m output channels that one vec4 of input channels feeds: it reads the `span` input
    columns their windows cover once per filter row and reuses each for every output pixel whose
    window holds it.  Output channel c * m + q comes from input channel c, so output vec4 j of
    the block takes input channels (4j + i) / m, a swizzle of the input vec4, and W's m vec4s at a
    tap are exactly those output channels' weights.  Neighbouring invocations take neighbouring
    channel blocks. -#}
{% import "wgsl/common.wgsl" as common %}
{{ common.header(description, grid, notes) }}
{{ common.bindings(inputs, output, "vec4<f32>") }}
{{ common.activation_function(epilogue) }}

{{ common.activate4_function(epilogue) }}

{{ common.element_main(workgroup_size, dispatch, invocations, size) }}
  let block = index % {{ blocks }}u;
  let columnGroup = (index / {{ blocks }}u) % {{ column_groups }}u;
  let outRow = (index / {{ blocks * column_groups }}u) % {{ g.out_height }}u;
  let b = index / {{ blocks * column_groups * g.out_height }}u;
  let firstOutCol = columnGroup * {{ columns }}u;
  let firstInCol = i32(firstOutCol * {{ g.stride_width }}u) - {{ g.pad_left }};
{% for c in range(columns) %}
{% for j in range(multiplier) %}
  var sum{{ c }}_{{ j }} = vec4<f32>(0.0);
{% endfor %}
{% endfor %}
  for (var fh = 0u; fh < {{ g.filter_height }}u; fh++) {
    let inRow = i32(outRow * {{ g.stride_height }}u + fh * {{ g.dilation_height }}u) - {{ g.pad_top }};
    if (inRow < 0 || inRow >= {{ g.in_height }}) {
      continue;
    }
    let rowStart = (b * {{ g.in_height }}u + u32(inRow)) * {{ g.in_width }}u;
{% for s in range(span) %}
    var x{{ s }} = vec4<f32>(0.0);
    if (firstInCol + {{ s }} >= 0 && firstInCol + {{ s }} < {{ g.in_width }}) {
      x{{ s }} = load_x((rowStart + u32(firstInCol + {{ s }})) * {{ blocks }}u + block);
    }
{% endfor %}
{% for fw in range(g.filter_width) %}
    {
{% for j in range(multiplier) %}
      let w{{ j }} = load_W(((fh * {{ g.filter_width }}u + {{ fw }}u) * {{ blocks }}u + block) * {{ multiplier }}u + {{ j }}u);
{% endfor %}
{% for c in range(columns) %}
{% set s = c * g.stride_width + fw * g.dilation_width %}
{% for j in range(multiplier) %}
      sum{{ c }}_{{ j }} += x{{ s }}{{ swizzles[j] }} * w{{ j }};
{% endfor %}
{% endfor %}
    }
{% endfor %}
  }
  let outStart = (b * {{ g.out_height }}u + outRow) * {{ g.out_width }}u + firstOutCol;
{% for c in range(columns) %}
  {{ "" if loop.first else "if (firstOutCol + %du < %du) " | format(c, g.out_width) }}{
    let at = (outStart + {{ c }}u) * {{ blocks * multiplier }}u + block * {{ multiplier }}u;
{% for j in range(multiplier) %}
    store_result(at + {{ j }}u, activate4(sum{{ c }}_{{ j }}, block * {{ multiplier }}u + {{ j }}u, at + {{ j }}u));
{% endfor %}
  }
{% endfor %}
}

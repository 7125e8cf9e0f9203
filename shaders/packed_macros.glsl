{#- Pieces shared by the packed programs' main(). -#}

{#- `vec4 {{ name }}(int col, int row)`: texel (col, row) of `sampler`, sampled (NEAREST) at the
    texel centre, which reads exactly the texel texelFetch would; `texel_size` is the uniform
    1 / (cols, rows) of its texture. -#}
{% macro texel_fetch(name, sampler, texel_size) -%}
vec4 {{ name }}(int col, int row) {
  return texture({{ sampler }}, (vec2(col, row) + 0.5) * {{ texel_size }});
}
{%- endmacro %}

{#- Which outputs this fragment computes: 4 channels (block d2Block) of `pixels` pixels
    starting at outCol0, in row outRow of image `batch`.  The render target holds
    `fold` bands of output rows side by side (gpuconv.layout.SplitImageLayout): undo that.
    Declares band, texCol, texRow, d2Block, outCol0, batch and outRow for the caller. -#}
{% macro fragment_position(pixels) -%}
  int band = int(gl_FragCoord.x) / outCols;
  int texCol = int(gl_FragCoord.x) - band * outCols;
  int texRow = band * outBandRows + int(gl_FragCoord.y);
  if (texRow >= outRows) {
    discard;  // the last band's padding
  }
  int d2Block = texCol - (texCol / outDepth4) * outDepth4;
  int outCol0 = (texCol / outDepth4) * {{ pixels }};
  int batch = texRow / outHeight;
  int outRow = texRow - batch * outHeight;
{%- endmacro %}

{#- Bias, residual, activation, then the `pixels` results to their render targets.
    The caller must declare `vec4 acc0 .. acc<pixels-1>` (the sums) and `int d2Block`, `outCol0`
    and `texRow` (from fragment_position); a residual (PackedImageLayout of the output) also
    needs `uniform int residualWidth` (the output's width: the last group's padding pixels
    read its last column). -#}
{% macro write_results(fused, epilogue, pixels) -%}
{% for j in range(pixels) %}
{{ fused.apply_packed(epilogue, "acc" ~ j, "d2Block",
                      "ivec2(min(outCol0 + " ~ j ~ ", residualWidth - 1) * outDepth4 + d2Block, texRow)") }}
  result{{ j }} = acc{{ j }};
{% endfor %}
{%- endmacro %}

{#- The loop over filter rows shared by the packed programs: rows outside the input are
    skipped (zero padding).  The caller's body runs once per filter row wR with xRow, the
    input row's texel row, and xCCorner, the input column of the first pixel's first tap.
    The caller must have run fragment_position (it declares outRow, outCol0 and batch). -#}
{% macro filter_rows() %}
  int xRCorner = outRow * strides.x - pads.x;
  int xCCorner = outCol0 * strides.y - pads.y;
  int xRowOffset = batch * inSize.x;

  for (int wR = 0; wR < filterSize.x; wR++) {
    int xR = xRCorner + wR * dilations.x;
    if (xR < 0 || xR >= inSize.x) {
      continue;
    }
    int xRow = xRowOffset + xR;
{{ caller() }}  }
{%- endmacro %}

{% extends "packed_program.glsl" %}
{#- DepthwiseConv2D, packed: output channels 4 * d2Block .. + 3 for {{ pixels }} output pixels,
    one input texel per pixel and tap.  A channel multiplier m is packed into x (each input
    channel stored m times, gpuconv.layout.PackedImageLayout.repeat), so output channel
    k * m + q finds its input at the same channel position as its weights. -#}

{% block main %}
{% import "packed_macros.glsl" as packed %}
uniform vec2 xTexelSize;  // 1 / (cols, rows) of x's texture{{ "s" if x_split }}
uniform vec2 wTexelSize;

// Nearest sampling at the texel centre reads exactly the texel texelFetch would.  With the
// padding selected rather than branched around (below), it is faster here too: x and W
// sampled so took 0.66-0.80x the time of texelFetch on llvmpipe (dw 3x3 s1/s2 and 5x5 s1/s2
// of MobileNets, 2026-12-07; with a branch per fetch it had made no consistent difference).
{% if x_split %}
{% for j in range(pixels) %}
{{ packed.texel_fetch("fetchX" ~ j, "x" ~ j, "xTexelSize") }}
{% endfor %}
{% else %}
{{ packed.texel_fetch("fetchX", "x", "xTexelSize") }}
{% endif %}
{{ packed.texel_fetch("fetchW", "W", "wTexelSize") }}

void main() {
{{ packed.fragment_position(pixels) }}

{% for j in range(pixels) %}
  vec4 acc{{ j }} = vec4(0.0);
{% endfor %}
{% if reuse_width %}
{% set columns = (pixels - 1) * reuse_stride + reuse_width %}
  // The window's {{ columns }} input columns are the same for every filter row: where each is read,
  // clamped into the input so that every fetch is in range, and whether it is inside the input
  // (a column of padding reads zero: selected, not multiplied by 0, so an inf at the edge stays
  // out of the padding's products).  Selecting instead of branching around each fetch took
  // 0.75-0.88x the time on llvmpipe (dw 3x3 s1/s2 and 5x5 s1/s2 of MobileNets, 2026-12-07).
  int windowCol0 = outCol0 * strides.y - pads.y;
{% if x_split %}
  int lastGroup = inCols / inDepth4 - 1;  // the split textures' last pixel group
{% endif %}
{% for t in range(columns) %}
{% if x_split %}
{% set texture, group = split_taps[t] %}
  int xCol{{ t }} = clamp((outCol0 / {{ pixels }}) * strides.y {{ "-" if group < 0 else "+" }} {{ group | abs }}, 0, lastGroup) * inDepth4 + d2Block;  // in x{{ texture }}
{% else %}
  int xCol{{ t }} = clamp(windowCol0 + {{ t }}, 0, inSize.y - 1) * inDepth4 + d2Block;
{% endif %}
  bvec4 xIn{{ t }} = bvec4(windowCol0 + {{ t }} >= 0 && windowCol0 + {{ t }} < inSize.y);
{% endfor %}
{% endif %}
{% call packed.filter_rows() %}
{% if reuse_width %}
    // Stride {{ reuse_stride }}, no dilation across: the {{ pixels }} output pixels read input columns
    // windowCol0 .. windowCol0 + {{ columns - 1 }}; each is fetched once and used for every tap that needs it.
    int wRow = wR * {{ reuse_width }};
{% for wC in range(reuse_width) %}
    vec4 w{{ wC }} = fetchW(d2Block, wRow + {{ wC }});
{% endfor %}
{% if x_split %}
    // x is a packed program's {{ pixels }} outputs, read in place: input column c is in texture
    // c % {{ pixels }}, pixel group c / {{ pixels }}.  This window's first column is
    // {{ pixels }} * q * stride - pads.y with outCol0 = {{ pixels }} * q, so each column's
    // texture and group offset from q * stride are fixed (split_taps; pads.y baked in).
    int xBand = xRow / inBandRows;  // the textures' bands of rows, side by side
    int xTexRow = xRow - xBand * inBandRows;
    int xBandCol = xBand * inCols;
{% endif %}
{% for t in range(columns) %}
{% if x_split %}
    vec4 xValue{{ t }} = mix(vec4(0.0), fetchX{{ split_taps[t][0] }}(xBandCol + xCol{{ t }}, xTexRow), xIn{{ t }});
{% else %}
    vec4 xValue{{ t }} = mix(vec4(0.0), fetchX(xCol{{ t }}, xRow), xIn{{ t }});
{% endif %}
{% for j in range(pixels) %}
{% if 0 <= t - j * reuse_stride < reuse_width %}
    acc{{ j }} += w{{ t - j * reuse_stride }} * xValue{{ t }};
{% endif %}
{% endfor %}
{% endfor %}
{% else %}
    for (int wC = 0; wC < filterSize.y; wC++) {
      int xC = xCCorner + wC * dilations.y;
      vec4 w = fetchW(d2Block, wR * filterSize.y + wC);
{% for j in range(pixels) %}
      int xC{{ j }} = xC + {{ j }} * strides.y;
      acc{{ j }} += w * mix(vec4(0.0), fetchX(clamp(xC{{ j }}, 0, inSize.y - 1) * inDepth4 + d2Block, xRow),
                            bvec4(xC{{ j }} >= 0 && xC{{ j }} < inSize.y));  // selected, as above
{% endfor %}
    }
{% endif %}
{% endcall %}

{{ packed.write_results(fused, epilogue, pixels) }}
}
{% endblock %}

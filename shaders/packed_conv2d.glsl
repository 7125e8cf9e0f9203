{% extends "packed_program.glsl" %}
{#- Conv2D, packed: per tap and per block of 4 input channels, one mat4 of weights
    (4 fetches) serves {{ pixels }} output pixels (one fetch each): 16 multiply-adds per
    fetched weight texel per pixel, where the TF.js-style program spends 2 fetches on
    every multiply-add.  At stride 1 neighbouring pixels also share fetched input columns. -#}

{% block main %}
{% import "packed_macros.glsl" as packed %}
uniform vec2 xTexelSize;  // 1 / (cols, rows) of x's texture{{ "s" if x_split }}
uniform vec2 wTexelSize;
{% if flat_row %}
uniform int outWidth;
{% endif %}

// Nearest sampling at the texel centre reads exactly the texel texelFetch would; on
// llvmpipe it is 15-20% faster for these programs (measured; TF.js samples this way too).
{% if not x_split %}
{{ packed.texel_fetch("fetchX", "x", "xTexelSize") }}
{% endif %}

{{ packed.texel_fetch("fetchW", "W", "wTexelSize") }}

void main() {
{{ packed.fragment_position(pixels) }}

{% for j in range(pixels) %}
  vec4 acc{{ j }} = vec4(0.0);
{% endfor %}
{% if x_split %}
  // 1x1, stride 1, no padding: output pixel {{ pixels }}q + j is input pixel {{ pixels }}q + j, held by xj.
  // x's textures are folded like the output (same rows, same bands), only narrower.
  int xCol = band * inCols + (outCol0 / {{ pixels }}) * inDepth4;
  int xTexRow = int(gl_FragCoord.y);
  for (int d1Block = 0; d1Block < inDepth4; d1Block++) {
    int wRow = d1Block * 4;
    mat4 w = mat4(fetchW(d2Block, wRow), fetchW(d2Block, wRow + 1),
                  fetchW(d2Block, wRow + 2), fetchW(d2Block, wRow + 3));
{% for j in range(pixels) %}
    acc{{ j }} += w * texture(x{{ j }}, (vec2(xCol + d1Block, xTexRow) + 0.5) * xTexelSize);
{% endfor %}
  }
{% else %}
{% if flat_row %}
  // Pixel j's first tap of a filter row is texel column xColStart j of x's row; a pixel past the
  // output's width (the last group's padding) reads the last one's.
  int rowTexels = filterSize.y * inDepth4;
{% for j in range(pixels) %}
  int xColStart{{ j }} = (min(outCol0 + {{ j }}, outWidth - 1) * strides.y - pads.y) * inDepth4;
{% if flat_row_checked %}
  int kFirst{{ j }} = max(-xColStart{{ j }}, 0);                  // taps left of the input: padding
  int kEnd{{ j }} = min(inSize.y * inDepth4 - xColStart{{ j }}, rowTexels);  // and right of it
{% endif %}
{% endfor %}
{% endif %}
{% call packed.filter_rows() %}
{% if reuse_width %}
    // Stride {{ reuse_stride }}, no dilation across: the {{ pixels }} output pixels read input columns
    // xCCorner .. xCCorner + {{ (pixels - 1) * reuse_stride + reuse_width - 1 }}: fetch each once per block of channels.
{% for t in range((pixels - 1) * reuse_stride + reuse_width) %}
    bool inside{{ t }} = xCCorner + {{ t }} >= 0 && xCCorner + {{ t }} < inSize.y;
    int xCol{{ t }} = (xCCorner + {{ t }}) * inDepth4;
{% endfor %}
    int wRow = wR * {{ reuse_width }} * inDepth4 * 4;
    for (int d1Block = 0; d1Block < inDepth4; d1Block++) {
{% for t in range((pixels - 1) * reuse_stride + reuse_width) %}
      vec4 x{{ t }} = inside{{ t }} ? fetchX(xCol{{ t }} + d1Block, xRow) : vec4(0.0);
{% endfor %}
{% for wC in range(reuse_width) %}
      {
        int tapRow = wRow + ({{ wC }} * inDepth4 + d1Block) * 4;
        mat4 w = mat4(fetchW(d2Block, tapRow), fetchW(d2Block, tapRow + 1),
                      fetchW(d2Block, tapRow + 2), fetchW(d2Block, tapRow + 3));
{% for j in range(pixels) %}
        if (inside{{ j * reuse_stride + wC }}) {  // a tap on the padding adds nothing (not 0 * w: w may be inf)
          acc{{ j }} += w * x{{ j * reuse_stride + wC }};
        }
{% endfor %}
      }
{% endfor %}
    }
{% elif flat_row %}
    // No dilation across: pixel j's taps of this filter row are one run of filterSize.y * inDepth4
    // texels of x's row, in the filter's order, so one loop walks them (no loop per tap).
    // Texel k of pixel j's run is at xUV j + (k * xTexelSize.x, 0): one addition per fetch.
    float xV = (float(xRow) + 0.5) * xTexelSize.y;
{% for j in range(pixels) %}
    vec2 xUV{{ j }} = vec2((float(xColStart{{ j }}) + 0.5) * xTexelSize.x, xV);
{% endfor %}
    int wRow = wR * rowTexels * 4;
    for (int k = 0; k < rowTexels; k++) {
      mat4 w = mat4(fetchW(d2Block, wRow), fetchW(d2Block, wRow + 1),
                    fetchW(d2Block, wRow + 2), fetchW(d2Block, wRow + 3));
      wRow += 4;
      vec2 step = vec2(float(k) * xTexelSize.x, 0.0);
{% for j in range(pixels) %}
{% if flat_row_checked %}
      if (k >= kFirst{{ j }} && k < kEnd{{ j }}) {  // a tap on the padding adds nothing
        acc{{ j }} += w * texture(x, xUV{{ j }} + step);
      }
{% else %}
      acc{{ j }} += w * texture(x, xUV{{ j }} + step);
{% endif %}
{% endfor %}
    }
{% else %}
    for (int wC = 0; wC < filterSize.y; wC++) {
      int xC = xCCorner + wC * dilations.y;
{% for j in range(pixels) %}
      int xC{{ j }} = xC + {{ j }} * strides.y;
      bool inside{{ j }} = xC{{ j }} >= 0 && xC{{ j }} < inSize.y;  // outside: zero padding
      int xCol{{ j }} = xC{{ j }} * inDepth4;
{% endfor %}
      int wRow = (wR * filterSize.y + wC) * inDepth4 * 4;
      for (int d1Block = 0; d1Block < inDepth4; d1Block++) {
        mat4 w = mat4(fetchW(d2Block, wRow), fetchW(d2Block, wRow + 1),
                      fetchW(d2Block, wRow + 2), fetchW(d2Block, wRow + 3));
        wRow += 4;
{% for j in range(pixels) %}
        if (inside{{ j }}) {
          acc{{ j }} += w * fetchX(xCol{{ j }} + d1Block, xRow);
        }
{% endfor %}
      }
    }
{% endif %}
{% endcall %}
{% endif %}

{{ packed.write_results(fused, epilogue, pixels) }}
}
{% endblock %}

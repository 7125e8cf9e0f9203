{#- TF.js's MatMulPackedProgram, as im2col's second half: the im2col matrix A
    ([batch * outHeight * outWidth, FH * FW * inC], 4 columns per RGBA texel) times the
    filter reshaped to [FH * FW * inC, outC] (PackedFilterLayout: 4 output channels per
    texel, 4 rows per mat4), then the fused bias and activation.  Each fragment computes
    {{ pixels }} rows of the product (output pixels of one output row) x 4 columns (output
    channels) and writes them to {{ pixels }} render targets, as the packed programs do
    (SplitImageLayout), so it reuses their frame: fragment_position and write_results.
    The shortcut (a 1x1 unpadded filter) reads x itself as A: output pixel (b, r, c)'s row of the
    matrix is x's pixel (b, r * strides.x, c * strides.y), so a strided one fetches only the
    pixels it keeps. -#}
{% import "epilogue.glsl" as fused with context %}
{% import "packed_macros.glsl" as packed %}
{% include "header.glsl" %}

// {{ description }}
{% if shortcut %}
uniform sampler2D A;        // x: texel (col = inCol * patchDepth4 + k4, row = batch * inHeight + inRow)
uniform int inHeight;
uniform ivec2 strides;      // (rows, columns)
{% else %}
{% for j in range(pixels) %}
uniform sampler2D A{{ j }};       // the im2col matrix's rows of output pixels part * rowPixels + {{ pixels }}q + {{ j }}
{% endfor %}
{% endif %}
// (texel col = q * patchDepth4 + k4, row = (batch * outHeight + outRow) * rowSplit + part)
uniform sampler2D W;        // texel (col = d2Block, row = 4 * k4 + c % 4)
{{ fused.packed_uniforms(epilogue) -}}
uniform vec2 aTexelSize;    // 1 / (cols, rows) of A's texture
uniform vec2 wTexelSize;

uniform int patchDepth4;    // the shared dimension, in texels of 4
uniform int outHeight;
uniform int outWidth;
uniform int rowPixels;      // output pixels per texture row of A (outWidth, unless too wide)
uniform int rowSplit;       // A's texture rows per output row
uniform int outDepth4;      // output channels / 4, rounded up
uniform int outRows;        // batch * outHeight
uniform int outCols;        // pixel groups per row * outDepth4: the width of one band
uniform int outBandRows;    // rows of each band of the folded render target

{% for j in range(pixels) %}
layout(location = {{ j }}) out vec4 result{{ j }};  // output pixel {{ pixels }}q + {{ j }}
{% endfor %}

{{ fused.activation_function(epilogue) }}

{% if shortcut %}
{{ packed.texel_fetch("fetchA", "A", "aTexelSize") }}
{% endif %}

{{ packed.texel_fetch("fetchW", "W", "wTexelSize") }}

void main() {
{{ packed.fragment_position(pixels) }}

{% if shortcut %}
  // Pixel j's row of the matrix is x's pixel (outRow, outCol0 + j) times the strides; a pixel past
  // the output's width (the last group's padding) reads the last one's.
  int aRow = batch * inHeight + outRow * strides.x;
{% for j in range(pixels) %}
  int aCol{{ j }} = min(outCol0 + {{ j }}, outWidth - 1) * strides.y * patchDepth4;
  vec4 acc{{ j }} = vec4(0.0);
{% endfor %}
  for (int k4 = 0; k4 < patchDepth4; k4++) {
    int wRow = k4 * 4;
    mat4 w = mat4(fetchW(d2Block, wRow), fetchW(d2Block, wRow + 1),
                  fetchW(d2Block, wRow + 2), fetchW(d2Block, wRow + 3));
{% for j in range(pixels) %}
    acc{{ j }} += w * fetchA(aCol{{ j }} + k4, aRow);
{% endfor %}
  }
{% else %}
  // The group's rows of the matrix: one texel column in all {{ pixels }} textures A0 ...
  int part = outCol0 / rowPixels;
  vec2 aUV = vec2(float((outCol0 - part * rowPixels) / {{ pixels }} * patchDepth4) + 0.5,
                  float(texRow * rowSplit + part) + 0.5) * aTexelSize;
{% for j in range(pixels) %}
  vec4 acc{{ j }} = vec4(0.0);
{% endfor %}
  for (int k4 = 0; k4 < patchDepth4; k4++) {
    int wRow = k4 * 4;
    mat4 w = mat4(fetchW(d2Block, wRow), fetchW(d2Block, wRow + 1),
                  fetchW(d2Block, wRow + 2), fetchW(d2Block, wRow + 3));
    vec2 uv = aUV + vec2(float(k4) * aTexelSize.x, 0.0);
{% for j in range(pixels) %}
    acc{{ j }} += w * texture(A{{ j }}, uv);
{% endfor %}
  }
{% endif %}

{{ packed.write_results(fused, epilogue, pixels) }}
}

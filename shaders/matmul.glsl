{#- TF.js's MatMulPackedProgram, as im2col's second half: the im2col matrix A
    ([batch * outHeight * outWidth, FH * FW * inC], 4 columns per RGBA texel) times the
    filter reshaped to [FH * FW * inC, outC] (PackedFilterLayout: 4 output channels per
    texel, 4 rows per mat4), then the fused bias and activation.  Each fragment computes
    {{ pixels }} rows of the product (output pixels of one output row) x 4 columns (output
    channels) and writes them to {{ pixels }} render targets, as the packed programs do
    (SplitImageLayout), so it reuses their frame: fragment_position and write_results. -#}
{% import "epilogue.glsl" as fused with context %}
{% import "packed_macros.glsl" as packed %}
{% include "header.glsl" %}

// {{ description }}
uniform sampler2D A;        // texel (col = (outCol % rowPixels) * patchDepth4 + k4,
                            //        row = (batch * outHeight + outRow) * rowSplit + outCol / rowPixels)
uniform sampler2D W;        // texel (col = d2Block, row = 4 * k4 + c % 4)
{% if epilogue.has_bias %}
uniform sampler2D bias;
{% endif %}
{% if epilogue.activation == "prelu" %}
uniform sampler2D preluActivationWeights;
{% endif %}
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

vec4 fetchA(int col, int row) {
  return texture(A, (vec2(col, row) + 0.5) * aTexelSize);
}

vec4 fetchW(int col, int row) {
  return texture(W, (vec2(col, row) + 0.5) * wTexelSize);
}

void main() {
{{ packed.fragment_position(pixels) }}

  // Where each pixel's row of the matrix starts in A's texture; a pixel past the output's
  // width (the last group's padding) reads the last one's.
{% for j in range(pixels) %}
  int pixel{{ j }} = min(outCol0 + {{ j }}, outWidth - 1);
  int aRowPart{{ j }} = pixel{{ j }} / rowPixels;
  int aRow{{ j }} = texRow * rowSplit + aRowPart{{ j }};
  int aCol{{ j }} = (pixel{{ j }} - aRowPart{{ j }} * rowPixels) * patchDepth4;
  vec4 acc{{ j }} = vec4(0.0);
{% endfor %}
  for (int k4 = 0; k4 < patchDepth4; k4++) {
    int wRow = k4 * 4;
    mat4 w = mat4(fetchW(d2Block, wRow), fetchW(d2Block, wRow + 1),
                  fetchW(d2Block, wRow + 2), fetchW(d2Block, wRow + 3));
{% for j in range(pixels) %}
    acc{{ j }} += w * fetchA(aCol{{ j }} + k4, aRow{{ j }});
{% endfor %}
  }

{{ packed.write_results(fused, epilogue, pixels) }}
}

{#- TF.js's Im2ColPackedProgram, on the packed programs' layouts: each fragment writes one RGBA
    texel of the im2col matrix for each of {{ pixels }} neighbouring output pixels, one render
    target each (gpuconv.programs.Im2ColLayout): the 4 channels d1Block of filter tap (wR, wC)
    in their receptive fields.  Channels are padded per tap to a multiple of 4, so a texel is
    one texel of the packed x, copied whole; the {{ pixels }} pixels share the tap arithmetic.
    Sizes are uniforms (one program for every shape). -#}
{% include "header.glsl" %}

// {{ description }}
uniform sampler2D x;        // packed x: texel (col = c * inDepth4 + d / 4, row = b * inSize.x + r)
uniform vec2 xTexelSize;    // 1 / (cols, rows) of x's texture

uniform ivec2 inSize;       // input height, width
uniform int inDepth4;       // input channels / 4, rounded up
uniform int outHeight;
uniform int patchDepth4;    // texels per row of the matrix: filter taps * inDepth4
uniform int outWidth;
uniform int rowPixels;      // output pixels per texture row (outWidth, unless too wide)
uniform int rowSplit;       // texture rows per output row: ceil(outWidth / rowPixels)
uniform int filterWidth;
uniform ivec2 strides;
uniform ivec2 dilations;
uniform ivec2 pads;         // top, left
uniform vec4 inverses;      // 1 / (patchDepth4, inDepth4, filterWidth, outHeight)
uniform float inverseRowSplit;

{% for j in range(pixels) %}
layout(location = {{ j }}) out vec4 result{{ j }};  // output pixel {{ pixels }}q + {{ j }}
{% endfor %}

// a / b for 0 <= a < 2^22 and b > 0, by the float reciprocal: (a + 0.5) / b lies at least 0.5 / b
// from an integer, far more than float32's rounding at these sizes, so the truncation is exact.
// llvmpipe runs an integer division lane by lane (AVX2 has none); with the reciprocals this
// program measured 1.33x faster on 3x3 s2 over 1x128x128x3, 1.12x on 7x7 s2 over 1x224x224x3
// (one pixel per fragment).
int divide(int a, float inverse) {
  return int((float(a) + 0.5) * inverse);
}

void main() {
  // These texels: (col = q * patchDepth4 + k4, row = (batch * outHeight + outRow) * rowSplit + part)
  // of output pixels part * rowPixels + {{ pixels }}q + j.
  int texCol = int(gl_FragCoord.x);
  int texRow = int(gl_FragCoord.y);
  int rowPart = divide(texRow, inverseRowSplit);
  int group = divide(texCol, inverses.x);
  int k4 = texCol - group * patchDepth4;
  int outCol0 = (texRow - rowPart * rowSplit) * rowPixels + group * {{ pixels }};
  int tap = divide(k4, inverses.y);              // k4 = (wR * filterWidth + wC) * inDepth4 + d1Block
  int d1Block = k4 - tap * inDepth4;
  int wR = divide(tap, inverses.z);
  int wC = tap - wR * filterWidth;
  int batch = divide(rowPart, inverses.w);
  int outRow = rowPart - batch * outHeight;

  int xR = outRow * strides.x - pads.x + wR * dilations.x;
  bool rowInside = xR >= 0 && xR < inSize.x;
  float xRow = float(batch * inSize.x + xR) + 0.5;
  int xC0 = outCol0 * strides.y - pads.y + wC * dilations.y;
{% for j in range(pixels) %}
  {
    int xC = xC0 + {{ j }} * strides.y;
    // outside the input: a tap on the padding (TF.js's im2col writes zeros there too); past the
    // output's width: the last group's padding
    bool inside = rowInside && xC >= 0 && xC < inSize.y && outCol0 + {{ j }} < outWidth;
    // nearest sampling at the texel centre, as the packed programs and TF.js read
    result{{ j }} = inside ? texture(x, vec2(float(xC * inDepth4 + d1Block) + 0.5, xRow) * xTexelSize) : vec4(0.0);
  }
{% endfor %}
}

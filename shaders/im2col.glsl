{#- TF.js's Im2ColPackedProgram, on the packed programs' layouts: each fragment writes one RGBA
    texel of the im2col matrix, 4 columns of one row (gpuconv.programs.im2col_layout): the
    4 channels d1Block of filter tap (wR, wC) in output pixel (batch, outRow, outCol)'s
    receptive field.  Channels are padded per tap to a multiple of 4, so the texel is one
    texel of the packed x, copied whole.  Sizes are uniforms (one program for every shape). -#}
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

layout(location = 0) out vec4 result;

// a / b for 0 <= a < 2^22 and b > 0, by the float reciprocal: (a + 0.5) / b lies at least 0.5 / b
// from an integer, far more than float32's rounding at these sizes, so the truncation is exact.
// llvmpipe runs an integer division lane by lane (AVX2 has none); with the reciprocals this
// program measured 1.33x faster on 3x3 s2 over 1x128x128x3, 1.12x on 7x7 s2 over 1x224x224x3.
int divide(int a, float inverse) {
  return int((float(a) + 0.5) * inverse);
}

void main() {
  // This texel: (col = (outCol % rowPixels) * patchDepth4 + k4,
  //             row = (batch * outHeight + outRow) * rowSplit + outCol / rowPixels).
  int texCol = int(gl_FragCoord.x);
  int texRow = int(gl_FragCoord.y);
  int rowPart = divide(texRow, inverseRowSplit);
  int pixel = divide(texCol, inverses.x);
  int k4 = texCol - pixel * patchDepth4;
  int outCol = (texRow - rowPart * rowSplit) * rowPixels + pixel;
  texRow = rowPart;
  int tap = divide(k4, inverses.y);              // k4 = (wR * filterWidth + wC) * inDepth4 + d1Block
  int d1Block = k4 - tap * inDepth4;
  int wR = divide(tap, inverses.z);
  int wC = tap - wR * filterWidth;
  int batch = divide(texRow, inverses.w);
  int outRow = texRow - batch * outHeight;

  int xR = outRow * strides.x - pads.x + wR * dilations.x;
  int xC = outCol * strides.y - pads.y + wC * dilations.y;
  if (xR < 0 || xR >= inSize.x || xC < 0 || xC >= inSize.y || outCol >= outWidth) {
    result = vec4(0.0);  // a tap on the padding (TF.js's im2col writes zeros there too), or past the row's end
    return;
  }
  // Nearest sampling at the texel centre, as the packed programs and TF.js read.
  result = texture(x, (vec2(xC * inDepth4 + d1Block, batch * inSize.x + xR) + 0.5) * xTexelSize);
}

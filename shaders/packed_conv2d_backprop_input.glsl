{% extends "packed_program.glsl" %}
{#- Conv2DDerInputProgram, packed (the input gradient, and the transposed convolution with
    its fused epilogue): dx[b, r, c, 4 channels] of {{ pixels }} neighbouring columns per
    fragment.  The frame's "input" is dy (inSize, inDepth4: dy's height, width and channel
    blocks), its "output" dx; `pads` are the transposed pads (effective filter - 1 - pad).
    Per tap, one mat4 of weights (the filter swapped: 4 dy channels -> 4 dx channels,
    flipped here by index) serves every pixel whose dy position
    (dx position - pad + tap * dilation) / stride is a whole number inside dy. -#}

{% block main %}
{% import "packed_macros.glsl" as packed %}
uniform vec2 dyTexelSize;  // 1 / (cols, rows) of dy's texture
uniform vec2 wTexelSize;
uniform int tapRowStep;    // strides.x / gcd(strides.x, dilations.x): filter rows between whole dy rows

// Nearest sampling at the texel centre, as the packed conv2d program reads.
{{ packed.texel_fetch("fetchDy", "dy", "dyTexelSize") }}

{{ packed.texel_fetch("fetchW", "W", "wTexelSize") }}

void main() {
{{ packed.fragment_position(pixels) }}

{% for j in range(pixels) %}
  vec4 acc{{ j }} = vec4(0.0);
{% endfor %}
  int dyRCorner = outRow - pads.x;
  int dyCCorner = outCol0 - pads.y;
  int dyRowOffset = batch * inSize.x;

  // Only the filter rows whose dy row is whole, wR = wRFirst, wRFirst + tapRowStep, ...: at
  // stride 2 the rows between dy rows cost no iteration (shifted keeps the residue, not negative).
  int shifted = dyRCorner + strides.x * filterSize.x * dilations.x;
  int wRFirst = 0;
  while (wRFirst < tapRowStep && (shifted + wRFirst * dilations.x) - (shifted + wRFirst * dilations.x) / strides.x * strides.x != 0) {
    wRFirst++;
  }
  if (wRFirst == tapRowStep) {
    wRFirst = filterSize.x;  // no filter row lands on a dy row
  }
  for (int wR = wRFirst; wR < filterSize.x; wR += tapRowStep) {
    int dyRNum = dyRCorner + wR * dilations.x;
    int dyR = max(dyRNum, 0) / strides.x;
    if (dyRNum < 0 || dyR >= inSize.x) {
      continue;  // outside dy
    }
    int dyRow = dyRowOffset + dyR;
    int wRPerm = filterSize.x - 1 - wR;
    for (int wC = 0; wC < filterSize.y; wC++) {
      int dyCNum = dyCCorner + wC * dilations.y;
{% for j in range(pixels) %}
      int dyC{{ j }} = max(dyCNum + {{ j }}, 0) / strides.y;
      bool inside{{ j }} = dyCNum + {{ j }} >= 0 && dyC{{ j }} * strides.y == dyCNum + {{ j }} && dyC{{ j }} < inSize.y;
      int dyCol{{ j }} = dyC{{ j }} * inDepth4;
{% endfor %}
      if (!({% for j in range(pixels) %}inside{{ j }}{{ " || " if not loop.last }}{% endfor %})) {
        continue;  // this tap lands on no pixel of the fragment
      }
      int wRow = (wRPerm * filterSize.y + filterSize.y - 1 - wC) * inDepth4 * 4;
      // a pixel whose tap falls between dy positions adds nothing (not 0 * w: w may be inf)
      for (int d2 = 0; d2 < inDepth4; d2++) {
        mat4 w = mat4(fetchW(d2Block, wRow), fetchW(d2Block, wRow + 1),
                      fetchW(d2Block, wRow + 2), fetchW(d2Block, wRow + 3));
        wRow += 4;
{% for j in range(pixels) %}
        if (inside{{ j }}) {
          acc{{ j }} += w * fetchDy(dyCol{{ j }} + d2, dyRow);
        }
{% endfor %}
      }
    }
  }

{{ packed.write_results(fused, epilogue, pixels) }}
}
{% endblock %}

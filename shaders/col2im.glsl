{% extends "packed_program.glsl" %}
{#- The transposed convolution's second half, col2im (gpuconv.programs.Col2ImProgramSpec).
    MatMulPackedProgram first multiplied x by the filter reshaped to
    [inC, FH * FW * outDepth4 * 4]: for each input pixel (b, h, w) the product holds what each
    tap (wR, wC) adds to 4 output channels of output pixel
    (h * strides.x - pads.x + wR * dilations.x, w * strides.y - pads.y + wC * dilations.y),
    in texel block (wR * FW + wC) * outDepth4 + d2Block of that pixel (split textures x0 ..,
    as the packed programs write them).  Each fragment adds up, for {{ pixels }} neighbouring
    output pixels x 4 channels, the texels of the taps that land on them (at most
    ceil(FH / stride) * ceil(FW / stride) each; one where the stride is the filter's size), then
    applies the fused epilogue.  inSize and inDepth4 are the product's height, width and texels
    per pixel.  The filter's width, stride and dilation across and the left padding modulo
    {{ pixels }} * stride are baked in, so that which texture holds each pixel's texel is known
    when the program is made (a texture chosen at run time costs llvmpipe a fetch from each). -#}

{% block main %}
{% import "packed_macros.glsl" as packed %}
{% set period = pixels * stride %}
uniform int shiftPeriods;  // periods of {{ period }} columns added to keep a window's corner >= 0

void main() {
{{ packed.fragment_position(pixels) }}

{% for j in range(pixels) %}
  vec4 acc{{ j }} = vec4(0.0);
{% endfor %}
  // Output pixel j takes, from filter column wC, input column (corner + j) / {{ stride }} where that
  // divides, corner = outCol0 + padLeft - wC * {{ dilation }}.  With outCol0 = {{ pixels }} * ({{ stride }} * g + phase)
  // and padLeft - wC * {{ dilation }} = {{ period }} * k + r (r = {{ pad_phase }} - wC * {{ dilation }} mod {{ period }},
  // known here), that column is {{ pixels }} * (g + k) + (t + j) / {{ stride }} for t = {{ pixels }} * phase + r: which
  // pixels take one, and which texture and column group hold it, are known here for each phase.
  int fragmentGroup = outCol0 / {{ pixels }};
  int g = fragmentGroup / {{ stride }};
  int phase = fragmentGroup - g * {{ stride }};
  for (int wR = 0; wR < filterSize.x; wR++) {
    int hNum = outRow + pads.x - wR * dilations.x;
    int h = max(hNum, 0) / strides.x;
    if (hNum < 0 || h * strides.x != hNum || h >= inSize.x) {
      continue;  // this filter row lands between input rows or outside them
    }
    int row = batch * inSize.x + h;
    int band = row / inBandRows;
    int bandCol = band * inCols;
    int bandRow = row - band * inBandRows;
{% for wC in range(filter_width) %}
{% set r = (pad_phase - wC * dilation) % period %}
    {
      int k = (pads.y - {{ wC * dilation }} + shiftPeriods * {{ period }}) / {{ period }} - shiftPeriods;
      int block = bandCol + (wR * {{ filter_width }} + {{ wC }}) * outDepth4 + d2Block;
{% for phase in range(stride) %}
{% set t = pixels * phase + r %}
      {{ "} else " if not loop.first }}if (phase == {{ phase }}) {
        int w0 = {{ pixels }} * (g + k + {{ t // period }});
        int col0 = (g + k + {{ t // period }}) * inDepth4 + block;
{% for j in range(pixels) if (t % period + j) % stride == 0 %}
{% set u = (t % period + j) // stride %}
        if (w0 + {{ u }} >= 0 && w0 + {{ u }} < inSize.y) {
          acc{{ j }} += texelFetch(x{{ u % pixels }}, ivec2(col0 + {{ u // pixels }} * inDepth4, bandRow), 0);
        }
{% endfor %}
{% if loop.last %}
      }
{% endif %}
{% endfor %}
    }
{% endfor %}
  }

{{ packed.write_results(fused, epilogue, pixels) }}
}
{% endblock %}

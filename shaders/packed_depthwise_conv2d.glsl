{% extends "packed_program.glsl" %}
{#- DepthwiseConv2D, packed: output channels 4 * d2Block .. + 3 for {{ pixels }} output pixels,
    one input texel per pixel and tap.  A channel multiplier m is packed into x (each input
    channel stored m times, gpuconv.layout.PackedImageLayout.repeat), so output channel
    k * m + q finds its input at the same channel position as its weights. -#}

{% block main %}
{% import "packed_macros.glsl" as packed %}
// texelFetch here, where the packed conv2d program samples with texture(): measured on
// llvmpipe (dw3x3 1x112x112x32, dw3x3 m2 s2, dw5x5 d2; 2026-12-01), texture() at texel
// centres made no consistent difference for this program (one fetch per tap and pixel,
// within the +-30% run-to-run noise), while for conv2d's mat4 loop it is 15-20% faster.
void main() {
{{ packed.fragment_position(pixels) }}

{% for j in range(pixels) %}
  vec4 acc{{ j }} = vec4(0.0);
{% endfor %}
{% call packed.filter_rows() %}
{% if reuse_width %}
    // Stride {{ reuse_stride }}, no dilation across: the {{ pixels }} output pixels read input columns
    // xCCorner .. xCCorner + {{ (pixels - 1) * reuse_stride + reuse_width - 1 }}; each is fetched once and used for every tap that needs it.
    int wRow = wR * {{ reuse_width }};
{% for wC in range(reuse_width) %}
    vec4 w{{ wC }} = texelFetch(W, ivec2(d2Block, wRow + {{ wC }}), 0);
{% endfor %}
{% if x_split %}
    // x is a packed program's {{ pixels }} outputs, read in place: input column c is in texture
    // c % {{ pixels }}, pixel group c / {{ pixels }}.  This window's first column is
    // {{ pixels }} * q * stride - pads.y with outCol0 = {{ pixels }} * q, so each column's
    // texture and group offset from q * stride are fixed (split_taps; pads.y baked in).
    int xBand = xRow / inBandRows;  // the textures' bands of rows, side by side
    int xTexRow = xRow - xBand * inBandRows;
    int xGroupCol = xBand * inCols + (outCol0 / {{ pixels }}) * strides.y * inDepth4 + d2Block;
{% endif %}
{% for t in range((pixels - 1) * reuse_stride + reuse_width) %}
    if (xCCorner + {{ t }} >= 0 && xCCorner + {{ t }} < inSize.y) {
{% if x_split %}
{% set texture, group = split_taps[t] %}
      vec4 xValue = texelFetch(x{{ texture }}, ivec2(xGroupCol {{ "-" if group < 0 else "+" }} {{ group | abs }} * inDepth4, xTexRow), 0);
{% else %}
      vec4 xValue = texelFetch(x, ivec2((xCCorner + {{ t }}) * inDepth4 + d2Block, xRow), 0);
{% endif %}
{% for j in range(pixels) %}
{% if 0 <= t - j * reuse_stride < reuse_width %}
      acc{{ j }} += w{{ t - j * reuse_stride }} * xValue;
{% endif %}
{% endfor %}
    }
{% endfor %}
{% else %}
    for (int wC = 0; wC < filterSize.y; wC++) {
      int xC = xCCorner + wC * dilations.y;
      vec4 w = texelFetch(W, ivec2(d2Block, wR * filterSize.y + wC), 0);
{% for j in range(pixels) %}
      int xC{{ j }} = xC + {{ j }} * strides.y;
      if (xC{{ j }} >= 0 && xC{{ j }} < inSize.y) {
        acc{{ j }} += w * texelFetch(x, ivec2(xC{{ j }} * inDepth4 + d2Block, xRow), 0);
      }
{% endfor %}
    }
{% endif %}
{% endcall %}

{{ packed.write_results(fused, epilogue, pixels) }}
}
{% endblock %}

{% extends "packed_program.glsl" %}
{#- DepthwiseConv2D, packed: output channels 4 * d2Block .. + 3 for {{ pixels }} output pixels.
    With multiplier 1 they read exactly one input texel per pixel and tap; otherwise
    their input channels (4 * d2Block + i) / multiplier lie in at most two texels. -#}

{% block uniforms %}
{% if not multiplier_is_one %}
uniform int channelMultiplier;
uniform int inChannels;
{% endif %}
{% endblock %}

{% block main %}
{% import "packed_macros.glsl" as packed %}
{% if not multiplier_is_one %}
// (t[c.x], t[c.y], t[c.z], t[c.w]) with boolean selects: llvmpipe turns dynamic vector
// indexing into slow code, and a select (unlike a multiply by 0/1) keeps a NaN in a
// neighbouring channel out.
vec4 spread(vec4 t, ivec4 c) {
  return mix(mix(t.xxxx, t.yyyy, equal(c, ivec4(1))), mix(t.zzzz, t.wwww, equal(c, ivec4(3))),
             greaterThan(c, ivec4(1)));
}

{% endif %}
void main() {
{{ packed.fragment_position(pixels) }}
{% if not multiplier_is_one %}

  // Input channel of each of the 4 output channels (clamped for the zero-filled tail).
  ivec4 d1 = min((ivec4(0, 1, 2, 3) + 4 * d2Block) / channelMultiplier, ivec4(inChannels - 1));
  int loBlock = d1.x / 4;
  int hiBlock = d1.w / 4;
  ivec4 component = d1 - (d1 / 4) * 4;
  bvec4 fromHi = greaterThan(d1 / 4, ivec4(loBlock));
{% endif %}

{% for j in range(pixels) %}
  vec4 acc{{ j }} = vec4(0.0);
{% endfor %}
  int xRCorner = outRow * strides.x - pads.x;
  int xCCorner = outCol0 * strides.y - pads.y;
  int xRowOffset = batch * inSize.x;

  for (int wR = 0; wR < filterSize.x; wR++) {
    int xR = xRCorner + wR * dilations.x;
    if (xR < 0 || xR >= inSize.x) {
      continue;
    }
    int xRow = xRowOffset + xR;
{% if reuse_width %}
    // Stride 1, no dilation across: the {{ pixels }} output pixels read input columns
    // xCCorner .. xCCorner + {{ reuse_width + pixels - 2 }}; each is fetched once and used for every tap that needs it.
    int wRow = wR * {{ reuse_width }};
{% for wC in range(reuse_width) %}
    vec4 w{{ wC }} = texelFetch(W, ivec2(d2Block, wRow + {{ wC }}), 0);
{% endfor %}
{% for t in range(reuse_width + pixels - 1) %}
    if (xCCorner + {{ t }} >= 0 && xCCorner + {{ t }} < inSize.y) {
      vec4 xValue = texelFetch(x, ivec2((xCCorner + {{ t }}) * inDepth4 + d2Block, xRow), 0);
{% for j in range(pixels) %}
{% if 0 <= t - j < reuse_width %}
      acc{{ j }} += w{{ t - j }} * xValue;
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
{% if multiplier_is_one %}
        acc{{ j }} += w * texelFetch(x, ivec2(xC{{ j }} * inDepth4 + d2Block, xRow), 0);
{% else %}
        vec4 lo{{ j }} = texelFetch(x, ivec2(xC{{ j }} * inDepth4 + loBlock, xRow), 0);
        vec4 hi{{ j }} = texelFetch(x, ivec2(xC{{ j }} * inDepth4 + hiBlock, xRow), 0);
        acc{{ j }} += w * mix(spread(lo{{ j }}, component), spread(hi{{ j }}, component), fromHi);
{% endif %}
      }
{% endfor %}
    }
{% endif %}
  }

{{ packed.write_results(fused, epilogue, pixels) }}
}
{% endblock %}

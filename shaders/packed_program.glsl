{#- The frame of the packed ("fast") programs.  Unlike the TF.js-style programs, their
    source does not depend on any shape: sizes arrive as uniforms, so a new shape of the
    same family reuses the compiled program.  Tensors hold 4 channels per RGBA texel
    (gpuconv.layout.PackedImageLayout); each fragment computes `pixels` output pixels of
    one row x 4 output channels and writes them to as many render targets (SplitImageLayout). -#}
{% import "epilogue.glsl" as fused with context %}
{% include "header.glsl" %}

// {{ description }}
{% if x_split %}
{% for j in range(pixels) %}
uniform sampler2D x{{ j }};  // the previous program's output {{ j }}: pixels {{ pixels }}q + {{ j }}
{% endfor %}
{% else %}
uniform sampler2D {{ x_name | default("x") }};   // texel (col = c * inDepth4 + d / 4, row = b * inSize.x + r)
{% endif %}
uniform sampler2D W;
{{ fused.packed_uniforms(epilogue) }}
uniform ivec2 inSize;       // input height, width
uniform int inDepth4;       // input channels / 4, rounded up
uniform int outHeight;
uniform int outDepth4;      // output channels / 4, rounded up
uniform int outRows;        // batch * outHeight
uniform int outCols;        // pixel groups per row * outDepth4: the width of one band
uniform int outBandRows;    // rows of each band of the folded render target
{% if x_split %}
uniform int inCols;         // the width of one band of the folded input textures
uniform int inBandRows;     // rows of each band of the folded input textures
{% endif %}
uniform ivec2 filterSize;
uniform ivec2 strides;
uniform ivec2 dilations;
uniform ivec2 pads;         // top, left

{% for j in range(pixels) %}
layout(location = {{ j }}) out vec4 result{{ j }};  // output pixel {{ pixels }}q + {{ j }}
{% endfor %}

{{ fused.activation_function(epilogue) }}
{% block main %}{% endblock %}

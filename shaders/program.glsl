{#- The frame of every program: header, one sampler per input, getOutputCoords(),
    then the program's own main() (the `main` block of conv2d.glsl, depthwise_conv2d.glsl). -#}
{% import "macros.glsl" as tensors with context %}
{% import "epilogue.glsl" as fused with context %}
{% include "header.glsl" %}

// {{ description }}
out vec4 outputColor;

void setOutput(float value) {
  outputColor = vec4(value, 0.0, 0.0, 0.0);
}

{% for input in inputs %}
uniform sampler2D {{ input.name }};
{% endfor %}

{% for input in inputs %}
{{ tensors.sampler(input) }}

{% endfor %}
{{ tensors.output_coords(output) }}

{{ fused.activation_function(epilogue) }}
{% block main %}{% endblock %}

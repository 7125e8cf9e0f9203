#version 300 es
{# A quad covering the viewport: every output texel gets one fragment. #}
precision highp float;

in vec2 clipSpacePos;

void main() {
  gl_Position = vec4(clipSpacePos, 0.0, 1.0);
}

{% extends "program.glsl" %}
{#- SliceSumProgram: the sum of a filter gradient's {{ slices }} partial sums (see
    conv2d_backprop_filter.glsl), slice s at rows s * {{ rows }} onwards of the partials. -#}

{% block main %}
void main() {
  ivec4 coords = getOutputCoords();
  float sum = 0.0;
  for (int s = 0; s < {{ slices }}; s++) {
    sum += getPartials(s * {{ rows }} + coords.x, coords.y, coords.z, coords.w);
  }
  setOutput(sum);
}
{% endblock %}

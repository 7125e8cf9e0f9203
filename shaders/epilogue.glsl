{#- The fused epilogue shared by the convolution programs: bias, then an activation.
    NaN passes through every activation, as it does in the NumPy oracle.  Mesa folds
    `x < 0.0 ? 0.0 : x` into a max() that drops NaN, hence the isnan() tests (as TF.js). -#}

{% macro activation_function(epilogue) -%}
{% if epilogue.activation != "linear" %}
float activation(float x{% if epilogue.activation == "prelu" %}, float alpha{% endif %}) {
{% if epilogue.activation == "relu" %}
  return isnan(x) ? x : (x < 0.0 ? 0.0 : x);
{% elif epilogue.activation == "relu6" %}
  return isnan(x) ? x : (x < 0.0 ? 0.0 : (x > 6.0 ? 6.0 : x));
{% elif epilogue.activation == "elu" %}
  return x >= 0.0 ? x : exp(x) - 1.0;
{% elif epilogue.activation == "sigmoid" %}
  return 1.0 / (1.0 + exp(-x));
{% elif epilogue.activation == "leakyrelu" %}
  return x < 0.0 ? {{ epilogue.leakyrelu_alpha | glsl_float }} * x : x;
{% elif epilogue.activation == "prelu" %}
  return x < 0.0 ? alpha * x : x;
{% endif %}
}
{% endif %}
{%- endmacro %}

{#- Applied to `value` for output element `coords` whose channel is `channel`. -#}
{% macro apply(epilogue, value, coords, channel) -%}
{% if epilogue.has_bias and epilogue.bias_per_channel %}
  {{ value }} += getBias({{ channel }});
{% elif epilogue.has_bias %}
  {{ value }} += getBias({{ coords }}.x, {{ coords }}.y, {{ coords }}.z, {{ coords }}.w);
{% endif %}
{% if epilogue.activation == "prelu" %}
{% if epilogue.prelu_per_channel %}
  {{ value }} = activation({{ value }}, getPreluActivationWeights({{ channel }}));
{% else %}
  {{ value }} = activation({{ value }}, getPreluActivationWeights({{ coords }}.x, {{ coords }}.y, {{ coords }}.z, {{ coords }}.w));
{% endif %}
{% elif epilogue.activation != "linear" %}
  {{ value }} = activation({{ value }});
{% endif %}
{%- endmacro %}

{#- The packed programs' epilogue: `value` holds 4 output channels (block `block`). -#}
{% macro apply_packed(epilogue, value, block) -%}
{% if epilogue.has_bias %}
  {{ value }} += texelFetch(bias, ivec2({{ block }}, 0), 0);
{% endif %}
{% if epilogue.activation == "prelu" %}
  vec4 {{ value }}Alpha = texelFetch(preluActivationWeights, ivec2({{ block }}, 0), 0);
  {{ value }} = vec4(activation({{ value }}.x, {{ value }}Alpha.x), activation({{ value }}.y, {{ value }}Alpha.y),
                     activation({{ value }}.z, {{ value }}Alpha.z), activation({{ value }}.w, {{ value }}Alpha.w));
{% elif epilogue.activation != "linear" %}
  {{ value }} = vec4(activation({{ value }}.x), activation({{ value }}.y),
                     activation({{ value }}.z), activation({{ value }}.w));
{% endif %}
{%- endmacro %}

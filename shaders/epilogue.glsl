{#- The fused epilogue shared by the convolution programs: bias, then a residual (a tensor of the
    output's shape, as ResNet's and MobileNetV2's skip connections add it), then an activation.
    NaN passes through every activation, as it does in the NumPy oracle, and +-inf gives the
    oracle's limits (swish(-inf) = gelu(-inf) = 0, where x * 0 would be NaN).  Mesa folds
    `x < 0.0 ? 0.0 : x` into a max() that drops NaN, hence the isnan() tests (as TF.js). -#}

{#- `coefficients[0] + var * (coefficients[1] + var * (...))`, as one expression. -#}
{% macro horner(coefficients, var) -%}
{% set ns = namespace(text=coefficients[-1] | glsl_float) %}
{% for c in coefficients[-2::-1] %}
{% set ns.text = (c | glsl_float) ~ " + " ~ var ~ " * (" ~ ns.text ~ ")" %}
{% endfor %}
{{- ns.text -}}
{%- endmacro %}

{#- erf, for activation "gelu" (GLSL has none): gpuconv.erf documents the approximation and its
    accuracy; its coefficients come from there.  erfcTail(a) is erfc(a) for a >= {{ erf.SMALL_LIMIT }}. -#}
{% macro erf_functions() -%}
float erfcTail(float a) {
  float s = a - {{ erf.TAIL_CENTRE | glsl_float }};
  float r = {{ horner(erf.TAIL, "s") }};
  return a < {{ erf.TAIL_LIMIT | glsl_float }} ? exp(-a * a) * r : 0.0;
}

float erf(float x) {
  float a = abs(x);
  if (isnan(x) || a < {{ erf.SMALL_LIMIT | glsl_float }}) {
    float u = x * x;
    return x * ({{ horner(erf.SMALL, "u") }});
  }
  float e = 1.0 - erfcTail(a);
  return x < 0.0 ? -e : e;
}

// Phi(x) = (1 + erf(x / sqrt 2)) / 2, without 1 + erf's cancellation below -{{ erf.SMALL_LIMIT }} * sqrt 2
float gaussianCdf(float x) {
  float t = x * {{ erf.SQRT1_2 | glsl_float }};
  return t <= -{{ erf.SMALL_LIMIT | glsl_float }} ? 0.5 * erfcTail(-t) : 0.5 + 0.5 * erf(t);
}
{%- endmacro %}

{% macro activation_function(epilogue) -%}
{% if epilogue.activation == "gelu" %}
{{ erf_functions() }}

{% endif %}
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
{% elif epilogue.activation == "hard_sigmoid" %}
  float t = x + 3.0;  // relu6(x + 3) / 6; NaN fails both tests
  return t < 0.0 ? 0.0 : (t > 6.0 ? 1.0 : t / 6.0);
{% elif epilogue.activation == "hard_swish" %}
  float t = x + 3.0;  // x * relu6(x + 3) / 6
  return t < 0.0 ? 0.0 : (t > 6.0 ? x : x * t / 6.0);
{% elif epilogue.activation == "swish" %}
  return x < -1.0e4 ? 0.0 : x / (1.0 + exp(-x));  // x * sigmoid(x); exp(-x) = inf gives -0 below -89
{% elif epilogue.activation == "gelu" %}
  return x < -1.0e4 ? 0.0 : x * gaussianCdf(x);
{% elif epilogue.activation == "gelu_tanh" %}
  // 0.5 x (1 + tanh(z)) = x * sigmoid(2 z): no tanh (whose lowering may overflow), no cancellation
  float z = {{ (2.0 * erf.SQRT_2_OVER_PI) | glsl_float }} * (x + 0.044715 * x * x * x);
  return x < -1.0e4 ? 0.0 : x / (1.0 + exp(-z));
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
{% if epilogue.has_residual %}
  {{ value }} += getResidual({{ coords }}.x, {{ coords }}.y, {{ coords }}.z, {{ coords }}.w);
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

{#- The uniforms that apply_packed reads (the packed programs and MatMulPackedProgram declare them). -#}
{% macro packed_uniforms(epilogue) -%}
{% if epilogue.has_bias %}
uniform sampler2D bias;
{% endif %}
{% if epilogue.activation == "prelu" %}
uniform sampler2D preluActivationWeights;
{% endif %}
{% if epilogue.has_residual %}
uniform sampler2D residual;  // texel (col = c * outDepth4 + d / 4, row = b * outHeight + r): the output's layout
uniform int residualWidth;   // the output's width
{% endif %}
{%- endmacro %}

{#- The packed programs' epilogue: `value` holds 4 output channels (block `block`); `residual_texel`
    is where the residual (PackedImageLayout, as the output's channels) holds them. -#}
{% macro apply_packed(epilogue, value, block, residual_texel="") -%}
{% if epilogue.has_bias %}
  {{ value }} += texelFetch(bias, ivec2({{ block }}, 0), 0);
{% endif %}
{% if epilogue.has_residual %}
  {{ value }} += texelFetch(residual, {{ residual_texel }}, 0);
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

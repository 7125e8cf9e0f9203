{#- What every WGSL program of gpuconv shares: its header, its storage-buffer bindings, the
    unfolding of its dispatch grid, and the fused epilogue (bias, then a residual of the output's
    shape, then an activation).  WGSL lets an implementation assume no NaN in max()/clamp(), so
    the activations compare and select instead: NaN passes through them, as in the NumPy oracle,
    and +-inf gives the oracle's limits (swish(-inf) = gelu(-inf) = 0, where x * 0 would be NaN). -#}

{% macro header(description, grid, notes) -%}
// {{ description }}
// {{ grid }}
{% for note in notes %}
// {{ note }}
{% endfor %}
{%- endmacro %}

{#- Inputs at bindings 0.., read-only; the output after them.  Each holds `element`s, unless
    `elements` names another type for it (by input name; "result" for the output). -#}
{% macro bindings(inputs, element="f32", elements={}) -%}
{% for input in inputs %}
@group(0) @binding({{ loop.index0 }}) var<storage, read> {{ input.name }}: array<{{ elements.get(input.name, element) }}>;  // {{ input.layout.shape | join("x") }}
{% endfor %}
@group(0) @binding({{ inputs | length }}) var<storage, read_write> result: array<{{ elements.get("result", element) }}>;
{%- endmacro %}

{#- The workgroup's index in the program's grid: a grid longer than the device's
    maxComputeWorkgroupsPerDimension is dispatched folded into y. -#}
{% macro workgroup_index(dispatch) -%}
wid.x + wid.y * {{ dispatch[0] }}u
{%- endmacro %}

{#- `coefficients[0] + var * (coefficients[1] + var * (...))`, as one expression. -#}
{% macro horner(coefficients, var) -%}
{% set ns = namespace(text=coefficients[-1] | glsl_float) %}
{% for c in coefficients[-2::-1] %}
{% set ns.text = (c | glsl_float) ~ " + " ~ var ~ " * (" ~ ns.text ~ ")" %}
{% endfor %}
{{- ns.text -}}
{%- endmacro %}

{#- erf, for activation "gelu" (WGSL has none): gpuconv.erf documents the approximation and its
    accuracy; its coefficients come from there.  erfc_tail(a) is erfc(a) for a >= {{ erf.SMALL_LIMIT }}. -#}
{% macro erf_functions() -%}
fn erfc_tail(a: f32) -> f32 {
  let s = a - {{ erf.TAIL_CENTRE | glsl_float }};
  let r = {{ horner(erf.TAIL, "s") }};
  return select(0.0, exp(-a * a) * r, a < {{ erf.TAIL_LIMIT | glsl_float }});
}

fn erf(x: f32) -> f32 {
  let a = abs(x);
  let u = x * x;
  let small = x * ({{ horner(erf.SMALL, "u") }});
  let e = 1.0 - erfc_tail(a);
  // NaN fails a >= {{ erf.SMALL_LIMIT }}: it takes the polynomial, which keeps it
  return select(small, select(e, -e, x < 0.0), a >= {{ erf.SMALL_LIMIT | glsl_float }});
}

// Phi(x) = (1 + erf(x / sqrt 2)) / 2, without 1 + erf's cancellation below -{{ erf.SMALL_LIMIT }} * sqrt 2
fn gaussian_cdf(x: f32) -> f32 {
  let t = x * {{ erf.SQRT1_2 | glsl_float }};
  return select(0.5 + 0.5 * erf(t), 0.5 * erfc_tail(-t), t <= -{{ erf.SMALL_LIMIT | glsl_float }});
}
{%- endmacro %}

{% macro activation_function(epilogue) -%}
{% if epilogue.activation == "gelu" %}
{{ erf_functions() }}

{% endif %}
{% if epilogue.activation != "linear" %}
fn activation(x: f32{% if epilogue.activation == "prelu" %}, alpha: f32{% endif %}) -> f32 {
{% if epilogue.activation == "relu" %}
  return select(x, 0.0, x < 0.0);
{% elif epilogue.activation == "relu6" %}
  return select(select(x, 6.0, x > 6.0), 0.0, x < 0.0);
{% elif epilogue.activation == "elu" %}
  return select(exp(x) - 1.0, x, x >= 0.0);
{% elif epilogue.activation == "sigmoid" %}
  return 1.0 / (1.0 + exp(-x));
{% elif epilogue.activation == "leakyrelu" %}
  return select(x, {{ epilogue.leakyrelu_alpha | glsl_float }} * x, x < 0.0);
{% elif epilogue.activation == "prelu" %}
  return select(x, alpha * x, x < 0.0);
{% elif epilogue.activation == "hard_sigmoid" %}
  let t = x + 3.0;  // relu6(x + 3) / 6; NaN fails both tests
  return select(select(t / 6.0, 1.0, t > 6.0), 0.0, t < 0.0);
{% elif epilogue.activation == "hard_swish" %}
  let t = x + 3.0;  // x * relu6(x + 3) / 6
  return select(select(x * t / 6.0, x, t > 6.0), 0.0, t < 0.0);
{% elif epilogue.activation == "swish" %}
  // x * sigmoid(x); exp(-x) = inf gives -0 below -89, and -inf gives 0
  return select(x / (1.0 + exp(-x)), 0.0, x < -1.0e4);
{% elif epilogue.activation == "gelu" %}
  return select(x * gaussian_cdf(x), 0.0, x < -1.0e4);
{% elif epilogue.activation == "gelu_tanh" %}
  // 0.5 x (1 + tanh(z)) = x * sigmoid(2 z): no tanh (whose lowering may overflow), no cancellation
  let z = {{ (2.0 * erf.SQRT_2_OVER_PI) | glsl_float }} * (x + 0.044715 * x * x * x);
  return select(x / (1.0 + exp(-z)), 0.0, x < -1.0e4);
{% endif %}
}
{% endif %}
{%- endmacro %}

{#- Applied to `value` for the output element at flat index `index`, of channel `channel` (a residual
    is read at `index`: it has the output's shape and layout).
    `bias_full`: the bias has the output's shape (the transposed convolution's broadcast bias). -#}
{% macro apply(epilogue, value, index, channel, bias_full=False) -%}
{% if epilogue.has_bias and epilogue.bias_per_channel and not bias_full %}
  {{ value }} += bias[{{ channel }}];
{% elif epilogue.has_bias %}
  {{ value }} += bias[{{ index }}];
{% endif %}
{% if epilogue.has_residual %}
  {{ value }} += residual[{{ index }}];
{% endif %}
{% if epilogue.activation == "prelu" %}
  {{ value }} = activation({{ value }}, preluActivationWeights[{{ channel if epilogue.prelu_per_channel else index }}]);
{% elif epilogue.activation != "linear" %}
  {{ value }} = activation({{ value }});
{% endif %}
{%- endmacro %}

{#- The flat index of element (b, row, col, channel) of an image of `height` x `width` x `channels`
    in the program's data format. -#}
{% macro image_index(channels_last, b, row, col, channel, height, width, channels) -%}
{% if channels_last -%}
(({{ b }} * {{ height }}u + {{ row }}) * {{ width }}u + {{ col }}) * {{ channels }}u + {{ channel }}
{%- else -%}
(({{ b }} * {{ channels }}u + {{ channel }}) * {{ height }}u + {{ row }}) * {{ width }}u + {{ col }}
{%- endif %}
{%- endmacro %}

{#- Let-bindings b, row, col, channel of the flat output index `index` of a b x height x width x
    channels image in the program's data format. -#}
{% macro split_index(channels_last, index, height, width, channels) -%}
{% if channels_last %}
  let channel = {{ index }} % {{ channels }}u;
  let col = ({{ index }} / {{ channels }}u) % {{ width }}u;
  let row = ({{ index }} / {{ channels * width }}u) % {{ height }}u;
  let b = {{ index }} / {{ channels * width * height }}u;
{% else %}
  let col = {{ index }} % {{ width }}u;
  let row = ({{ index }} / {{ width }}u) % {{ height }}u;
  let channel = ({{ index }} / {{ width * height }}u) % {{ channels }}u;
  let b = {{ index }} / {{ width * height * channels }}u;
{% endif %}
{%- endmacro %}

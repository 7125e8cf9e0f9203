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
    `elements` names another type for it (by input name; "result" for the output).  Programs
    never index them: they read input `name` with load_<name>(i) and write the output with
    store_result(i, value) (i counts `element`s), accessors made here for how each buffer
    stores its values (its layout's dtype): float32 as it is, or half floats, two to a u32
    (a vec4 of halves is a vec2<u32>), unpacked with unpack2x16float as they are read and
    rounded with pack2x16float as they are written.  Two invocations may write the two halves
    of one word: the result is then array<atomic<u32>>, zeroed as WebGPU makes every buffer,
    and each invocation ORs its half in. -#}
{% macro bindings(inputs, output, element="f32", elements={}) -%}
{% set ns = namespace(half=output.half) %}
{% for input in inputs %}
{% set type = elements.get(input.name, element) %}
{% if input.layout.half %}{% set ns.half = True %}{% endif %}
@group(0) @binding({{ loop.index0 }}) var<storage, read> {{ input.name }}: array<{{ stored_type(type, input.layout.half) }}>;  // {{ input.layout.shape | join("x") }}
{% endfor %}
{% set result_type = elements.get("result", element) %}
@group(0) @binding({{ inputs | length }}) var<storage, read_write> result: array<{{ stored_type(result_type, output.half, True) }}>;
{% if ns.half %}

{{ half_functions() }}
{% endif %}
{% for input in inputs %}

{{ load(input.name, elements.get(input.name, element), input.layout.half) }}
{% endfor %}

{{ store(result_type, output.half) }}
{%- endmacro %}

{#- The WGSL type a buffer of `type` values holds: itself, or with halves a u32 of two (an atomic
    one for a written f32: invocations share its words) or a vec2<u32> of four. -#}
{% macro stored_type(type, half, written=False) -%}
{% if not half %}{{ type }}{% elif type == "vec4<f32>" %}vec2<u32>{% elif written %}atomic<u32>{% else %}u32{% endif %}
{%- endmacro %}

{% macro half_functions() -%}
// The bits of the half nearest value (ties to even), as a WebGL2 R16F texture stores it:
// pack2x16float within half's range; beyond it (where WGSL leaves pack2x16float's result
// indeterminate) 65520 and more is infinity, and NaN stays NaN.
fn half_bits(value: f32) -> u32 {
  let bits = bitcast<u32>(value);
  let sign = (bits >> 16u) & 0x8000u;
  let magnitude = bits & 0x7fffffffu;
  if (magnitude > 0x7f800000u) {
    return sign | 0x7e00u;
  }
  if (magnitude >= 0x477ff000u) {
    return sign | 0x7c00u;
  }
  return pack2x16float(vec2<f32>(value, 0.0)) & 0xffffu;
}

fn pack_halves(low: f32, high: f32) -> u32 {
  return half_bits(low) | (half_bits(high) << 16u);
}
{%- endmacro %}

{% macro load(name, type, half) -%}
fn load_{{ name }}(i: u32) -> {{ type }} {
{% if not half %}
  return {{ name }}[i];
{% elif type == "vec4<f32>" %}
  let words = {{ name }}[i];
  return vec4<f32>(unpack2x16float(words.x), unpack2x16float(words.y));
{% else %}
  return unpack2x16float({{ name }}[i / 2u])[i % 2u];
{% endif %}
}
{%- endmacro %}

{% macro store(type, half) -%}
fn store_result(i: u32, value: {{ type }}) {
{% if not half %}
  result[i] = value;
{% elif type == "vec4<f32>" %}
  result[i] = vec2<u32>(pack_halves(value.x, value.y), pack_halves(value.z, value.w));
{% else %}
  atomicOr(&result[i / 2u], half_bits(value) << (16u * (i % 2u)));
{% endif %}
}
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

{#- A one-output-per-invocation program's entry point and its flat output index (`index`), from
    the folded grid; the last workgroup's spare invocations leave.  The caller writes the rest of
    main() and its closing brace. -#}
{% macro element_main(workgroup_size, dispatch, invocations, size) %}
@compute @workgroup_size({{ workgroup_size | join(", ") }})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let index = ({{ workgroup_index(dispatch) }}) * {{ invocations }}u + lid;
  if (index >= {{ size }}u) {
    return;
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
  {{ value }} += load_bias({{ channel }});
{% elif epilogue.has_bias %}
  {{ value }} += load_bias({{ index }});
{% endif %}
{% if epilogue.has_residual %}
  {{ value }} += load_residual({{ index }});
{% endif %}
{% if epilogue.activation == "prelu" %}
  {{ value }} = activation({{ value }}, load_preluActivationWeights({{ channel if epilogue.prelu_per_channel else index }}));
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

{#- The epilogue of a program whose values are vec4s of 4 output channels: `block` is the vec4's
    channel block (a per-channel bias or PReLU weight), `index` where it is stored (anything of
    the output's shape: a full bias, per-element PReLU weights, the residual). -#}
{% macro activate4_function(epilogue) -%}
fn activate4(v: vec4<f32>, block: u32, index: u32) -> vec4<f32> {
  var value = v;
{% if epilogue.has_bias %}
  value += load_bias({{ "block" if epilogue.bias_per_channel else "index" }});
{% endif %}
{% if epilogue.has_residual %}
  value += load_residual(index);
{% endif %}
{% if epilogue.activation == "prelu" %}
  let alpha = load_preluActivationWeights({{ "block" if epilogue.prelu_per_channel else "index" }});
  return vec4<f32>(activation(value.x, alpha.x), activation(value.y, alpha.y), activation(value.z, alpha.z),
                   activation(value.w, alpha.w));
{% elif epilogue.activation != "linear" %}
  return vec4<f32>(activation(value.x), activation(value.y), activation(value.z), activation(value.w));
{% else %}
  return value;
{% endif %}
}
{%- endmacro %}

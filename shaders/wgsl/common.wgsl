{#- What every WGSL program of gpuconv shares: its header, its storage-buffer bindings, the
    unfolding of its dispatch grid, and the fused epilogue (bias, then an activation).  WGSL
    lets an implementation assume no NaN in max()/clamp(), so the activations compare and
    select instead: NaN passes through them, as in the NumPy oracle. -#}

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

{% macro activation_function(epilogue) -%}
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
{% endif %}
}
{% endif %}
{%- endmacro %}

{#- Applied to `value` for the output element at flat index `index`, of channel `channel`.
    `bias_full`: the bias has the output's shape (the transposed convolution's broadcast bias). -#}
{% macro apply(epilogue, value, index, channel, bias_full=False) -%}
{% if epilogue.has_bias and epilogue.bias_per_channel and not bias_full %}
  {{ value }} += bias[{{ channel }}];
{% elif epilogue.has_bias %}
  {{ value }} += bias[{{ index }}];
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

{#- Shared pieces of every program: how a tensor is read from its texture, and which
    output element a fragment computes.  Python (gpuconv.layout) computes the numbers. -#}

{#- "b * 1024 + r * 32 + c": a sum of coordinate * stride terms (size-1 dimensions are
    already squeezed out of `terms`). -#}
{% macro sum_terms(terms) -%}
{%- for name, stride in terms -%}
{{ " + " if not loop.first }}{{ name }}{% if stride != 1 %} * {{ stride }}{% endif %}
{%- else -%}
0
{%- endfor -%}
{%- endmacro %}

{#- getX(b, r, c, d): logical coordinates -> texel of the input's texture. -#}
{% macro sampler(input) -%}
float {{ input.getter }}({% for name in input.layout.coord_names %}int {{ name }}{{ ", " if not loop.last }}{% endfor %}) {
{% if input.layout.wrapped %}
  // {{ input.shape_text }} wrapped into {{ input.layout.rows }}x{{ input.layout.cols }} texels
{% set flat_index = sum_terms(input.layout.flat_terms) %}
{#- A rank-1 tensor's coordinate is its flat index, already named `index`: declaring it again
    would be a redefinition (a compile error in GLSL ES 3.00). #}
{% if flat_index != "index" %}
  int index = {{ flat_index }};
{% endif %}
  int texRow = index / {{ input.layout.cols }};
  int texCol = index - texRow * {{ input.layout.cols }};
{% else %}
  // {{ input.shape_text }} stored as {{ input.layout.rows }}x{{ input.layout.cols }} texels
  int texRow = {{ sum_terms(input.layout.row_terms) }};
  int texCol = {{ sum_terms(input.layout.col_terms) }};
{% endif %}
  // Nearest sampling at the texel centre, as TF.js samples (on llvmpipe ~1.3-1.5x
  // faster than texelFetch); every texture is set to NEAREST filtering.
  return texture({{ input.name }}, (vec2(texCol, texRow) + 0.5) / vec2({{ input.layout.cols }}.0, {{ input.layout.rows }}.0)).r;
}
{%- endmacro %}

{#- Recover coordinates from one integer by dividing by row-major strides. -#}
{% macro decompose(var, steps) -%}
{% for name, stride, kind in steps %}
{% if kind == "zero" %}
  int {{ name }} = 0;
{% elif kind == "rest" %}
  int {{ name }} = {{ var }};
{% else %}
  int {{ name }} = {{ var }} / {{ stride }};
  {{ var }} -= {{ name }} * {{ stride }};
{% endif %}
{% endfor %}
{%- endmacro %}

{#- getOutputCoords(): the logical output element this fragment computes. -#}
{% macro output_coords(output) -%}
{{ output.coord_type }} getOutputCoords() {
  // output {{ output.shape_text }} stored as {{ output.layout.rows }}x{{ output.layout.cols }} texels
  int texRow = int(gl_FragCoord.y);
  int texCol = int(gl_FragCoord.x);
{% if output.layout.wrapped %}
  int index = texRow * {{ output.layout.cols }} + texCol;
{{ decompose("index", output.layout.flat_decomposition) }}
{% else %}
{{ decompose("texRow", output.layout.row_decomposition) }}
{{ decompose("texCol", output.layout.col_decomposition) }}
{% endif %}
  return {{ output.coord_type }}({{ output.layout.coord_names | join(", ") }});
}
{%- endmacro %}

{#- The spatial axes of geometry `g` as the programs name them: "RC" (rows, columns) for a 2-D
    convolution, "FRC" (depth frames, rows, columns) for a 3-D one; axis i of g.filter_spatial,
    g.in_spatial, g.strides ... is letter i. -#}
{% macro axis_names(g) -%}
{{ "FRC"[3 - g.filter_spatial | length:] }}
{%- endmacro %}

{#- `getter(batch, <prefix>R, <prefix>C, channel)` (channels last) or `getter(batch, channel,
    <prefix>R, <prefix>C)`: a read of one element of a tensor at spatial position <prefix><A> on
    each axis A of axis_names(g) (2-D as here; 3-D with <prefix>F first). -#}
{% macro read(getter, batch, prefix, g, channel, channels_last) -%}
{% set ns = namespace(position=[]) %}
{% for a in axis_names(g) %}{% set ns.position = ns.position + [prefix ~ a] %}{% endfor %}
{% if channels_last -%}
{{ getter }}({{ batch }}, {{ ns.position | join(", ") }}, {{ channel }})
{%- else -%}
{{ getter }}({{ batch }}, {{ channel }}, {{ ns.position | join(", ") }})
{%- endif %}
{%- endmacro %}

{#- The 3-D programs' start: they write a rank-4 tensor, its first two dimensions folded into one
    (batch and depth channels-last, batch and channels channels-first).  Declares `int batch`,
    `int {{ channel }}` and the position <prefix>F, <prefix>R, <prefix>C from `coords`. -#}
{% macro unfold_coords_3d(prefix, channel, depth, channels, channels_last) %}
{% if channels_last %}
  // coords: (batch * {{ depth }} + depth, row, column, channel)
  int batch = coords.x / {{ depth }};
  int {{ prefix }}F = coords.x - batch * {{ depth }};
  int {{ prefix }}R = coords.y;
  int {{ prefix }}C = coords.z;
  int {{ channel }} = coords.w;
{% else %}
  // coords: (batch * {{ channels }} + channel, depth, row, column)
  int batch = coords.x / {{ channels }};
  int {{ channel }} = coords.x - batch * {{ channels }};
  int {{ prefix }}F = coords.y;
  int {{ prefix }}R = coords.z;
  int {{ prefix }}C = coords.w;
{% endif %}
{%- endmacro %}

{#- The loops closed by `{{ close_loops(n, indentation) }}`: n closing braces, the innermost at
    `indentation` spaces, each enclosing one two spaces less, the last one without a newline. -#}
{% macro close_loops(n, indentation) -%}
{% for _ in range(n) %}{{ " " * (indentation - 2 * loop.index0) }}}{{ "\n" if not loop.last }}{% endfor %}
{%- endmacro %}

{#- TF.js's loops over the filter window, shared by the direct programs (2-D and 3-D): taps
    outside the input are skipped, which is how the zero padding is realised.  The caller's
    body runs once per tap with x<A> (input position) and w<A> (filter tap) for each axis A of
    axis_names(g) (xR, xC, wR, wC in 2-D; also xF, wF in 3-D), written at the indentation of the
    2-D loops (the 3-D loops indent it one more step).  The caller must declare `int x<A>Corner`
    (the window's first input position on each axis). -#}
{% macro window_loop(g) %}
{% set names = axis_names(g) %}
{% for a in names %}
{% set pad = "  " * loop.index0 %}
  {{ pad }}for (int w{{ a }} = 0; w{{ a }} < {{ g.filter_spatial[loop.index0] }}; w{{ a }}++) {
  {{ pad }}  int x{{ a }} = x{{ a }}Corner + w{{ a }} * {{ g.dilations[loop.index0] }};
  {{ pad }}  if (x{{ a }} < 0 || x{{ a }} >= {{ g.in_spatial[loop.index0] }}) {
  {{ pad }}    continue;
  {{ pad }}  }
{% endfor %}
{{ caller() | indent(2 * (names | length - 2), first=True) }}
{{- close_loops(names | length, 2 * names | length) }}
{%- endmacro %}

{#- The channel loop of the direct programs, as TF.js unrolls it: `dotProd += a . b` over
    channels 0 .. depth_vec4 - 1 four at a time (loop variable `index`), then the 1, 2 or 3
    leftover channels in the one branch chosen here.  `a` and `b` are macros giving the
    value at a channel expression; `a_name`/`b_name` name the vectors, `what` the channels
    in the comments.  The caller declares `float dotProd`, and places the result with
    `{{ tensors.channel_dot(...) | trim | indent(column) }}` at its indentation. -#}
{% macro channel_dot(a, b, depth_vec4, depth_remainder, index, what, a_name, b_name) %}
{% if depth_vec4 > 0 %}
for (int {{ index }} = 0; {{ index }} < {{ depth_vec4 }}; {{ index }} += 4) {
  vec4 {{ a_name }} = vec4(
    {{ a(index) }},
    {{ a(index ~ " + 1") }},
    {{ a(index ~ " + 2") }},
    {{ a(index ~ " + 3") }}
  );
  vec4 {{ b_name }} = vec4(
    {{ b(index) }},
    {{ b(index ~ " + 1") }},
    {{ b(index ~ " + 2") }},
    {{ b(index ~ " + 3") }}
  );
  dotProd += dot({{ a_name }}, {{ b_name }});
}
{% endif %}
{% if depth_remainder == 1 %}

// 1 leftover {{ what }} channel
dotProd += {{ a(depth_vec4) }} * {{ b(depth_vec4) }};
{% elif depth_remainder > 1 %}

// {{ depth_remainder }} leftover {{ what }} channels
vec{{ depth_remainder }} {{ a_name }} = vec{{ depth_remainder }}(
{% for k in range(depth_remainder) %}
  {{ a(depth_vec4 + k) }}{{ "," if not loop.last }}
{% endfor %}
);
vec{{ depth_remainder }} {{ b_name }} = vec{{ depth_remainder }}(
{% for k in range(depth_remainder) %}
  {{ b(depth_vec4 + k) }}{{ "," if not loop.last }}
{% endfor %}
);
dotProd += dot({{ a_name }}, {{ b_name }});
{% endif %}
{%- endmacro %}

{#- Shared by the gradient programs, 2-D and 3-D alike: the spatial axes are those of
    tensors.axis_names(g) ("RC" or "FRC"), axis i of g.filter_spatial, g.out_spatial ... -#}
{% import "macros.glsl" as tensors %}

{#- Inside a filter-tap loop: `int {{ name }}`, the dy position whose tap lands on this
    dx position, from `numerator` = dx position - transposed pad + tap * dilation (that dy
    position times the stride); the tap is skipped (`continue`) when it lands between dy
    positions or outside dy. -#}
{% macro dy_position(name, numerator, stride, size) %}
    if ({{ numerator }} < 0) {
      continue;
    }
{% if stride > 1 %}
    int {{ name }} = {{ numerator }} / {{ stride }};
    if ({{ name }} * {{ stride }} != {{ numerator }} || {{ name }} >= {{ size }}) {
      continue;
    }
{% else %}
    int {{ name }} = {{ numerator }};
    if ({{ name }} >= {{ size }}) {
      continue;
    }
{% endif %}
{%- endmacro %}

{#- The input gradient's loops over the filter taps (Conv2DDerInputProgram and its depthwise and
    3-D kin): per axis A, tap w<A>, its dy position dy<A> (taps between dy positions or outside dy
    skipped) and w<A>Perm, the flipped tap.  The caller declares `int dy<A>Corner` (this dx
    position - the transposed pad) per axis; its body is written at the indentation of the 2-D
    loops (the 3-D loops indent it one more step). -#}
{% macro dy_window_loop(g) %}
{% set names = tensors.axis_names(g) %}
{% for a in names %}
{% set i = loop.index0 %}
{% set pad = "  " * i %}
  {{ pad }}for (int w{{ a }} = 0; w{{ a }} < {{ g.filter_spatial[i] }}; w{{ a }}++) {
  {{ pad }}  int dy{{ a }}Num = dy{{ a }}Corner + w{{ a }} * {{ g.dilations[i] }};
{{ dy_position("dy" ~ a, "dy" ~ a ~ "Num", g.strides[i], g.out_spatial[i]) | indent(2 * i, first=True) }}
  {{ pad }}  int w{{ a }}Perm = {{ g.filter_spatial[i] - 1 }} - w{{ a }};
{% endfor %}
{{ caller() | indent(2 * (names | length - 2), first=True) }}
{{- tensors.close_loops(names | length, 2 * names | length) }}
{%- endmacro %}

{#- The filter gradient's tap on the axes folded into the output's rows (all but the columns):
    coords.x = (s * FD + wF) * FH + wR in 3-D, s * FH + wR in 2-D, s the slice (only when
    sliced: `slices` > 1).  Declares int w<A> for those axes (and s). -#}
{% macro filter_tap(g, slices) %}
{% set names = tensors.axis_names(g) %}
{% set ns = namespace(rows=1) %}
{% for size in g.filter_spatial[:-1] %}{% set ns.rows = ns.rows * size %}{% endfor %}
{% if slices == 1 and names | length == 2 %}
  int wR = coords.x;
{% else %}
  int tapRow = coords.x;
{% if slices > 1 %}
  int s = tapRow / {{ ns.rows }};
  tapRow -= s * {{ ns.rows }};
{% endif %}
{% for a in names[:-2] %}
{% set ns.rows = ns.rows // g.filter_spatial[loop.index0] %}
  int w{{ a }} = tapRow / {{ ns.rows }};
  tapRow -= w{{ a }} * {{ ns.rows }};
{% endfor %}
  int w{{ names[-2] }} = tapRow;
{% endif %}
{%- endmacro %}

{#- The filter gradient's sum over the batch and dy's positions y<A> (or, sliced, slice s of them:
    dy positions s * slice_length onwards, batch by batch, in order); the caller's body runs with
    b, y<A> and x<A> = y<A> * stride + w<A> * dilation - pad inside x.  llvmpipe ends every loop of
    a fragment after 65535 iterations in all, hence the slices. -#}
{% macro dy_loop(g, slices, slice_length) %}
{% set names = tensors.axis_names(g) %}
{% set rank = names | length %}
{% if slices > 1 %}
{#- strides[0]: dy positions per image; strides[i + 1]: between neighbours on axis i -#}
{% set ns = namespace(strides=[1]) %}
{% for size in g.out_spatial | reverse %}{% set ns.strides = [ns.strides[0] * size] + ns.strides %}{% endfor %}
  // slice s: dy positions s * {{ slice_length }} onwards (of {{ g.batch * ns.strides[0] }}, batch by batch, in order)
  int first = s * {{ slice_length }};
  int count = min({{ slice_length }}, {{ g.batch * ns.strides[0] }} - first);
  int rest = first;
  int b = rest / {{ ns.strides[0] }};
  rest -= b * {{ ns.strides[0] }};
{% for a in names[:-1] %}
  int y{{ a }} = rest / {{ ns.strides[loop.index] }};
  rest -= y{{ a }} * {{ ns.strides[loop.index] }};
{% endfor %}
  int y{{ names[-1] }} = rest;
  for (int i = 0; i < count; i++) {
{% for a in names %}
{% set i = loop.index0 %}
    int x{{ a }} = w{{ a }} * {{ g.dilations[i] }} - {{ g.pads[i][0] }} + y{{ a }} * {{ g.strides[i] }};
{% endfor %}
    if ({% for a in names %}{{ " && " if not loop.first }}x{{ a }} >= 0 && x{{ a }} < {{ g.in_spatial[loop.index0] }}{% endfor %}) {
{{ caller() }}    }
    y{{ names[-1] }}++;
{% for i in range(rank - 1, -1, -1) %}
{% set pad = "  " * (rank - 1 - i) %}
    {{ pad }}if (y{{ names[i] }} == {{ g.out_spatial[i] }}) {
    {{ pad }}  y{{ names[i] }} = 0;
    {{ pad }}  {{ ("y" ~ names[i - 1]) if i > 0 else "b" }}++;
{% endfor %}
{{ tensors.close_loops(rank + 1, 2 * rank + 2) }}
{% else %}
  for (int b = 0; b < {{ g.batch }}; b++) {
{% for a in names %}
{% set i = loop.index0 %}
{% set pad = "  " * i %}
    {{ pad }}for (int y{{ a }} = 0; y{{ a }} < {{ g.out_spatial[i] }}; y{{ a }}++) {
    {{ pad }}  int x{{ a }} = w{{ a }} * {{ g.dilations[i] }} - {{ g.pads[i][0] }} + y{{ a }} * {{ g.strides[i] }};
    {{ pad }}  if (x{{ a }} < 0 || x{{ a }} >= {{ g.in_spatial[i] }}) {
    {{ pad }}    continue;
    {{ pad }}  }
{% endfor %}
{{ caller() | indent(2 * (rank - 2), first=True) }}
{{- tensors.close_loops(rank + 1, 2 * rank + 2) }}
{% endif %}
{%- endmacro %}

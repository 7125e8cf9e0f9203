{#- Conv2DMMProgram (TF.js's WebGPU backend): conv2d as an implicit GEMM.  Per group, the output
    is a rows x cols matrix (rows = batch x out_height x out_width pixels, cols = the group's
    output channels) and the reduction runs over depth = filter_height x filter_width x the
    group's input channels.  No im2col matrix is ever written: readA computes which input
    value element (row, k) of the virtual im2col matrix is (zero on the padding), readB reads
    W.  A workgroup stages a tile_m x tile_k tile of A and a tile_k x tile_n tile of B in
    workgroup memory, then each invocation accumulates its per_invocation block of outputs
    from them (rows lid.y + i * workgroup_y, columns lid.x + j * workgroup_x: neighbouring
    invocations write neighbouring channels). -#}
{% import "wgsl/common.wgsl" as common %}
{% set wx, wy = tile.workgroup %}
{% set tm, tn = tile.per_invocation %}
{{ common.header(description, grid, notes) }}
{{ common.bindings(inputs, output) }}
{{ common.activation_function(epilogue) }}

const ROWS = {{ rows }}u;    // output pixels: batch x out_height x out_width
const COLS = {{ cols }}u;    // output channels per group
const DEPTH = {{ depth }}u;  // filter_height x filter_width x input channels per group
const TILE_M = {{ tile.tile_m }}u;
const TILE_N = {{ tile.tile_n }}u;
const TILE_K = {{ tile.tile_k }}u;

var<workgroup> tileA: array<f32, {{ tile.tile_m * tile.tile_k }}>;  // [row][k]
var<workgroup> tileB: array<f32, {{ tile.tile_k * tile.tile_n }}>;  // [k][col]

{% if from_matrix %}
// Element (row, k) of the group's im2col matrix, which Im2ColProgram wrote: A[group][row][k].
fn readA(row: u32, k: u32, group: u32) -> f32 {
  if (row >= ROWS || k >= DEPTH) {
    return 0.0;
  }
  return load_A((group * ROWS + row) * DEPTH + k);
}
{% else %}
// Element (row, k) of the group's im2col matrix: input pixel and channel, or 0 on the padding.
fn readA(row: u32, k: u32, group: u32) -> f32 {
  if (row >= ROWS || k >= DEPTH) {
    return 0.0;
  }
  let outCol = row % {{ g.out_width }}u;
  let outRow = (row / {{ g.out_width }}u) % {{ g.out_height }}u;
  let b = row / {{ g.out_width * g.out_height }}u;
  let ci = k % {{ g.in_channels_per_group }}u;
  let tap = k / {{ g.in_channels_per_group }}u;
  let inRow = i32(outRow * {{ g.stride_height }}u + (tap / {{ g.filter_width }}u) * {{ g.dilation_height }}u) - {{ g.pad_top }};
  let inCol = i32(outCol * {{ g.stride_width }}u + (tap % {{ g.filter_width }}u) * {{ g.dilation_width }}u) - {{ g.pad_left }};
  if (inRow < 0 || inRow >= {{ g.in_height }} || inCol < 0 || inCol >= {{ g.in_width }}) {
    return 0.0;
  }
  let channel = group * {{ g.in_channels_per_group }}u + ci;
  return load_x({{ common.image_index(channels_last, "b", "u32(inRow)", "u32(inCol)", "channel", g.in_height, g.in_width, g.in_channels) }});
}
{% endif %}

// Element (k, col) of the group's filter matrix: W[fh, fw, ci, group * COLS + col].
fn readB(k: u32, col: u32, group: u32) -> f32 {
  if (k >= DEPTH || col >= COLS) {
    return 0.0;
  }
  return load_W(k * {{ g.out_channels }}u + group * COLS + col);
}

fn store(row: u32, col: u32, group: u32, sum: f32) {
  if (row >= ROWS || col >= COLS) {
    return;
  }
  var value = sum;
  let outCol = row % {{ g.out_width }}u;
  let outRow = (row / {{ g.out_width }}u) % {{ g.out_height }}u;
  let b = row / {{ g.out_width * g.out_height }}u;
  let channel = group * COLS + col;
  let index = {{ common.image_index(channels_last, "b", "outRow", "outCol", "channel", g.out_height, g.out_width, g.out_channels) }};
{{ common.apply(epilogue, "value", "index", "channel") }}
  store_result(index, value);
}

@compute @workgroup_size({{ wx }}, {{ wy }}, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
  let tileIndex = {{ common.workgroup_index(dispatch) }};
  if (tileIndex >= {{ workgroups }}u) {
    return;  // the folded grid's spare workgroups (uniform: the whole workgroup leaves)
  }
  let tileCol = tileIndex % {{ tiles_n }}u;
  let tileRow = (tileIndex / {{ tiles_n }}u) % {{ tiles_m }}u;
  let group = tileIndex / {{ tiles_n * tiles_m }}u;
  let firstRow = tileRow * TILE_M;
  let firstCol = tileCol * TILE_N;

{% for i in range(tm) %}
{% for j in range(tn) %}
  var acc{{ i }}{{ j }} = 0.0;
{% endfor %}
{% endfor %}
  for (var k0 = 0u; k0 < DEPTH; k0 += TILE_K) {
{% if unroll_loads %}
    // stage the tiles: {{ loads_a }} + {{ loads_b }} values per invocation, unrolled (on llvmpipe/lavapipe
    // every loop pass counts against an invocation's 65535: unrolled, deeper reductions fit)
{% for n in range(loads_a) %}
{% set exact = (n + 1) * tile.invocations <= tile.tile_m * tile.tile_k %}
    {{ "" if exact else "if (li + %du < %du) " | format(n * tile.invocations, tile.tile_m * tile.tile_k) }}{
      let i = li + {{ n * tile.invocations }}u;
      tileA[i] = readA(firstRow + i / TILE_K, k0 + i % TILE_K, group);
    }
{% endfor %}
{% for n in range(loads_b) %}
{% set exact = (n + 1) * tile.invocations <= tile.tile_k * tile.tile_n %}
    {{ "" if exact else "if (li + %du < %du) " | format(n * tile.invocations, tile.tile_k * tile.tile_n) }}{
      let i = li + {{ n * tile.invocations }}u;
      tileB[i] = readB(k0 + i / TILE_N, firstCol + i % TILE_N, group);
    }
{% endfor %}
{% else %}
    // stage the tiles: {{ loads_a }} + {{ loads_b }} values per invocation
    for (var i = li; i < {{ tile.tile_m * tile.tile_k }}u; i += {{ tile.invocations }}u) {
      tileA[i] = readA(firstRow + i / TILE_K, k0 + i % TILE_K, group);
    }
    for (var i = li; i < {{ tile.tile_k * tile.tile_n }}u; i += {{ tile.invocations }}u) {
      tileB[i] = readB(k0 + i / TILE_N, firstCol + i % TILE_N, group);
    }
{% endif %}
    workgroupBarrier();
    for (var k = 0u; k < TILE_K; k++) {
{% for j in range(tn) %}
      let b{{ j }} = tileB[k * TILE_N + lid.x + {{ j * wx }}u];
{% endfor %}
{% for i in range(tm) %}
      let a{{ i }} = tileA[(lid.y + {{ i * wy }}u) * TILE_K + k];
{% for j in range(tn) %}
      acc{{ i }}{{ j }} += a{{ i }} * b{{ j }};
{% endfor %}
{% endfor %}
    }
    workgroupBarrier();
  }
{% for i in range(tm) %}
{% for j in range(tn) %}
  store(firstRow + lid.y + {{ i * wy }}u, firstCol + lid.x + {{ j * wx }}u, group, acc{{ i }}{{ j }});
{% endfor %}
{% endfor %}
}

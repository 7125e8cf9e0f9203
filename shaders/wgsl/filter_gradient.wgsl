{#- Conv2DDerFilterProgram, DepthwiseConv2DDerFilterProgram, Conv3DDerFilterProgram on WebGPU:
    the gradient of a convolution with respect to its filter, df[taps..., c, k], the sum over the
    batch and dy's positions y of x[b, y * stride + tap * dilation - pad, c] * dy[b, y, k] (dy's
    channel c * multiplier + k for a depthwise filter); positions outside x (the zero padding)
    are skipped.  One workgroup per filter tap x block of block_c input channels x block_k output
    channels: invocation lid sums positions lid, lid + invocations, ... for every filter element
    of the block, then the workgroup adds its invocations' sums up in workgroup memory, a tree of
    halving steps, each ended by a barrier in uniform control flow.  Channels past the tensor's
    end (a partial block) are clamped, computed and never written. -#}
{% import "wgsl/common.wgsl" as common %}
{% import "wgsl/axes.wgsl" as ax %}
{{ common.header(description, grid, notes) }}
{{ common.bindings(inputs, output) }}

// the block's partial sums: value v of invocation lid at v * {{ invocations }} + lid
var<workgroup> partial: array<f32, {{ block_c * block_k * invocations }}>;

@compute @workgroup_size({{ workgroup_size | join(", ") }})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let block = {{ common.workgroup_index(dispatch) }};
  if (block >= {{ blocks }}u) {
    return;  // uniform: the whole workgroup leaves (a folded grid's spare workgroups)
  }
  let kBlock = block % {{ k_blocks }}u;
  let cBlock = (block / {{ k_blocks }}u) % {{ c_blocks }}u;
  let tap = block / {{ k_blocks * c_blocks }}u;
{{ ax.split_position("tap", axes, "filter", "w", "") }}
  let c0 = cBlock * {{ block_c }}u;
  let k0 = kBlock * {{ block_k }}u;
  // offsets of the block's channels in x and in dy
{% for i in range(block_c) %}
  let xo{{ i }} = min(c0 + {{ i }}u, {{ channels - 1 }}u) * {{ ax.channel_stride(channels_last, in_volume) }};
{% endfor %}
{% if multiplier %}
{% for i in range(block_c) %}
{% for j in range(block_k) %}
  let dyo{{ i }}_{{ j }} = (min(c0 + {{ i }}u, {{ channels - 1 }}u) * {{ multiplier }}u + min(k0 + {{ j }}u, {{ last - 1 }}u)) * {{ ax.channel_stride(channels_last, out_volume) }};
{% endfor %}
{% endfor %}
{% else %}
{% for j in range(block_k) %}
  let dyo{{ j }} = min(k0 + {{ j }}u, {{ last - 1 }}u) * {{ ax.channel_stride(channels_last, out_volume) }};
{% endfor %}
{% endif %}
{% for i in range(block_c) %}
{% for j in range(block_k) %}
  var sum{{ i }}_{{ j }} = 0.0;
{% endfor %}
{% endfor %}

  for (var p = lid; p < {{ positions }}u; p += {{ invocations }}u) {
{{ ax.split_position("p", axes, "output", "y") | indent(2, first=True) }}
{% for axis in axes %}
    let x{{ axis.name }} = y{{ axis.name }} * {{ axis.stride }}u + w{{ axis.name }} * {{ axis.dilation }}u{% if axis.pad %} - {{ axis.pad }}u{% endif %};  // wraps past u32 when before x
{% endfor %}
    if ({% for axis in axes %}x{{ axis.name }} < {{ axis.input }}u{% if not loop.last %} && {% endif %}{% endfor %}) {
      let xPixel = {{ ax.pixel(channels_last, "b", "x", axes, in_sizes, channels, in_volume) }};
      let dyPixel = {{ ax.pixel(channels_last, "b", "y", axes, out_sizes, dy_channels, out_volume) }};
{% for i in range(block_c) %}
      let x{{ i }} = load_x(xPixel + xo{{ i }});
{% endfor %}
{% if multiplier %}
{% for i in range(block_c) %}
{% for j in range(block_k) %}
      sum{{ i }}_{{ j }} += x{{ i }} * load_dy(dyPixel + dyo{{ i }}_{{ j }});
{% endfor %}
{% endfor %}
{% else %}
{% for j in range(block_k) %}
      let dy{{ j }} = load_dy(dyPixel + dyo{{ j }});
{% endfor %}
{% for i in range(block_c) %}
{% for j in range(block_k) %}
      sum{{ i }}_{{ j }} += x{{ i }} * dy{{ j }};
{% endfor %}
{% endfor %}
{% endif %}
    }
  }

{% for i in range(block_c) %}
{% for j in range(block_k) %}
  partial[{{ (i * block_k + j) * invocations }}u + lid] = sum{{ i }}_{{ j }};
{% endfor %}
{% endfor %}
  workgroupBarrier();
{% for step in steps %}
  if (lid < {{ step }}u) {
    for (var v = 0u; v < {{ block_c * block_k }}u; v++) {
      partial[v * {{ invocations }}u + lid] += partial[v * {{ invocations }}u + lid + {{ step }}u];
    }
  }
  workgroupBarrier();
{% endfor %}
  for (var v = lid; v < {{ block_c * block_k }}u; v += {{ invocations }}u) {
    let c = c0 + v / {{ block_k }}u;
    let k = k0 + v % {{ block_k }}u;
    if (c < {{ channels }}u && k < {{ last }}u) {
      store_result((tap * {{ channels }}u + c) * {{ last }}u + k, partial[v * {{ invocations }}u]);
    }
  }
}

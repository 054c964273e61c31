// gather.wgsl: y[c] = x[c.x_strides + index * axis_stride], index = indices[c.idx_strides].
// One kernel for gather (numpy.take: the index axes are spliced into y's shape) and
// take_along (numpy.take_along_axis: indices broadcast against x). dtype-agnostic.
//
// Bindings: 0 params (uniform Params), 1 x: array<u32> (read), 2 indices: array<i32> (read),
//   3 y: array<u32> (read_write).
// Uniforms: total, rank (<= 8) and shape of y; x_strides (0 on axes x does not vary
//   along); idx_strides (0 on axes the indices do not vary along); axis_len and
//   axis_stride of the indexed axis of x. Negative indices count from the end.
// Workgroup: 64 threads, one element each, over a 2-D grid of workgroups.

struct Params {
  total: u32,
  rank: u32,
  axis_len: u32,
  axis_stride: u32,
  shape: array<vec4<u32>, 2>,
  x_strides: array<vec4<u32>, 2>,
  idx_strides: array<vec4<u32>, 2>,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<u32>;
@group(0) @binding(2) var<storage, read> indices: array<i32>;
@group(0) @binding(3) var<storage, read_write> y: array<u32>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) group: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
        @builtin(local_invocation_index) lane: u32) {
  let i = (group.y * groups.x + group.x) * 64u + lane;
  if (i >= params.total) {
    return;
  }
  var rest = i;
  var source = 0u;
  var at = 0u;
  for (var d = i32(params.rank) - 1; d >= 0; d = d - 1) {
    let size = params.shape[d / 4][d % 4];
    let coord = rest % size;
    rest = rest / size;
    source = source + coord * params.x_strides[d / 4][d % 4];
    at = at + coord * params.idx_strides[d / 4][d % 4];
  }
  var index = indices[at];
  if (index < 0) {
    index = index + i32(params.axis_len);
  }
  let clamped = u32(clamp(index, 0, max(i32(params.axis_len) - 1, 0)));
  y[i] = x[source + clamped * params.axis_stride];
}

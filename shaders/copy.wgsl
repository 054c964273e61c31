// copy.wgsl: strided copy of 32-bit words, dst[dst_offset + c.dst_strides] =
// src[src_offset + c.src_strides] for every coordinate c of `shape`. Serves permute,
// broadcast_to (stride 0), concat (one call per part), moving an axis last for row
// kernels, and reshape of views. dtype-agnostic: every device element is 4 bytes.
//
// Bindings: 0 params (uniform Params), 1 src: array<u32> (read), 2 dst: array<u32> (read_write).
// Uniforms: total (elements of shape), rank (<= 8), src_offset, dst_offset, shape,
//   src_strides, dst_strides (elements).
// Workgroup: 64 threads, one element each, over a 2-D grid of workgroups.

struct Params {
  total: u32,
  rank: u32,
  src_offset: u32,
  dst_offset: u32,
  shape: array<vec4<u32>, 2>,
  src_strides: array<vec4<u32>, 2>,
  dst_strides: array<vec4<u32>, 2>,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> src: array<u32>;
@group(0) @binding(2) var<storage, read_write> dst: array<u32>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) group: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
        @builtin(local_invocation_index) lane: u32) {
  let i = (group.y * groups.x + group.x) * 64u + lane;
  if (i >= params.total) {
    return;
  }
  var rest = i;
  var source = params.src_offset;
  var destination = params.dst_offset;
  for (var d = i32(params.rank) - 1; d >= 0; d = d - 1) {
    let size = params.shape[d / 4][d % 4];
    let coord = rest % size;
    rest = rest / size;
    source = source + coord * params.src_strides[d / 4][d % 4];
    destination = destination + coord * params.dst_strides[d / 4][d % 4];
  }
  dst[destination] = src[source];
}

// slice.wgsl: outer indexing of a tensor by a slice key, in both directions.
//   gather  (scatter == 0): y[c] = src[mapped(c)]               (op slice)
//   scatter (scatter == 1): dst[mapped(c)] = value[c] or scalar  (op set_slice, after a copy)
// mapped(c) = base + sum_d index_d(c_d) * strides_d, where index_d is start_d + c_d * step_d
// for a range axis and table[start_d + c_d] for an integer-list axis. Integer keys are
// folded into `base` by the caller. dtype-agnostic: every device element is 4 bytes.
// When a list repeats an index, the last assignment wins, as in numpy.
//
// Bindings: 0 params (uniform Params), 1 src: array<u32> (read; x when gathering, the
//   value when scattering, a dummy for a scalar value), 2 table: array<i32> (read; the
//   key's lists concatenated), 3 dst: array<u32> (read_write).
// Uniforms: total, rank (<= 8) and shape of the selected region; base; scatter;
//   use_scalar and scalar (the value's bit pattern); per axis table_mode (1: list axis),
//   start, step, strides (of the indexed tensor) and value_strides (scatter only; 0 on
//   axes the value broadcasts along).
// Workgroup: 64 threads, one element each, over a 2-D grid of workgroups.

struct Params {
  total: u32,
  rank: u32,
  base: u32,
  scatter: u32,
  use_scalar: u32,
  scalar: u32,
  pad0: u32,
  pad1: u32,
  shape: array<vec4<u32>, 2>,
  table_mode: array<vec4<u32>, 2>,
  start: array<vec4<i32>, 2>,
  step: array<vec4<i32>, 2>,
  strides: array<vec4<u32>, 2>,
  value_strides: array<vec4<u32>, 2>,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> src: array<u32>;
@group(0) @binding(2) var<storage, read> table: array<i32>;
@group(0) @binding(3) var<storage, read_write> dst: array<u32>;

// True when a later entry of this axis' list repeats the entry at `coord`.
fn overwritten_later(start: i32, coord: u32, size: u32) -> bool {
  let entry = table[start + i32(coord)];
  for (var later = coord + 1u; later < size; later = later + 1u) {
    if (table[start + i32(later)] == entry) {
      return true;
    }
  }
  return false;
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) group: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
        @builtin(local_invocation_index) lane: u32) {
  let i = (group.y * groups.x + group.x) * 64u + lane;
  if (i >= params.total) {
    return;
  }
  var rest = i;
  var mapped = params.base;
  var value_at = 0u;
  for (var d = i32(params.rank) - 1; d >= 0; d = d - 1) {
    let size = params.shape[d / 4][d % 4];
    let coord = rest % size;
    rest = rest / size;
    let start = params.start[d / 4][d % 4];
    var index = start + i32(coord) * params.step[d / 4][d % 4];
    if (params.table_mode[d / 4][d % 4] == 1u) {
      index = table[start + i32(coord)];
      if (params.scatter == 1u && overwritten_later(start, coord, size)) {
        return;
      }
    }
    mapped = mapped + u32(index) * params.strides[d / 4][d % 4];
    value_at = value_at + coord * params.value_strides[d / 4][d % 4];
  }
  if (params.scatter == 0u) {
    dst[i] = src[mapped];
  } else if (params.use_scalar == 1u) {
    dst[mapped] = params.scalar;
  } else {
    dst[mapped] = src[value_at];
  }
}

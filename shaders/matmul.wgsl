// matmul.wgsl: batched, strided y = alpha * A @ B in f32, tiled through workgroup memory.
// Transposes, broadcast batch axes, grouped-query heads and output layouts are all
// expressed by strides, so one pipeline serves matmul and both products of attention.
//
// Bindings: 0 params (uniform Params), 1 a: array<f32> (read), 2 b: array<f32> (read),
//   3 y: array<f32> (read_write).
// Uniforms: m, n, k; A(i, kk) = a[a_base + i*a_row + kk*a_col]; B(kk, j) likewise with
//   b_row / b_col; y(i, j) = y[y_base + i*y_row + j*y_col]; alpha scales the product.
//   The batch index (workgroup z) is split over batch_shape (batch_rank <= 4 axes, last
//   fastest) and dotted with a_batch / b_batch / y_batch (0 on broadcast axes) to give
//   the bases.
// Workgroup: 16 x 16 threads, one output each; the grid is ceil(n/16) x ceil(m/16) x batch.
// Tiles are 16 x 16 with bounds checks, so m, n, k need not be multiples of 16.

const TILE: u32 = 16u;

struct Params {
  m: u32,
  n: u32,
  k: u32,
  batch_rank: u32,
  a_row: u32,
  a_col: u32,
  b_row: u32,
  b_col: u32,
  y_row: u32,
  y_col: u32,
  alpha: f32,
  pad0: u32,
  batch_shape: vec4<u32>,
  a_batch: vec4<u32>,
  b_batch: vec4<u32>,
  y_batch: vec4<u32>,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

var<workgroup> tile_a: array<array<f32, 16>, 16>;  // [row][kk]
var<workgroup> tile_b: array<array<f32, 16>, 16>;  // [kk][col]

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) group: vec3<u32>, @builtin(local_invocation_id) local: vec3<u32>) {
  var rest = group.z;
  var a_base = 0u;
  var b_base = 0u;
  var y_base = 0u;
  for (var d = i32(params.batch_rank) - 1; d >= 0; d = d - 1) {
    let size = params.batch_shape[d];
    let coord = rest % size;
    rest = rest / size;
    a_base = a_base + coord * params.a_batch[d];
    b_base = b_base + coord * params.b_batch[d];
    y_base = y_base + coord * params.y_batch[d];
  }
  let row = group.y * TILE + local.y;
  let col = group.x * TILE + local.x;
  var total = 0.0;
  for (var k0 = 0u; k0 < params.k; k0 = k0 + TILE) {
    let ka = k0 + local.x;
    var value_a = 0.0;
    if (row < params.m && ka < params.k) {
      value_a = a[a_base + row * params.a_row + ka * params.a_col];
    }
    tile_a[local.y][local.x] = value_a;
    let kb = k0 + local.y;
    var value_b = 0.0;
    if (kb < params.k && col < params.n) {
      value_b = b[b_base + kb * params.b_row + col * params.b_col];
    }
    tile_b[local.y][local.x] = value_b;
    workgroupBarrier();
    for (var kk = 0u; kk < TILE; kk = kk + 1u) {
      total = total + tile_a[local.y][kk] * tile_b[kk][local.x];
    }
    workgroupBarrier();
  }
  if (row < params.m && col < params.n) {
    y[y_base + row * params.y_row + col * params.y_col] = total * params.alpha;
  }
}

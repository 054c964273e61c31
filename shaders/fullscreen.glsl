// Vertex shader shared by every WebGL2 kernel: one triangle that covers the
// viewport (set to the output texture's size), drawn with no attributes
// (drawArrays(TRIANGLES, 0, 3)). "#version 300 es" is prepended by the loader.
// Inputs: gl_VertexID only. Uniforms: none.

void main() {
  vec2 corner = vec2(float((gl_VertexID << 1) & 2), float(gl_VertexID & 2));
  gl_Position = vec4(corner * 2.0 - 1.0, 0.0, 1.0);
}

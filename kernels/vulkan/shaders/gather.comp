#version 450
/* gather.comp: out [dim, n]: row i is row rows[i] of x [dim, x_rows]. */
#include "common.glsl"

layout(local_size_x = 64) in;
layout(std430, binding = 0) readonly buffer XBuf { float X[]; };
layout(std430, binding = 1) readonly buffer RowBuf { int ROWS[]; };
layout(std430, binding = 2) buffer OBuf { float O[]; };
layout(push_constant) uniform PC {
    uint x_off, rows_off, o_off, dim, n, x_rows;
} pc;

void main()
{
    uint g = flat_id(64u);
    if (g >= pc.n * pc.dim)
        return;
    uint i = g / pc.dim, d = g % pc.dim;
    int r = ROWS[pc.rows_off + i];
    if (r < 0 || uint(r) >= pc.x_rows) {
        flag_error(ST_GATHER);
        return;
    }
    O[pc.o_off + i * pc.dim + d] = X[pc.x_off + uint(r) * pc.dim + d];
}

#version 450
/* get_rows.comp: out [row_len, n] = rows ids [n] of a weight table, dequantized: workgroup
 * (x: units, y: token). */
#include "common.glsl"
#include "dequant.glsl"

layout(local_size_x = 64) in;
layout(std430, binding = 1) readonly buffer IdBuf { int IDS[]; };
layout(std430, binding = 2) buffer YBuf { float Y[]; };
layout(push_constant) uniform PC {
    uint w_off, row_words, ids_off, y_off, row_len, n, n_rows;
    uint row0, n_total; /* these are rows row0 .. + n_rows of a table of n_total (split weights) */
} pc;

void main()
{
    uint t = gl_WorkGroupID.y, u = gl_WorkGroupID.x * 64u + gl_LocalInvocationID.x;
    if (u >= pc.row_len / UNIT)
        return;
    int id = IDS[pc.ids_off + t];
    if (id < 0 || uint(id) >= pc.n_total) {
        flag_error(ST_GET_ROWS);
        return;
    }
    uint r = uint(id) - pc.row0;
    if (uint(id) < pc.row0 || r >= pc.n_rows)
        return; /* another part's row */
    Unit un;
    unit_begin(pc.w_off + r * pc.row_words, u, un);
    uint yo = pc.y_off + t * pc.row_len + u * UNIT;
#if UNIT == 1
    Y[yo] = unit_val(un, 0u);
#else
    for (uint q = 0u; q < UNIT / 4u; q++) {
        vec4 v = unit_val4(un, q);
        Y[yo + 4u * q] = v.x;
        Y[yo + 4u * q + 1u] = v.y;
        Y[yo + 4u * q + 2u] = v.z;
        Y[yo + 4u * q + 3u] = v.w;
    }
#endif
}

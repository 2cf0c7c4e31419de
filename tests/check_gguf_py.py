#!/usr/bin/env python3
"""Cross-check our GGUF writer and quantizers with llama.cpp's own Python reader (gguf-py).

Usage: check_gguf_py.py SEED_DIR   (the files written by build/fuzz/gguf-seeds)

gguf-py must parse every file our writer produced, see the same keys, values, tensor names,
types and shapes, and its dequantizers (independent code from llama.cpp) must turn our
quantized bytes back into the source values within each type's quantization error. For the
types whose quantizer gguf-py has (a numpy transcription of ggml's reference), our bytes must
equal gguf-py's. Exits 1 on any mismatch."""
import sys
from pathlib import Path

import numpy as np
from gguf import GGUFReader
from gguf.constants import GGMLQuantizationType as Q
from gguf.quants import dequantize, quantize

# Source values of tests/fuzz_seeds.c: x[i] = ((i * 37) % 101) / 50 - 1, i < 256.
# computed in float32 as C does.
X = (np.array([(i * 37) % 101 for i in range(256)], dtype=np.float32) / np.float32(50.0)
     - np.float32(1.0))
# Largest absolute error allowed after a round trip, per type (values lie in [-1, 1]).
# Q4_0 maps the largest magnitude to -8, so the other side reaches only 7 steps: up to d = 1/8;
# Q5_0 likewise up to d = 1/16. Q4_1 and Q5_1 span [min, max] in 15 / 31 steps: half a step.
# The K-quants fit each sub-block: Q2_K's 4 levels over a range of 2 leave up to a third;
# Q3_K maps the extreme to -4, so the other side clamps at 3 steps: up to a quarter.
# IQ4_NL / IQ4_XS: half the widest gap of the value table (24 of 127) and the fit's scale.
TOL = {Q.F32: 0.0, Q.F16: 1e-3, Q.BF16: 4e-3, Q.Q8_0: 5e-3, Q.Q4_0: 0.13, Q.Q4_K: 0.08,
       Q.Q6_K: 0.02, Q.Q4_1: 0.07, Q.Q5_0: 0.07, Q.Q5_1: 0.035, Q.Q2_K: 0.35, Q.Q3_K: 0.26,
       Q.Q5_K: 0.04, Q.IQ4_NL: 0.12, Q.IQ4_XS: 0.12}
# Types whose gguf-py quantizer follows ggml's quantize_row_*_ref operation by operation.
SAME_BYTES = {Q.Q4_0, Q.Q4_1, Q.Q5_0, Q.Q5_1}
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)


def field_value(r, key):
    f = r.fields[key]
    parts = [f.parts[i] for i in f.data]
    if f.types[0].name == "STRING":
        return bytes(parts[0]).decode()
    return parts[0][0] if len(parts) == 1 else [p[0] for p in parts]


def check_metadata(path):
    r = GGUFReader(path)
    check(field_value(r, "general.architecture") == "llama", f"{path}: architecture")
    check(field_value(r, "llama.block_count") == 1, f"{path}: block_count")
    check(abs(field_value(r, "llama.attention.layer_norm_rms_epsilon") - 1e-5) < 1e-9, f"{path}: eps")
    toks = r.fields["tokenizer.ggml.tokens"]
    names = [bytes(toks.parts[i]).decode() for i in toks.data]
    check(names == ["<unk>", "<s>", "</s>", "\u2581a", "b"], f"{path}: tokens {names}")
    check(field_value(r, "x.i64") == -5, f"{path}: x.i64")
    check(field_value(r, "x.f64") == 0.25, f"{path}: x.f64")
    check(field_value(r, "x.u16") == 7, f"{path}: x.u16")


def check_tensors(path, align):
    r = GGUFReader(path)
    check(r.alignment == align, f"{path}: alignment {r.alignment} != {align}")
    seen = set()
    for t in r.tensors:
        qt = Q(t.tensor_type)
        seen.add(qt)
        check(t.name == f"t.{qt.name}", f"{path}: name {t.name} for {qt.name}")
        check(list(t.shape) == [256, 1], f"{path}: {t.name} shape {list(t.shape)}")
        check(t.data_offset % align == 0, f"{path}: {t.name} offset {t.data_offset}")
        y = dequantize(t.data, qt).reshape(-1).astype(np.float32)
        err = float(np.max(np.abs(y - X)))
        check(err <= TOL[qt], f"{path}: {t.name} max error {err} > {TOL[qt]}")
        if qt in SAME_BYTES:
            want = quantize(X.reshape(1, 256), qt).reshape(-1)
            got = np.asarray(t.data).view(np.uint8).reshape(-1)
            check(np.array_equal(got, want), f"{path}: {t.name} bytes differ from gguf-py's quantizer")
    check(seen == set(TOL), f"{path}: types {sorted(s.name for s in seen)}")


def main():
    d = Path(sys.argv[1])
    check_metadata(str(d / "metadata.gguf"))
    GGUFReader(str(d / "v2.gguf"))
    for align in (32, 64):
        check_tensors(str(d / f"tensors-{align}.gguf"), align)
    for f in failures:
        print("gguf-py check FAILED:", f)
    if not failures:
        print("gguf-py check: llama.cpp's reader accepts our files; dequantized values match")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env bash
# gpu-check.sh: the CUDA backend checked on a machine with an NVIDIA GPU, in one run:
#   1. builds mlc-bench with BACKENDS="cpu cuda" into build/gpu-check;
#   2. lists the devices (fails when cuda has none);
#   3. synthesizes llama3-8b-shaped models in F16, Q8_0 and Q4_K_M, in the background, while
#   4. `conformance --backend cuda --full` runs (every op, weight type and shape against the
#      float64 reference; a failed case fails the script at the end), then again for matmul
#      and attention with the fallback paths (MLC_CUDA_NO_DP4A=1 MLC_CUDA_NO_MMA=1
#      MLC_CUDA_NO_FLASH=1: the dequantizing matvec, the fp32 tiled prefill matmul and the
#      one-block-per-head attention);
#   5. generates 32 greedy tokens from the Q4_K_M model with step replay (CUDA graphs) and the
#      device argmax on, then off (MLC_CUDA_NO_GRAPH=1 MLC_CUDA_NO_ARGMAX=1): the tokens must
#      be the same (the same kernels run either way), else the script fails;
#   6. runs `micro -p 512 -n 128` on each model and prints decode tok/s, the weight bytes read
#      per second (micro's weight_gbs) and that as a share of the device's peak memory
#      bandwidth (from the memory clock and bus width `devices` reports); then Q4_K_M once
#      more on the fallback paths and once launched op by op (MLC_CUDA_NO_GRAPH=1), for the
#      ratios.
# Meant to finish within 8 minutes on one H100/H200-class machine with a few CPU cores.
#
# Environment:
#   GPU_CHECK_LAYERS  layers of the synthetic models (default 32: all of llama3-8b; the shapes
#                     of each layer, the embedding and the output are llama3-8b's either way)
#   GPU_CHECK_VOCAB   a GGUF file to borrow the tokenizer from (synth --vocab); default: synth's
#   GPU_CHECK_REPS    micro repetitions (default 3)
#   GPU_CHECK_DEVICE  cuda device (default 0)
set -euo pipefail
cd "$(dirname "$0")/.."

out=build/gpu-check
bin=$out/mlc-bench
models=$out/models
layers=${GPU_CHECK_LAYERS:-32}
reps=${GPU_CHECK_REPS:-3}
dev=${GPU_CHECK_DEVICE:-0}
t0=$(date +%s)
step() { printf '\n== %s (%ss)\n' "$*" "$(( $(date +%s) - t0 ))"; }

step "build (BACKENDS=\"cpu cuda\")"
make -j"$(nproc)" BUILD="$out" BACKENDS="cpu cuda" "$bin"
"$bin" devices
line=$("$bin" devices | grep "^  cuda:$dev " || true)
[ -n "$line" ] || { echo "gpu-check: no cuda device $dev (see mlc-bench devices above)" >&2; exit 1; }
peak_gbs=$(sed -n 's/.*memory bandwidth \([0-9.]*\) GB\/s.*/\1/p' <<< "$line")

step "synthesize llama3-8b shapes ($layers layers): f16, q8_0, q4_k_m (background)"
mkdir -p "$models"
vocab_args=()
[ -n "${GPU_CHECK_VOCAB:-}" ] && vocab_args=(--vocab "$GPU_CHECK_VOCAB")
pids=()
for t in f16 q8_0 q4_k_m; do
    f=$models/llama3-8b-l$layers-$t.gguf
    if [ -f "$f" ]; then pids+=(0); continue; fi
    "$bin" model synth --preset llama3-8b --layers "$layers" --type "$t" "${vocab_args[@]}" -q -o "$f" \
        > "$models/synth-$t.log" 2>&1 &
    pids+=($!)
done

step "conformance --backend cuda --full"
conf_rc=0
"$bin" conformance --backend cuda --device "$dev" --full --no-store | tail -n 25 || conf_rc=$?

step "conformance --backend cuda --full --op matmul,attention on the fallback paths"
MLC_CUDA_NO_DP4A=1 MLC_CUDA_NO_MMA=1 MLC_CUDA_NO_FLASH=1 "$bin" conformance --backend cuda --device "$dev" --full \
    --op matmul,attention --no-store | tail -n 12 || conf_rc=$?

step "wait for the models"
for i in 0 1 2; do
    [ "${pids[$i]}" = 0 ] && continue
    wait "${pids[$i]}" || { cat "$models"/synth-*.log >&2; echo "gpu-check: synthesis failed" >&2; exit 1; }
done
ls -l "$models"/*.gguf

step "greedy generate on cuda:$dev, Q4_K_M: step replay and device argmax on, then off"
gen() {
    "$bin" generate -m "$models/llama3-8b-l$layers-q4_k_m.gguf" --backend cuda --device "$dev" \
        -p "The quick brown fox jumps over the lazy dog" -n 32 --ids --ignore-eos 2> "$out/generate.log"
}
gen_on=$(gen) || { cat "$out/generate.log" >&2; gen_on="(failed)"; }
gen_off=$(MLC_CUDA_NO_GRAPH=1 MLC_CUDA_NO_ARGMAX=1 gen) || { cat "$out/generate.log" >&2; gen_off="(failed)"; }
gen_rc=0
if [ "$gen_on" = "$gen_off" ] && [ "$gen_on" != "(failed)" ]; then
    echo "same 32 greedy tokens with and without step replay and the device argmax"
else
    printf 'gpu-check: greedy tokens differ\n  on:  %s\n  off: %s\n' "$gen_on" "$gen_off" >&2
    gen_rc=1
fi

step "micro -p 512 -n 128 on cuda:$dev"
csv=$out/micro.csv
"$bin" micro -m "$models/llama3-8b-l$layers-f16.gguf,$models/llama3-8b-l$layers-q8_0.gguf,$models/llama3-8b-l$layers-q4_k_m.gguf" \
    --backend cuda --device "$dev" -p 512 -n 128 -r "$reps" --no-store -o csv > "$csv"

step "micro -p 512 -n 128 on cuda:$dev, Q4_K_M, fallback paths (MLC_CUDA_NO_DP4A=1 MLC_CUDA_NO_MMA=1 MLC_CUDA_NO_FLASH=1)"
csv_fb=$out/micro-fallback.csv
MLC_CUDA_NO_DP4A=1 MLC_CUDA_NO_MMA=1 MLC_CUDA_NO_FLASH=1 "$bin" micro -m "$models/llama3-8b-l$layers-q4_k_m.gguf" \
    --backend cuda --device "$dev" -p 512 -n 128 -r 1 --no-store -o csv > "$csv_fb"

step "micro -p 512 -n 128 on cuda:$dev, Q4_K_M, launched op by op (MLC_CUDA_NO_GRAPH=1)"
csv_ng=$out/micro-nograph.csv
MLC_CUDA_NO_GRAPH=1 "$bin" micro -m "$models/llama3-8b-l$layers-q4_k_m.gguf" \
    --backend cuda --device "$dev" -p 512 -n 128 -r 1 --no-store -o csv > "$csv_ng"

step "summary"
# Columns by name from micro's CSV header (fields as llama-bench's, plus weight_gbs).
awk -F, -v peak="$peak_gbs" '
    NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
    {
        gsub(/"/, "");
        model = $col["model_type"]; np = $col["n_prompt"]; ng = $col["n_gen"]; ts = $col["avg_ts"];
        if (np > 0) printf "%-28s prefill %4d tokens: %9.1f tok/s\n", model, np, ts;
        else {
            gbs = $col["weight_gbs"];
            share = peak > 0 ? sprintf("%.0f%% of %.0f GB/s", 100 * gbs / peak, peak) : "peak unknown";
            printf "%-28s decode  %4d tokens: %9.1f tok/s, weights %7.1f GB/s (%s)\n", model, ng, ts, gbs, share;
        }
    }' "$csv"
echo "fallback paths:"
awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
    { gsub(/"/, ""); printf "%-28s %s %4d/%4d: %9.1f tok/s\n", $col["model_type"], $col["n_prompt"] > 0 ? "prefill" : "decode ",
      $col["n_prompt"], $col["n_gen"], $col["avg_ts"] }' "$csv_fb"
echo "launched op by op (MLC_CUDA_NO_GRAPH=1):"
awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
    { gsub(/"/, ""); printf "%-28s %s %4d/%4d: %9.1f tok/s\n", $col["model_type"], $col["n_prompt"] > 0 ? "prefill" : "decode ",
      $col["n_prompt"], $col["n_gen"], $col["avg_ts"] }' "$csv_ng"
echo "greedy tokens with replay on and off: $([ "$gen_rc" = 0 ] && echo same || echo DIFFERENT)"
echo "conformance: $([ "$conf_rc" = 0 ] && echo passed || echo "FAILED (exit $conf_rc)")"
echo "total $(( $(date +%s) - t0 )) s"
[ "$conf_rc" = 0 ] || exit "$conf_rc"
exit "$gen_rc"

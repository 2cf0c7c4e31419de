#!/bin/bash
# bench-peer.sh: our engine against llama.cpp's CPU backend on the same GGUF files, measured
# alternately in one run (a shared machine's load moves both alike), one ratio per cell.
#
# The peer is llama.cpp as vendored in the llama-cpp-python 0.3.36 source package from PyPI,
# built on demand into build/peer (Release, -DGGML_NATIVE=ON: the CPU's own ISA, as ours picks
# from CPUID). Nothing of it is committed. Environment:
#   PEER_BIN=PATH   an existing llama-bench to use instead of building one
#   MODELS="A B"    GGUF files to compare (default: synthesized 110m F16, Q8_0, Q4_K_M and the
#                   dim-288 6-layer Q8_0 in build/peer/models, plus $MLC_GEMMA3_MODEL if set)
#   THREADS=2 P=128 N=64 R=3 ROUNDS=2   micro/llama-bench -t -p -n -r, and how many times
#                   each pair alternates (P may be a list: P=128,512)
#   MLC=build/mlc-bench                 our binary
#   PEER_ARGS="..."                     extra llama-bench arguments (e.g. "--repack 0")
#
# On CPUs with AMX the on-demand build leaves AMX out of the peer (-mno-amx-*): the vendored
# llama.cpp's AMX matmul faults at its tile configuration (ldtilecfg) on Sapphire Rapids for
# every quantized model we tried, while AMX itself works there. Its AVX-512/VNNI paths and
# weight repacking stay on, so the peer runs in the best configuration that does not crash.
set -euo pipefail
cd "$(dirname "$0")/.."
read -r -a peer_args <<< "${PEER_ARGS:-}"
OUT=build/peer
MLC=${MLC:-build/mlc-bench}
THREADS=${THREADS:-2} P=${P:-128} N=${N:-64} R=${R:-3} ROUNDS=${ROUNDS:-2}
VERSION=0.3.36
VOCAB=${BENCH_VOCAB:-../shared/vocab/ggml-vocab-llama-spm.gguf}
mkdir -p "$OUT/models" "$OUT/results"

die() { echo "bench-peer: $*" >&2; exit 1; }
[ -x "$MLC" ] || die "$MLC is not built (make first)"

build_peer() {
    local src="$OUT/llama_cpp_python-$VERSION/vendor/llama.cpp"
    if [ ! -d "$src" ]; then
        python3 -m pip download --no-binary :all: --no-deps -d "$OUT" "llama-cpp-python==$VERSION" >&2 ||
            die "cannot download llama-cpp-python==$VERSION (set PEER_BIN to an existing llama-bench)"
        tar -xzf "$OUT/llama_cpp_python-$VERSION.tar.gz" -C "$OUT"
    fi
    [ -f "$src/CMakeLists.txt" ] || die "$src has no CMakeLists.txt"
    # GCC gives an explicit -mno-X precedence over what -march=native implies, in any order.
    local noamx=""
    grep -qw amx_tile /proc/cpuinfo && noamx="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
    cmake -S "$src" -B "$OUT/build" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON -DLLAMA_CURL=OFF \
        -DCMAKE_C_FLAGS="$noamx" -DCMAKE_CXX_FLAGS="$noamx" \
        -DBUILD_SHARED_LIBS=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF >&2
    cmake --build "$OUT/build" --target llama-bench -j "$(nproc)" >&2
}

if [ -n "${PEER_BIN:-}" ]; then
    [ -x "$PEER_BIN" ] || die "PEER_BIN=$PEER_BIN is not an executable"
else
    PEER_BIN="$OUT/build/bin/llama-bench"
    [ -x "$PEER_BIN" ] || build_peer
    [ -x "$PEER_BIN" ] || die "the build made no $PEER_BIN"
fi

synth() { # NAME ARGS...: build/peer/models/NAME.gguf, made once
    local f="$OUT/models/$1.gguf"
    shift
    local vocab=()
    [ -f "$VOCAB" ] && vocab=(--vocab "$VOCAB")
    [ -f "$f" ] || "$MLC" model synth -q "${vocab[@]}" "$@" -o "$f" >&2 || die "cannot synthesize $f"
    echo "$f"
}

if [ -z "${MODELS:-}" ]; then
    MODELS="$(synth 110m-f16 --preset 110m --type f16) $(synth 110m-q8_0 --preset 110m --type q8_0)"
    MODELS="$MODELS $(synth 110m-q4_k_m --preset 110m --type q4_k_m)"
    MODELS="$MODELS $(synth tiny288-q8_0 --arch llama --dim 288 --layers 6 --heads 6 --kv-heads 6 --ffn 768 \
        --vocab-size 32000 --type q8_0)"
    [ -n "${MLC_GEMMA3_MODEL:-}" ] && [ -f "$MLC_GEMMA3_MODEL" ] && MODELS="$MODELS $MLC_GEMMA3_MODEL"
fi

res="$OUT/results/$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$res"
echo "bench-peer: ours $MLC, peer $PEER_BIN ${PEER_ARGS:-}; -t $THREADS -p $P -n $N -r $R, $ROUNDS rounds; results in $res" >&2
i=0
for round in $(seq "$ROUNDS"); do
    for m in $MODELS; do
        [ -f "$m" ] || die "$m: no such model file"
        i=$((i + 1))
        ours() { "$MLC" micro -m "$m" -t "$THREADS" -p "$P" -n "$N" -r "$R" -o csv --no-store > "$res/$i.ours.csv"; }
        peer() { "$PEER_BIN" -m "$m" -t "$THREADS" -p "$P" -n "$N" -r "$R" "${peer_args[@]}" -o csv > "$res/$i.peer.csv" 2> "$res/$i.peer.log"; }
        # alternate who goes first, so neither always runs on a warmer or quieter machine
        if [ $((round % 2)) = 1 ]; then ours || die "ours failed on $m"; peer || die "llama-bench failed on $m (see $res/$i.peer.log)"
        else peer || die "llama-bench failed on $m (see $res/$i.peer.log)"; ours || die "ours failed on $m"; fi
        echo "bench-peer: round $round, $(basename "$m") done" >&2
    done
done

CPU=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
python3 - "$res" "$CPU" <<'PY'
import csv, glob, os, statistics, sys
res, cpu = sys.argv[1], sys.argv[2]
cells, bw = {}, []
for path in sorted(glob.glob(os.path.join(res, '*.csv'))):
    who = 'ours' if path.endswith('.ours.csv') else 'peer'
    with open(path) as f:
        for row in csv.DictReader(f):
            test = 'pp%s' % row['n_prompt'] if row['n_prompt'] != '0' else 'tg%s' % row['n_gen']
            key = (os.path.basename(row['model_filename']), test)
            cells.setdefault(key, {'ours': [], 'peer': []})[who].append(float(row['avg_ts']))
            if who == 'ours' and row.get('read_gbs'):
                bw.append((key, float(row['weight_gbs']), float(row['read_gbs'])))
print('CPU: %s' % cpu)
if bw:
    print('two-thread read bandwidth (micro, median over the tg cells): %.1f GB/s' %
          statistics.median(b[2] for b in bw))
print()
print('| model | test | ours t/s | llama.cpp t/s | ours / llama.cpp |')
print('| --- | --- | ---: | ---: | ---: |')
for (model, test), v in cells.items():
    if not v['ours'] or not v['peer']:
        continue
    o, p = statistics.median(v['ours']), statistics.median(v['peer'])
    print('| %s | %s | %.2f | %.2f | %.2fx |' % (model, test, o, p, o / p))
if bw:
    print()
    print('| model | test | weights GB/s | read GB/s | share |')
    print('| --- | --- | ---: | ---: | ---: |')
    for key in sorted(set(b[0] for b in bw)):
        w = statistics.median(b[1] for b in bw if b[0] == key)
        r = statistics.median(b[2] for b in bw if b[0] == key)
        print('| %s | %s | %.1f | %.1f | %.0f%% |' % (key[0], key[1], w, r, 100 * w / r))
PY

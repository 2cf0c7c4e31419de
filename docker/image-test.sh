#!/usr/bin/env bash
# The checks of the CPU image's test stage (docker/Dockerfile.cpu, --target test), run as the
# image's user with the installed mlc-bench: every backend has a device, the quick
# conformance suite passes on cpu, opencl (PoCL) and vulkan (lavapipe), and `run` completes
# a short load against `serve --engine null`, whose /health answers. Exits non-zero on the
# first failure, which fails the image build.
set -euo pipefail
work=$(mktemp -d)
serve_pid=
cleanup() { [ -z "$serve_pid" ] || kill "$serve_pid" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

mlc-bench --version
mlc-bench devices | tee "$work/devices"
for b in cpu opencl vulkan; do
    grep -q "^  $b:0 " "$work/devices" || { echo "image-test: no $b device" >&2; exit 1; }
done

for b in cpu opencl vulkan; do
    echo "== conformance --quick --backend $b"
    mlc-bench conformance --backend "$b" --quick --no-store | tail -n 2
done

echo "== run against serve --engine null"
mlc-bench serve --engine null --port 0 > "$work/serve.out" &
serve_pid=$!
port=
for _ in $(seq 100); do
    port=$(sed -n 's|^mlc-bench serve: listening on http://[^:]*:\([0-9]*\).*|\1|p' "$work/serve.out")
    [ -n "$port" ] && break
    kill -0 "$serve_pid" || { echo "image-test: serve exited" >&2; exit 1; }
    sleep 0.1
done
[ -n "$port" ] || { echo "image-test: serve printed no port in 10 s" >&2; exit 1; }
curl -fsS "http://127.0.0.1:$port/health"; echo
mlc-bench run --endpoint "http://127.0.0.1:$port" --dataset random --input-len 16 --output-len 8 \
    --num-prompts 32 --concurrency 4 --db "$work/run.db" | tail -n 5
kill "$serve_pid"
wait "$serve_pid" || { echo "image-test: serve exited non-zero after SIGTERM" >&2; exit 1; }
serve_pid=
echo "image-test: all checks passed"

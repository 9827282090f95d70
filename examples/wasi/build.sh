#!/bin/sh
# Builds the example into ./build: the two C programs (Debian: apt-get install clang lld wasi-libc
# libclang-rt-dev-wasm32), the wasmnet client bundles, and the page. Then:
#   deno run --allow-net --allow-read examples/wasi/serve.ts     # http://127.0.0.1:8000/
#   deno run -A cli.ts                                            # the wasmnet server, ws://127.0.0.1:9000
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out="$here/build"
mkdir -p "$out"
for prog in http_client echo_server; do
  clang --target=wasm32-wasi --sysroot=/usr -O2 -Wall -o "$out/$prog.wasm" "$here/$prog.c"
done
deno run --allow-read --allow-write --allow-run --allow-env "$root/client/build.ts"
cp "$root/client/dist/mod.js" "$out/wasmnet-client.js"
cp "$root/client/dist/wasi.js" "$root/client/dist/wasi_worker.js" "$out/"
cp "$here/index.html" "$out/"
echo "built $out"

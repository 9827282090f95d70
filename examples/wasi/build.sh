#!/bin/sh
# Builds the example into ./build: the two C programs (Debian: apt-get install clang lld wasi-libc
# libclang-rt-dev-wasm32), the wasmnet client bundles, and the page. Then:
#   npx -y deno@2.9.6 run --allow-net --allow-read examples/wasi/serve.ts   # http://127.0.0.1:8000/
#   npx -y deno@2.9.6 task start --no-policy --host 127.0.0.1            # the server, ws://127.0.0.1:9000
# Deno comes from the npm registry (the README's set-up); set DENO to use another one.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out="$here/build"
mkdir -p "$out"
for prog in http_client echo_server; do
  clang --target=wasm32-wasi --sysroot=/usr -O2 -Wall -o "$out/$prog.wasm" "$here/$prog.c"
done
${DENO:-npx -y deno@2.9.6} run --allow-read --allow-write --allow-run --allow-env "$root/client/build.ts"
cp "$root/client/dist/mod.js" "$out/wasmnet-client.js"
cp "$root/client/dist/wasi.js" "$root/client/dist/wasi_worker.js" "$out/"
cp "$here/index.html" "$out/"
echo "built $out"

#!/usr/bin/env bash
# Installs what the tests need on a fresh Debian machine, and does nothing when it is already there:
# Chromium (browser tests), the WASM toolchains (clang/wasi-libc, emscripten, wabt, binaryen), websockify
# (benchmark peer), openssl (test certificates), python3 (a test peer), redis-server, haproxy and nginx
# (cluster tests). Needs root for apt-get.
set -euo pipefail
# shellcheck source=tools/apt_wait.sh
. "$(dirname "$0")/apt_wait.sh"

need=()
have() { command -v "$1" >/dev/null 2>&1; }
have chromium || need+=(chromium)
have clang || need+=(clang)
have wasm-ld || need+=(lld)
[ -d /usr/include/wasm32-wasi ] || need+=(wasi-libc)
ls /usr/lib/llvm-*/lib/clang/*/lib/wasi/libclang_rt.builtins-wasm32.a >/dev/null 2>&1 || need+=(libclang-rt-dev-wasm32)
have emcc || need+=(emscripten)
have wasm2wat || need+=(wabt)
have wasm-opt || need+=(binaryen)
have websockify || need+=(websockify)
have openssl || need+=(openssl)
have python3 || need+=(python3)
have redis-server || need+=(redis-server) # tests/cluster: the shared limits store
have haproxy || need+=(haproxy)           # tests/cluster: the published load balancer config
have nginx || need+=(nginx)               # tests/cluster: the published nginx config
have promtool || need+=(prometheus)       # tests/ops, tests/cluster: /metrics passes promtool check metrics

if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing ${need[*]}" >&2
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  apt_wait update -q
  apt_wait install -y -q --no-install-recommends "${need[@]}"
fi

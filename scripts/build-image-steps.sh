#!/usr/bin/env bash
# The steps that build rerankd's container images (Dockerfile, Dockerfile.cuda), in one script: the
# Dockerfiles RUN it, and CI runs the same steps on its machine (test/deploy/image-steps.test.ts),
# because the machines this project is built on have no container engine. So the steps are tested
# on every CI run even though the images themselves are built only where Docker is.
#
#   build-image-steps.sh copy SRC DEST             the app's runtime files (APP_FILES) from a checkout
#   build-image-steps.sh deps DEST                 production dependencies from the lock, no install scripts
#   build-image-steps.sh prune DEST cpu|cuda       drop node-llama-cpp's prebuilt binaries the image cannot use
#   build-image-steps.sh install SRC DEST VARIANT  copy, deps and prune
#   build-image-steps.sh smoke DEST [MODEL.gguf]   the installed app runs: --version, serve --help, llama.cpp's
#                                                  binding loads; with a model: serve it, wait for the health
#                                                  check, rerank once, SIGTERM, expect a drained exit 0
#   build-image-steps.sh cuda-libs DEST            every library the CUDA backend links is found, but the
#                                                  driver's libcuda.so.1 (the NVIDIA runtime mounts it)
#
# Environment: NPM_INSTALL_FLAGS adds flags to npm install (CI: --offline, from the cache its own
# npm install filled).
set -euo pipefail

# What the running server needs from a checkout, and nothing else (no tests, docs, dev tools).
APP_FILES=(package.json package-lock.json tsconfig.json bin src scripts/healthcheck.mjs scripts/build-image-steps.sh)

die() {
  echo "build-image-steps: $*" >&2
  exit 1
}
say() {
  echo "build-image-steps: $*"
}

copy_app() {
  local src=$1 dest=$2
  mkdir -p "$dest/scripts"
  for file in "${APP_FILES[@]}"; do
    [ -e "$src/$file" ] || die "missing $src/$file"
    mkdir -p "$dest/$(dirname "$file")"
    cp -R "$src/$file" "$dest/$(dirname "$file")/"
  done
  say "copied ${APP_FILES[*]} to $dest"
}

install_deps() {
  local dest=$1
  # `npm install`, not `npm ci`: node-llama-cpp's lock names other platforms' prebuilt binaries,
  # which `npm ci` insists on (README). --ignore-scripts: no postinstall may download or compile
  # anything (node-llama-cpp's only checks for a prebuilt binary; esbuild's only optimizes).
  # shellcheck disable=SC2086
  (cd "$dest" && npm install --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error ${NPM_INSTALL_FLAGS:-})
  [ -d "$dest/node_modules/node-llama-cpp" ] || die "node-llama-cpp was not installed"
  say "installed production dependencies in $dest"
}

prune_binaries() {
  local dest=$1 variant=$2 arch keep dir name
  arch=$(node -p process.arch)
  case "$variant" in
    cpu) keep=("linux-$arch") ;;
    cuda)
      [ "$arch" = x64 ] || die "node-llama-cpp ships CUDA binaries for linux-x64 only, not linux-$arch"
      keep=(linux-x64 linux-x64-cuda linux-x64-cuda-ext)
      ;;
    *) die "variant must be cpu or cuda, not '$variant'" ;;
  esac
  dir="$dest/node_modules/@node-llama-cpp"
  [ -d "$dir" ] || die "no prebuilt llama.cpp binaries in $dir"
  for pkg in "$dir"/*; do
    name=$(basename "$pkg")
    if [[ " ${keep[*]} " != *" $name "* ]]; then rm -rf "$pkg"; fi
  done
  for name in "${keep[@]}"; do
    [ -d "$dir/$name" ] || die "the $variant image needs @node-llama-cpp/$name, which npm did not install"
  done
  say "kept llama.cpp binaries: ${keep[*]}"
}

free_port() {
  node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

smoke() {
  local dest=$1 model=${2:-} port pid rc i body check
  node "$dest/bin/rerankd.js" --version
  node "$dest/bin/rerankd.js" serve --help | grep -q "Usage: rerankd serve" || die "serve --help did not print its usage"
  # llama.cpp's native binding and CPU backend load on this system (glibc, CPU features). From a
  # file, not `node -e`: node-llama-cpp tests its binary in a forked child, which inherits -e.
  check=$(mktemp "${TMPDIR:-/tmp}/rerankd-llama-check-XXXXXX.mjs")
  cat >"$check" <<'EOF'
import { pathToFileURL } from "node:url";
const { getLlama } = await import(pathToFileURL(process.argv[2]).href);
const llama = await getLlama({ gpu: false, build: "never" });
console.log(`llama.cpp ${llama.llamaCppRelease.release} loads (${llama.gpu === false ? "cpu" : llama.gpu})`);
await llama.dispose();
EOF
  rc=0
  node "$check" "$dest/node_modules/node-llama-cpp/dist/index.js" || rc=$?
  rm -f "$check"
  [ "$rc" -eq 0 ] || die "node-llama-cpp's prebuilt binary does not load"
  [ -n "$model" ] || {
    say "smoke passed (no model given: not served)"
    return 0
  }

  port=$(free_port)
  node "$dest/bin/rerankd.js" serve "$model" --host 127.0.0.1 --port "$port" --threads 1 \
    --served-model-name smoke --log-level warn &
  pid=$!
  for i in $(seq 1 600); do
    if node "$dest/scripts/healthcheck.mjs" "http://127.0.0.1:$port/health"; then break; fi
    kill -0 "$pid" 2>/dev/null || die "the server exited before it was ready"
    [ "$i" -lt 600 ] || die "the server was not ready within 120 s"
    sleep 0.2
  done
  body=$(node -e '
    fetch(process.argv[1], { method: "POST", headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "smoke", query: "what is the capital of France?", documents: ["Paris is the capital of France.", "Spiders have eight legs."] }) })
      .then(async (r) => { const t = await r.text(); if (r.status !== 200) { console.error(r.status, t); process.exit(1); } console.log(t); })
      .catch((e) => { console.error(e.message); process.exit(1); });
  ' "http://127.0.0.1:$port/v1/rerank") || {
    kill -KILL "$pid"
    die "rerank request failed"
  }
  case "$body" in *'"relevance_score"'*) ;; *) die "unexpected rerank answer: $body" ;; esac
  kill -TERM "$pid"
  rc=0
  wait "$pid" || rc=$?
  [ "$rc" -eq 0 ] || die "the server exited $rc after SIGTERM (a drained server exits 0)"
  say "smoke passed: served $model, answered a rerank, drained on SIGTERM"
}

cuda_libs() {
  local dest=$1 lib missing
  lib=$(find "$dest/node_modules/@node-llama-cpp/linux-x64-cuda" -name 'libggml-cuda.so' | head -n 1)
  [ -n "$lib" ] || die "no libggml-cuda.so in $dest"
  missing=$(ldd "$lib" | awk '/not found/ { print $1 }' | grep -v '^libcuda\.so\.1$' || true)
  [ -z "$missing" ] || die "the CUDA backend needs libraries this image lacks: $missing"
  say "CUDA backend libraries resolve ($(ldd "$lib" | awk '/libcudart|libcublas/ { print $1 }' | tr '\n' ' '); libcuda.so.1 comes from the driver)"
}

command=${1:-}
shift || true
case "$command" in
  copy) copy_app "$@" ;;
  deps) install_deps "$@" ;;
  prune) prune_binaries "$@" ;;
  install)
    [ $# -eq 3 ] || die "usage: install SRC DEST cpu|cuda"
    copy_app "$1" "$2"
    install_deps "$2"
    prune_binaries "$2" "$3"
    ;;
  smoke) smoke "$@" ;;
  cuda-libs) cuda_libs "$@" ;;
  *) die "usage: $0 copy|deps|prune|install|smoke|cuda-libs ... (see the comment at the top)" ;;
esac

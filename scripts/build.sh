#!/usr/bin/env bash
# Builds the npm package into pkg/: the wasm core (wasm-pack, release,
# wasm-opt -Oz from npm binaryen@132) and the hand-written facade in js/.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/node_modules/.bin:$HOME/.cargo/bin:$PATH"

# --mode no-install: fail fast instead of downloading a wasm-bindgen-cli.
wasm-pack --quiet build --release --target web --out-dir pkg --out-name segmint_wasm --mode no-install --no-pack 2>&1 \
  | grep -v "failed to get wasm-pack version" || true
test -f pkg/segmint_wasm_bg.wasm

cp js/*.js pkg/
[ -f js/index.d.ts ] && cp js/index.d.ts pkg/
cp LICENSE pkg/ 2>/dev/null || true
node scripts/package-json.mjs
echo "built pkg/ ($(wc -c < pkg/segmint_wasm_bg.wasm) bytes of wasm)"

#!/usr/bin/env bash
# Builds the npm package into pkg/: the wasm core (wasm-pack, release,
# wasm-opt -Oz from npm binaryen@132) and the hand-written facade in js/.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/node_modules/.bin:$HOME/.cargo/bin:$PATH"

# Panic locations inside crates.io dependencies are paths under
# $CARGO_HOME: remapped, the wasm names no directory of this machine and
# does not change with where CARGO_HOME is. (Cargo adds these to
# .cargo/config.toml's flags for this target; they replace nothing.)
cargo fetch --locked --quiet  # the registry sources exist before they are named
shopt -s nullglob
remaps=()
for src in "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/; do
  remaps+=("--remap-path-prefix=${src%/}=/cargo")
done
export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS="${remaps[*]}"

# --mode no-install: fail fast instead of downloading a wasm-bindgen-cli.
wasm-pack --quiet build --release --target web --out-dir pkg --out-name segmint_wasm --mode no-install --no-pack 2>&1 \
  | grep -v "failed to get wasm-pack version" || true
test -f pkg/segmint_wasm_bg.wasm
# Short names on the wasm/JS boundary, in the wasm and the glue alike.
node scripts/minify-wasm-names.mjs pkg
# The segment engine and the gzip encoder into a second module, fetched
# later (pkg/segmint_engine.wasm).
node scripts/split-wasm.mjs pkg

# The facade, as ES modules for bundlers (embed.js and stub.js are
# replaced by their built forms below).
for f in index load client json capture slots rules host; do cp "js/$f.js" pkg/; done
cp js/index.d.ts LICENSE pkg/
# The script-tag embed: one minified file, loader + facade + glue.
# (Bundled from pkg/, where the wasm-bindgen glue is.)
# The wasm's SHA-384 is built into the embed, which fetches its sibling wasm
# with that integrity: an `integrity` attribute on the embed's script tag
# then vouches for the wasm too.
sri() { node -e 'const f = require("fs").readFileSync(process.argv[1]); console.log("sha384-" + require("crypto").createHash("sha384").update(f).digest("base64"))' "$1"; }
WASM_SRI=$(sri pkg/segmint_wasm_bg.wasm)
ENGINE_SRI=$(sri pkg/segmint_engine.wasm)
cp js/embed.js pkg/embed.src.js
esbuild pkg/embed.src.js --bundle --format=iife --minify --target=es2020 --log-level=warning \
  --log-override:empty-import-meta=silent --define:WASM_INTEGRITY="\"$WASM_SRI\"" \
  --define:ENGINE_INTEGRITY="\"$ENGINE_SRI\"" --outfile=pkg/embed.js
rm pkg/embed.src.js
printf '{\n  "embed.js": "%s",\n  "segmint_wasm_bg.wasm": "%s",\n  "segmint_engine.wasm": "%s"\n}\n' \
  "$(sri pkg/embed.js)" "$WASM_SRI" "$ENGINE_SRI" > pkg/integrity.json
# The stub snippet shown in README.
esbuild js/stub.js --minify --target=es2015 --log-level=warning --outfile=pkg/stub.min.js
node scripts/package-json.mjs
echo "built pkg/ ($(wc -c < pkg/segmint_wasm_bg.wasm) bytes of wasm at start, $(wc -c < pkg/segmint_engine.wasm) later)"

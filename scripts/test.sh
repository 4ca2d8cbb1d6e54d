#!/usr/bin/env bash
# Runs every test: formatting, lints (native and wasm32), the core's unit,
# property and conformance tests, the wasm bindings in headless Chromium,
# Firefox and WebKitGTK, and the end-to-end suites in Chromium (and
# Firefox and WebKitGTK).
#
#   scripts/test.sh            everything (runs scripts/setup.sh first)
#   SEGMINT_SKIP_FIREFOX=1     skip the Firefox runs (wasm tests and e2e)
#   SEGMINT_SKIP_WEBKIT=1      skip the WebKitGTK runs (wasm tests and e2e)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
bash scripts/setup.sh
export PATH="$ROOT/node_modules/.bin:$HOME/.cargo/bin:$PATH"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

step "cargo fmt --check"
cargo fmt --all -- --check

step "docs: links, code blocks, figures"
node scripts/check-docs.mjs

step "cargo clippy (native)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo clippy (wasm32)"
cargo clippy --target wasm32-unknown-unknown -p segmint --all-targets --locked -- -D warnings
cargo clippy --target wasm32-unknown-unknown -p segmint-core --lib --locked -- -D warnings

step "cargo test (core: unit, property, scenario and GrowthBook conformance tests)"
cargo test --workspace --locked

step "build the npm package (pkg/)"
bash scripts/build.sh
# The figures, for the log (read, never asserted: see bench/).
node bench/size.mjs
node bench/size-breakdown.mjs

step "byte budgets (budgets.json)"
node scripts/check-budgets.mjs

step "wasm bindings in headless browsers"
RECEIVER_PORT=${RECEIVER_PORT:-8787}
node e2e/receiver.mjs --port "$RECEIVER_PORT" > target/receiver.log 2>&1 &
pids+=($!)
node -e "
  const url = 'http://127.0.0.1:$RECEIVER_PORT/__received';
  (async () => { for (let i = 0; i < 100; i++) { try { if ((await fetch(url)).ok) return; } catch {} await new Promise(r => setTimeout(r, 100)); } process.exit(1); })();
"
export SEGMINT_TEST_ENDPOINT="http://127.0.0.1:$RECEIVER_PORT"
wasm-pack test --headless --chrome --mode no-install 2>&1 | grep -v "failed to get wasm-pack version"
test "${PIPESTATUS[0]}" = 0
if [ -z "${SEGMINT_SKIP_FIREFOX:-}" ]; then
  wasm-pack test --headless --firefox --mode no-install 2>&1 | grep -v "failed to get wasm-pack version"
  test "${PIPESTATUS[0]}" = 0
fi
if [ -z "${SEGMINT_SKIP_WEBKIT:-}" ]; then
  # WebKitGTK's WebDriver in place of macOS's safaridriver (the runner's
  # "Safari" is this engine), on a virtual display.
  xvfb-run -a wasm-pack test --headless --safari --safaridriver "$(command -v WebKitWebDriver)" --mode no-install 2>&1 |
    grep -v "failed to get wasm-pack version"
  test "${PIPESTATUS[0]}" = 0
fi

mkdir -p target/artifacts
step "end-to-end (Chromium with playwright-core; Firefox and WebKitGTK over WebDriver)"
node --test --test-concurrency=1 e2e/

printf '\n\033[1;32mall tests passed\033[0m\n'

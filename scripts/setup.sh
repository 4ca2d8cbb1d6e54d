#!/usr/bin/env bash
# Installs everything segmint's demo, tests and benchmarks need on a fresh
# Debian 12 machine, and skips whatever is already present. Safe to re-run:
# a warm run only checks versions (about a second).
#
#   scripts/setup.sh            tool-chain + browsers + npm packages
#   SEGMINT_SKIP_FIREFOX=1      skip Firefox + geckodriver
#   SEGMINT_SKIP_WEBKIT=1       skip WebKitGTK + its WebDriver + Xvfb
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

WASM_PACK_VERSION=0.15.1
GECKODRIVER_VERSION=0.37.1
log() { printf '\033[1msetup:\033[0m %s\n' "$*"; }
# shellcheck source=scripts/progress.sh
source scripts/progress.sh

# wasm-bindgen-cli must match the wasm-bindgen pinned in Cargo.lock exactly,
# or wasm-pack silently tries to download one (and fails here).
WASM_BINDGEN_VERSION=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)
[ -n "$WASM_BINDGEN_VERSION" ] || { echo "setup: no wasm-bindgen in Cargo.lock" >&2; exit 1; }

# --- Debian packages -------------------------------------------------------
apt_missing=()
command -v chromium >/dev/null || apt_missing+=(chromium)
command -v chromedriver >/dev/null || apt_missing+=(chromium-driver)
if [ -z "${SEGMINT_SKIP_FIREFOX:-}" ]; then
  command -v firefox >/dev/null || command -v firefox-esr >/dev/null || apt_missing+=(firefox-esr)
fi
# WebKitGTK (Safari's engine): its WebDriver, which pulls in the engine and
# MiniBrowser, and a virtual X display, since MiniBrowser has no headless
# mode (xvfb-run needs xauth, only recommended by xvfb).
if [ -z "${SEGMINT_SKIP_WEBKIT:-}" ]; then
  command -v WebKitWebDriver >/dev/null || apt_missing+=(webkit2gtk-driver)
  command -v xvfb-run >/dev/null || apt_missing+=(xvfb)
  command -v xauth >/dev/null || apt_missing+=(xauth)
fi
# sqlite3: the Segment-clients test holds the collector's database lock.
command -v sqlite3 >/dev/null || apt_missing+=(sqlite3)
# PostgreSQL server binaries for the collector's PostgreSQL tests.
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || apt_missing+=(postgresql)
# ClickHouse for the collector's ClickHouse tests (each starts its own
# server from a temporary config; the system service is never used).
command -v clickhouse-server >/dev/null || apt_missing+=(clickhouse-server)
command -v clickhouse-client >/dev/null || apt_missing+=(clickhouse-client)
# pkg-config + libssl are not needed: every crate here is pure Rust or bundles its C.
if [ ${#apt_missing[@]} -gt 0 ]; then
  log "apt-get install ${apt_missing[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  quietly "apt-get update" $SUDO apt-get update -qq
  quietly "apt-get install" env DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${apt_missing[@]}"
fi

# --- Rust tool-chain -------------------------------------------------------
if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  log "rustup target add wasm32-unknown-unknown"
  rustup target add wasm32-unknown-unknown
fi
for component in rustfmt clippy; do
  rustup component list --installed | grep -q "^$component" || rustup component add "$component"
done

# First line of `tool --version`, second word, without a leading v.
installed_version() { "$1" --version 2>/dev/null | head -n 1 | awk '{print $2}' | sed 's/^v//'; }

if [ "$(installed_version wasm-pack)" != "$WASM_PACK_VERSION" ]; then
  log "cargo install wasm-pack $WASM_PACK_VERSION (a few minutes, once)"
  quietly "wasm-pack" cargo install wasm-pack --version "$WASM_PACK_VERSION" --locked
fi
if [ "$(installed_version wasm-bindgen)" != "$WASM_BINDGEN_VERSION" ]; then
  log "cargo install wasm-bindgen-cli $WASM_BINDGEN_VERSION (a few minutes, once)"
  # The published lock of some versions names crates this registry lacks
  # (0.2.130's names a webpki-roots it does not have): tried locked first,
  # quietly, then with its dependencies resolved afresh.
  if ! cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION" --locked --quiet --force >/dev/null 2>&1; then
    log "its published lock cannot be used with this registry, as expected here: resolving its dependencies afresh"
    quietly "wasm-bindgen-cli" cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION" --force
  fi
fi
if [ -z "${SEGMINT_SKIP_FIREFOX:-}" ] && [ "$(installed_version geckodriver)" != "$GECKODRIVER_VERSION" ]; then
  log "cargo install geckodriver $GECKODRIVER_VERSION (a few minutes, once)"
  quietly "geckodriver" cargo install geckodriver --version "$GECKODRIVER_VERSION" --locked --force
fi

# --- npm packages (wasm-opt from binaryen@132, playwright-core, bundlers) --
# Never Debian's binaryen (108): its wasm-opt corrupts wasm-bindgen output.
# The root (tools) and examples/ (bundlers for the packaging tests) each
# have a lockfile; `npm ci` runs only when it changed. scripts/bench.sh
# adds bench/ (the peer SDKs) through SEGMINT_NPM_EXTRA.
for dir in . examples ${SEGMINT_NPM_EXTRA:-}; do
  if [ ! -f "$dir/node_modules/.package-lock.json" ] || ! cmp -s "$dir/package-lock.json" "$dir/node_modules/.segmint-lock"; then
    log "npm ci ($dir)"
    (cd "$dir" && quietly "npm ci ($dir)" npm ci --no-audit --no-fund --loglevel=error && cp package-lock.json node_modules/.segmint-lock)
  fi
done
log "ready (wasm-bindgen $WASM_BINDGEN_VERSION, wasm-pack $WASM_PACK_VERSION, $(chromium --version 2>/dev/null | head -c 40))"

#!/usr/bin/env bash
# Runs the demo: builds the SDK and serves the storefront (www/) with the
# package (pkg/), the seed rules and a receiver for the batches.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
PORT=${PORT:-8080}
echo "demo storefront: http://127.0.0.1:$PORT/"
exec node e2e/receiver.mjs --port "$PORT" --static /=www --static /pkg=pkg --rules rules.json

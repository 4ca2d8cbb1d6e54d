#!/usr/bin/env bash
# Runs the demo: builds the SDK and the collector, then serves the demo
# storefront (www/), the package (pkg/), the seed rules and the dashboard,
# storing events in segmint.db (embedded SQLite).
#
#   PORT=8080 DATABASE=sqlite:segmint.db bash scripts/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/progress.sh
source scripts/progress.sh
bash scripts/setup.sh
echo "demo: building the SDK (pkg/; about a minute)"
quietly "the SDK" bash scripts/build.sh
echo "demo: building the collector (a few minutes the first time)"
quietly "the collector" cargo build --locked --profile server -p segmint-collector
echo "demo: http://127.0.0.1:${PORT:-8080} (the storefront) and /dashboard; Ctrl-C stops it"
exec target/server/segmint-collector \
  --listen "127.0.0.1:${PORT:-8080}" \
  --database "${DATABASE:-sqlite:segmint.db}" \
  --rules rules.json --www www --pkg pkg

#!/usr/bin/env bash
# Runs the demo: builds the SDK and the collector, then serves the demo
# storefront (www/), the package (pkg/), the seed rules and the dashboard,
# storing events in segmint.db (embedded SQLite).
#
#   PORT=8080 DATABASE=sqlite:segmint.db bash scripts/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
cargo build --quiet --locked --profile server -p segmint-collector
exec target/server/segmint-collector \
  --listen "127.0.0.1:${PORT:-8080}" \
  --database "${DATABASE:-sqlite:segmint.db}" \
  --rules rules.json --www www --pkg pkg

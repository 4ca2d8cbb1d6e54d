#!/usr/bin/env bash
# Runs the side-by-side benchmark (segmint and the peer SDKs in Chromium)
# and writes bench/RESULTS.md (+ RESULTS.json with every run's figures).
# Not part of the test command: it takes ~25 minutes and its figures are
# for reading, not for passing or failing. With --browser webkit it runs in
# WebKitGTK (Safari's engine) and writes bench/RESULTS-webkit.md.
#
#   bash scripts/bench.sh [--reps 3] [--only segmint,posthog] [--browser webkit]
set -euo pipefail
cd "$(dirname "$0")/.."
SEGMINT_NPM_EXTRA=bench bash scripts/setup.sh
bash scripts/build.sh
exec node bench/run.mjs "$@"

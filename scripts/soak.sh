#!/usr/bin/env bash
# Runs the delivery simulator's seeded schedules by the million (README's
# test command runs 10,000): page views, tabs, storage, clock and network
# faults, one invariant (core/tests/sim/mod.rs). Prints schedules per
# second; a failing schedule prints its seed and the command that replays
# it with a step-by-step trace.
#
#   scripts/soak.sh [schedules] [first seed]     default: 1000000 from 1000000
set -euo pipefail
cd "$(dirname "$0")/.."
SCHEDULES=${1:-1000000}
FIRST=${2:-1000000}
echo "soak: building the simulator (optimized, once)"
cargo test --profile soak -p segmint-core --test simulation --no-run --quiet
echo "soak: $SCHEDULES schedules from seed $FIRST, on $(nproc) cores"
start=$(date +%s)
SEGMINT_SIM_SCHEDULES=$SCHEDULES SEGMINT_SIM_FIRST_SEED=$FIRST SEGMINT_SIM_PROGRESS=1 \
  cargo test --profile soak -p segmint-core --test simulation --quiet -- --nocapture --test-threads "$(nproc)" schedules_part
end=$(date +%s)
secs=$(( end > start ? end - start : 1 ))
echo "soak: $SCHEDULES schedules in ${secs} s ($(( SCHEDULES / secs )) per second)"

# Sourced by the scripts: `quietly "what" command...` runs a long command
# with its output in a log, says every 20 s that it is still going, and
# on failure shows the log's end. `set -e` scripts stop on its failure.
quietly() {
  local what=$1
  shift
  local log
  log=$(mktemp "${TMPDIR:-/tmp}/segmint-step.XXXXXX")
  local start=$SECONDS
  "$@" >"$log" 2>&1 &
  local pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    sleep 1
    if (( (SECONDS - start) % 20 == 0 )) && kill -0 "$pid" 2>/dev/null; then
      printf '  %s: %d s so far\n' "$what" $((SECONDS - start))
    fi
  done
  if wait "$pid"; then
    printf '  %s: done in %d s\n' "$what" $((SECONDS - start))
    rm -f "$log"
  else
    local status=$?
    printf '  %s: failed after %d s; its last lines (whole log: %s):\n' "$what" $((SECONDS - start)) "$log"
    tail -n 30 "$log" | sed 's/^/    /'
    return "$status"
  fi
}

# Sourced by setup.sh and test.sh: `step NAME CMD...` runs CMD and records how long it took, so the
# end of a run says where the time went (set-up steps included, when test.sh calls setup.sh).
# Steps that are skipped because the tool is present record nothing.
STEP_LOG="${STEP_LOG:-}"
if [ -z "$STEP_LOG" ]; then
  STEP_LOG="$(mktemp)"
  export STEP_LOG
  STEP_OWNER=1
fi

step() {
  local name="$1" start=$SECONDS status=0
  shift
  "$@" || status=$?
  local took=$((SECONDS - start)) note=""
  [ "$status" = 0 ] || note="  (failed, exit $status)"
  printf '%-44s %3dm %02ds%s\n' "$name" $((took / 60)) $((took % 60)) "$note" >>"$STEP_LOG"
  return "$status"
}

# Called by the script that created the log, on exit: one line per step, then the total.
print_steps() {
  local status=$?
  if [ "${STEP_OWNER:-0}" = 1 ] && [ -s "$STEP_LOG" ]; then
    echo
    echo "== time per step =="
    cat "$STEP_LOG"
    printf '%-44s %3dm %02ds\n' "total" $((SECONDS / 60)) $((SECONDS % 60))
    rm -f "$STEP_LOG"
  fi
  return $status
}
trap print_steps EXIT

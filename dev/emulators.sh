#!/usr/bin/env bash
# Run a command inside `firebase emulators:exec` so that nothing outlives it and only the
# command's own output reaches the terminal.
#
#   dev/emulators.sh EMULATORS COMMAND
#
# - The emulators (and every Python worker the Functions emulator forks) run in a process group
#   of their own, which is stopped when the command ends: on success, on failure, on Ctrl-C or
#   on SIGTERM. Nothing is left running.
# - The emulators' and the functions' logs go to .cache/logs/emulators-<time>.log; the path is
#   printed at the end, and the log's tail at once when the run fails.
# - The command's output goes to this script's standard output, through $STORY (a path that
#   reopens it), since the emulators' own output is going to the log.
set -uo pipefail

only=$1
command=$2
project=${PROJECT:-demo-agenttrader}
root=$(cd "$(dirname "$0")/.." && pwd)
logs="$root/.cache/logs"
mkdir -p "$logs"
log="$logs/emulators-$(date +%Y%m%d-%H%M%S)-$$.log"

# The emulator writes a param it had no value for to functions/.env.local, which then overrides
# functions/.env.demo-agenttrader on every later start (a param added while it ran keeps its
# default for good): the emulated project's values live in the latter only.
rm -f "$root/functions/.env.local"

exec 3>&1
export STORY="/proc/$$/fd/3"
export GRPC_VERBOSITY=${GRPC_VERBOSITY:-ERROR}

setsid firebase emulators:exec --project "$project" --only "$only" \
  "exec >>\"$STORY\" 2>&1; $command" >"$log" 2>&1 &
group=$!

stop_group() {
  # the emulators first, gently (they flush and release their ports), then whatever is left
  kill -INT "$group" 2>/dev/null
  for _ in $(seq 1 40); do
    kill -0 "$group" 2>/dev/null || break
    sleep 0.2
  done
  kill -TERM -- "-$group" 2>/dev/null
  sleep 0.5
  kill -KILL -- "-$group" 2>/dev/null
}

interrupted=""
trap 'interrupted=1; stop_group' INT TERM
wait "$group"
status=$?
if [ -n "$interrupted" ]; then
  wait "$group" 2>/dev/null
  status=130
fi
stop_group

if [ "$status" -ne 0 ] && [ -z "$interrupted" ]; then
  echo "--- the last lines of the emulators' log ---" >&2
  tail -n 40 "$log" >&2
fi
if [ "$status" -ne 0 ] || [ "${EMULATOR_LOG_NOTE:-1}" != 0 ]; then
  echo "emulator and function logs: $log"
fi
exit "$status"

#!/bin/sh
# Builds {{id}}, vets it, starts `skillhost simulate`, runs the skill against it, and fails unless
# the run succeeds with the incidents it asked for.
#
# Needs `skillhost` on PATH (or SKILLHOST=/path/to/skillhost); SIM_PORT picks the simulator's
# port (default 8400).
set -eu
cd "$(dirname "$0")"
SKILLHOST="${SKILLHOST:-skillhost}"
PORT="${SIM_PORT:-8400}"

{{build}}
"$SKILLHOST" skills check {{artifact}}
mkdir -p skills
cp {{artifact}} skills/{{id}}.wasm

"$SKILLHOST" simulate --listen "127.0.0.1:$PORT" 2>simulator.log &
SIMULATOR=$!
trap 'kill "$SIMULATOR" 2>/dev/null || true' EXIT INT TERM
sed "s/127.0.0.1:8400/127.0.0.1:$PORT/g" skillhost.toml >skillhost.test.toml
export SKILLHOST_SIM_SECRET=simulated-client-secret
tries=0
until "$SKILLHOST" --config skillhost.test.toml connections test sim >/dev/null 2>&1; do
  tries=$((tries + 1))
  if [ "$tries" -ge 50 ]; then
    echo "FAIL: the simulator did not answer on 127.0.0.1:$PORT" >&2
    cat simulator.log >&2
    exit 1
  fi
  sleep 0.2
done

out=$("$SKILLHOST" --config skillhost.test.toml --skills-dir skills run {{id}} --connection sim)
echo "$out"
case "$out" in
  *'"incidents": 10'*) echo "ok: {{id}} ran against the simulator" ;;
  *) echo "FAIL: expected 10 incidents" >&2; exit 1 ;;
esac

#!/usr/bin/env bash
# The main job on the embedded default: installs what is missing, builds,
# starts local RTSP servers (127.0.0.1:8554 and :8555, the second with
# authentication) that serve the bundled footage as four cameras, and runs `xueliang serve` with config/demo.toml (SQLite under
# data/demo/). Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
cargo build --release -p xueliang

clip=tests/fixtures/vtest-h264.mp4
clip265=tests/fixtures/vtest-h265.mp4
port=${XUELIANG_DEMO_RTSP_PORT:-8554}
# The demo's township-government camera needs RTSP authentication, as real cameras do.
export XUELIANG_DEMO_PASSWORD=${XUELIANG_DEMO_PASSWORD:-demo-$RANDOM$RANDOM}

mkdir -p .local
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT
# start_server NAME ARGS...: one RTSP server, waits for its READY line.
start_server() {
  local name=$1; shift
  /usr/bin/python3 tests/rtsp-server/serve.py --loop "$@" \
    > ".local/demo-$name.ready" 2> ".local/demo-$name.log" &
  pids+=($!)
  for _ in $(seq 100); do
    grep -q READY ".local/demo-$name.ready" 2>/dev/null && return 0
    kill -0 "${pids[-1]}" 2>/dev/null || { cat ".local/demo-$name.log" >&2; exit 1; }
    sleep 0.1
  done
  echo "RTSP server $name did not start; see .local/demo-$name.log" >&2; exit 1
}
# Three open cameras (one H.265) and one behind RTSP authentication, as on a real network.
start_server open --port "$port" \
  --mount "school-gate=$clip" --mount "river-bank=$clip" --mount "market=$clip265"
start_server auth --port "$((port + 1))" --mount "township-gov=$clip" \
  --auth "admin:$XUELIANG_DEMO_PASSWORD"
echo "RTSP cameras: rtsp://127.0.0.1:$port/{school-gate,river-bank,market}, rtsp://127.0.0.1:$((port + 1))/township-gov"
# The demo's first admin: a random password made once per data directory and
# kept beside the database (there is no default password).
pwfile=data/demo/admin-password
if [ ! -s "$pwfile" ]; then
  mkdir -p data/demo
  (umask 077; head -c 12 /dev/urandom | base64 | tr -d '/+=' > "$pwfile")
  target/release/xueliang user add --config config/demo.toml --username admin --role admin \
    --password-stdin < "$pwfile"
fi
echo "Dashboard: http://127.0.0.1:8080/  user: admin  password: $(cat "$pwfile") (kept in $pwfile)"
echo "Stop with Ctrl-C."
target/release/xueliang serve --config config/demo.toml

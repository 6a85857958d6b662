#!/usr/bin/env bash
# `make serve`: run the proxy with $CONFIG (default: config.example.yaml).
# When the configured upstream is the local simulator (http://127.0.0.1:PORT) and nothing
# listens there, the simulator is started first and stopped when the proxy stops.
set -euo pipefail
config="${1:-config.example.yaml}"
bin="${BIN:-.venv/bin}"
origin="$("$bin/python" - "$config" <<'PY'
import os, sys
from proxy.config import ConfigError, load
try:
    print(load(sys.argv[1], os.environ).upstream.origin)
except ConfigError as err:
    print("\n".join(f"config: {p}" for p in err.problems), file=sys.stderr)
    sys.exit(2)
PY
)"
sim_pid=""
if [[ "$origin" =~ ^http://(127\.0\.0\.1|localhost):([0-9]+)/?$ ]]; then
  port="${BASH_REMATCH[2]}"
  if "$bin/python" -c "import socket,sys; socket.create_connection(('127.0.0.1', $port), 1)" 2>/dev/null; then
    echo "serve: upstream $origin is already up"
  else
    echo "serve: starting the simulator on $origin (make simulator runs it on its own)"
    "$bin/modellix-proxy" simulator --port "$port" >.simulator.log 2>&1 &
    sim_pid=$!
    trap 'kill "$sim_pid" 2>/dev/null || true; wait "$sim_pid" 2>/dev/null || true' EXIT
    for _ in $(seq 50); do
      "$bin/python" -c "import socket; socket.create_connection(('127.0.0.1', $port), 1)" 2>/dev/null && break
      sleep 0.1
    done
  fi
else
  echo "serve: upstream is $origin"
fi
echo "serve: config $config; clients: export MODELLIX_BASE_URL=<listen address>; Ctrl-C stops"
"$bin/modellix-proxy" serve -c "$config"

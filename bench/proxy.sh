#!/usr/bin/env bash
# Proxy throughput beside the peers of ../shared/bench/peers/run.sh (nginx, HAProxy,
# node-http-proxy, @fastify/http-proxy), all on loopback against the same nginx origin
# (127.0.0.1:18080, started by run.sh).
#
# Usage: bench/proxy.sh [seconds] [connections] [workers]     (defaults: 8 64 1)
# Starts a controller (embedded store, temp dir) and one agent with N workers, applies a
# listener on 127.0.0.1:18090 routed to the origin, then runs the peers' script with
# AGENT_URL. Needs a built tree (npm run build). Root is needed once, to apt-get the peers.
set -euo pipefail
D=${1:-8}; C=${2:-64}; WORKERS=${3:-1}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PEERS=${PEERS:-$ROOT/../shared/bench/peers}
SLUICE="node $ROOT/packages/sluice/bin/sluice.js"
TMP=$(mktemp -d /dev/shm/sluice-bench.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$TMP"; }
trap cleanup EXIT

$SLUICE controller --store embedded --data-dir "$TMP/data" --admin-addr 127.0.0.1:19080 --grpc-addr 127.0.0.1:19081 --log-level warn >"$TMP/controller.log" 2>&1 &
pids+=($!)
$SLUICE agent --controller 127.0.0.1:19081 --id bench --admin-addr 127.0.0.1:19180 --workers "$WORKERS" --log-level warn >"$TMP/agent.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do curl -fsS -o /dev/null http://127.0.0.1:19080/readyz 2>/dev/null && break; sleep 0.1; done

node "$ROOT/packages/cli/bin/sluicectl.js" --server http://127.0.0.1:19080 apply -f - >/dev/null <<'YAML'
apiVersion: sluice/v1
kind: Listener
metadata: {name: bench}
spec: {port: 18090, protocol: HTTP}
---
apiVersion: sluice/v1
kind: Upstream
metadata: {name: origin}
spec:
  endpoints: [{address: 127.0.0.1, port: 18080}]
---
apiVersion: sluice/v1
kind: Route
metadata: {name: bench}
spec:
  parentRefs: [{name: bench}]
  rules: [{backendRefs: [{name: origin}]}]
YAML
for _ in $(seq 100); do curl -fsS -o /dev/null http://127.0.0.1:19180/readyz 2>/dev/null && break; sleep 0.1; done

echo "sluice agent: $WORKERS worker(s), $(nproc) cores, node $(node --version)"
AGENT_URL=http://127.0.0.1:18090/ bash "$PEERS/run.sh" "$D" "$C"

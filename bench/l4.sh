#!/usr/bin/env bash
# L4 (TCP pass-through) throughput beside the peers of ../shared/bench/peers/l4.sh (nginx
# stream, HAProxy mode tcp, a bare Node net+pipe proxy), all on loopback in front of the
# same nginx origin (127.0.0.1:18080, started by l4.sh). wrk drives HTTP keep-alive through
# each TCP proxy, so a figure is requests carried, not connections made.
#
# Usage: bench/l4.sh [seconds] [connections] [workers]     (defaults: 6 64 1)
# Starts a controller (embedded store, temp dir) and one agent with N workers, applies a TCP
# listener on 127.0.0.1:18190 with a TCPRoute to the origin, then runs the peers' script
# with AGENT_TCP_URL. Needs a built tree (npm run build), and nginx (with the stream
# module), haproxy and wrk installed.
set -euo pipefail
D=${1:-6}; C=${2:-64}; WORKERS=${3:-1}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PEERS=${PEERS:-$ROOT/../shared/bench/peers}
SLUICE="node $ROOT/packages/sluice/bin/sluice.js"
TMP=$(mktemp -d /dev/shm/sluice-bench-l4.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$TMP"; }
trap cleanup EXIT

# Ports apart from bench/proxy.sh's, so both can be run in one session.
$SLUICE controller --store embedded --data-dir "$TMP/data" --admin-addr 127.0.0.1:19280 --grpc-addr 127.0.0.1:19281 --log-level warn >"$TMP/controller.log" 2>&1 &
pids+=($!)
$SLUICE agent --controller 127.0.0.1:19281 --id bench-l4 --admin-addr 127.0.0.1:19380 --workers "$WORKERS" --log-level warn >"$TMP/agent.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do curl -fsS -o /dev/null http://127.0.0.1:19280/readyz 2>/dev/null && break; sleep 0.1; done

node "$ROOT/packages/cli/bin/sluicectl.js" --server http://127.0.0.1:19280 apply -f - >/dev/null <<'YAML'
apiVersion: sluice/v1
kind: Listener
metadata: {name: bench-tcp}
spec: {port: 18190, protocol: TCP}
---
apiVersion: sluice/v1
kind: Upstream
metadata: {name: origin}
spec:
  endpoints: [{address: 127.0.0.1, port: 18080}]
---
apiVersion: sluice/v1
kind: TCPRoute
metadata: {name: bench-tcp}
spec:
  parentRefs: [{name: bench-tcp}]
  backendRefs: [{name: origin}]
YAML
for _ in $(seq 100); do curl -fsS -o /dev/null http://127.0.0.1:19380/readyz 2>/dev/null && break; sleep 0.1; done

echo "sluice agent: $WORKERS worker(s), $(nproc) cores, node $(node --version)"
AGENT_TCP_URL=http://127.0.0.1:18190/ bash "$PEERS/l4.sh" "$D" "$C"

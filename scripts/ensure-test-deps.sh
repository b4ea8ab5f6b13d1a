#!/usr/bin/env bash
# Installs what the test suite needs beyond npm packages: a real etcd server (Debian's
# etcd-server) for the etcd store tests. Idempotent; a no-op when etcd is already there.
set -euo pipefail
if command -v etcd >/dev/null 2>&1 || [ -x /usr/bin/etcd ]; then
  exit 0
fi
echo "installing etcd-server (Debian package) for the etcd tests..." >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "error: etcd is missing; run as root or install etcd-server yourself" >&2; exit 1; }
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null
$SUDO apt-get install -y -qq etcd-server >/dev/null
# Debian starts an etcd service on install where systemd runs; the tests start their own.
command -v etcd >/dev/null 2>&1 || [ -x /usr/bin/etcd ]

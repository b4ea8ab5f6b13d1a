#!/usr/bin/env bash
# Installs what the test suite needs beyond npm packages: a real etcd server (Debian's
# etcd-server) for the etcd store tests, and Go + kubectl for the deploy tests. Idempotent;
# a no-op when all of them are already there.
set -euo pipefail
# test/deploy: helm/render builds offline against Debian's Go libraries, the systemd units are
# checked with systemd-analyze, and the kustomize base is built with `kubectl kustomize`
# (Debian's kubernetes-client where no kubectl exists).
deploy_pkgs=()
command -v go >/dev/null 2>&1 || deploy_pkgs+=(golang-go)
for pkg in golang-github-masterminds-sprig-dev golang-github-xeipuuv-gojsonschema-dev golang-k8s-sigs-yaml-dev; do
  dpkg -s "$pkg" >/dev/null 2>&1 || deploy_pkgs+=("$pkg")
done
command -v kubectl >/dev/null 2>&1 || deploy_pkgs+=(kubernetes-client)
command -v systemd-analyze >/dev/null 2>&1 || deploy_pkgs+=(systemd)
if [ "${#deploy_pkgs[@]}" -gt 0 ]; then
  echo "installing ${deploy_pkgs[*]} (Debian packages) for the deploy tests..." >&2
  DEPLOY_SUDO=""
  [ "$(id -u)" -eq 0 ] || DEPLOY_SUDO="sudo"
  DEBIAN_FRONTEND=noninteractive $DEPLOY_SUDO apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $DEPLOY_SUDO apt-get install -y -qq "${deploy_pkgs[@]}" >/dev/null
fi
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

#!/usr/bin/env bash
# Builds helm-render offline against Debian's packaged Go libraries (golang-go,
# golang-github-masterminds-sprig-dev, golang-github-xeipuuv-gojsonschema-dev,
# golang-k8s-sigs-yaml-dev; scripts/ensure-test-deps.sh installs them).
# GOPATH mode resolves the ".../sprig/v3" import only from code inside a GOPATH, so the
# source is linked into a throw-away one. Usage: build.sh [OUTPUT] (default ./helm-render).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="$(realpath -m "${1:-$here/helm-render}")"
gopath="$(mktemp -d)"
trap 'rm -rf "$gopath"' EXIT
mkdir -p "$gopath/src/sluice"
ln -s "$here" "$gopath/src/sluice/helm-render"
cd "$gopath/src/sluice/helm-render"
# go needs a build cache; without HOME (some CI shells) keep it in the throw-away GOPATH.
if [ -z "${GOCACHE:-}" ] && [ -z "${HOME:-}" ] && [ -z "${XDG_CACHE_HOME:-}" ]; then
  export GOCACHE="$gopath/cache"
fi
GO111MODULE=off GOPATH="$gopath:/usr/share/gocode" GOFLAGS= go build -o "$out" .

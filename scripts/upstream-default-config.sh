#!/usr/bin/env bash
# upstream-default-config.sh — (re)generate runtime-tools-tests/upstream/default-config.json,
# the config every upstream validation case starts from, with upstream's own
# generator (runtime-tools-tests/upstream/gen-default.go calls
# opencontainers/runtime-tools' generate.New("linux") as validation/util's
# GetDefaultGenerator does). Needs golang-go and
# golang-github-opencontainers-runtime-tools-dev (scripts/bootstrap.sh).
#
#   scripts/upstream-default-config.sh          # rewrite the fixture
#   scripts/upstream-default-config.sh --check  # fail if the fixture differs
set -euo pipefail
ws=$(cd "$(dirname "$0")/.." && pwd)
dir=$ws/runtime-tools-tests/upstream
gopath=${UPSTREAM_GOPATH:-/usr/share/gocode}
if ! [ -d "$gopath/src/github.com/opencontainers/runtime-tools/generate" ]; then
  echo "upstream-default-config: no runtime-tools generator under $gopath (apt-get install golang-github-opencontainers-runtime-tools-dev)" >&2
  exit 1
fi
out=$(mktemp)
trap 'rm -f "$out"' EXIT
(cd "$dir" && GO111MODULE=off GOPATH=$gopath GOFLAGS= GOCACHE=${GOCACHE:-/tmp/upstream-gocache} \
  go run gen-default.go) > "$out"
if [ "${1:-}" = --check ]; then
  if ! diff -u "$dir/default-config.json" "$out"; then
    echo "upstream-default-config: runtime-tools-tests/upstream/default-config.json differs from upstream's generator output (run scripts/upstream-default-config.sh)" >&2
    exit 1
  fi
  echo "upstream-default-config: fixture matches upstream's generator"
else
  cp "$out" "$dir/default-config.json"
  echo "wrote $dir/default-config.json"
fi

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
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# fixture file = variant of gen-default.go ("" = upstream's default generator)
fixtures="default-config.json: privileged-config.json:privileged seccomp-config.json:seccomp"
(cd "$dir" && GO111MODULE=off GOPATH=$gopath GOFLAGS= GOCACHE=${GOCACHE:-/tmp/upstream-gocache} \
  go build -o "$tmp/gen-default" gen-default.go)
rc=0
for f in $fixtures; do
  file=${f%%:*} variant=${f#*:}
  "$tmp/gen-default" $variant > "$tmp/$file"
  if [ "${1:-}" = --check ]; then
    if ! diff -u "$dir/$file" "$tmp/$file"; then
      echo "upstream-default-config: runtime-tools-tests/upstream/$file differs from upstream's generator output (run scripts/upstream-default-config.sh)" >&2
      rc=1
    fi
  else
    cp "$tmp/$file" "$dir/$file"
    echo "wrote $dir/$file"
  fi
done
if [ "${1:-}" = --check ] && [ $rc = 0 ]; then
  echo "upstream-default-config: fixtures match upstream's generator"
fi
exit $rc

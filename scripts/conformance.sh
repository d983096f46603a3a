#!/usr/bin/env bash
# conformance.sh — build skiff's OCI conformance suite (runtime-tools-tests)
# and run it against a runtime.
#
#   RUNTIME=/path/to/runtime scripts/conformance.sh [driver options...]
#
# RUNTIME defaults to <workspace>/target/debug/skiff. When
# runtime-tools-tests/expected/<runtime name>.txt exists it is passed as
# --expected (the run then fails only on a regression: a case expected to
# pass that does not). Driver options: --filter SUBSTR, --list, --verbose,
# --timeout SECS, --record FILE (write a new expectations file), …
# Build output goes to $RTT_TARGET_DIR (default: /tmp/target-rtt) so the suite
# does not contend with the workspace's own target dir. Needs root.
set -euo pipefail
ws=$(cd "$(dirname "$0")/.." && pwd)
target=${RTT_TARGET_DIR:-/tmp/target-rtt}
runtime=${RUNTIME:-$ws/target/debug/skiff}
case $runtime in */*) runtime=$(readlink -f "$runtime") ;; esac
host=$(rustc -vV | sed -n 's/^host: //p')

cd "$ws"
# the suite's base config must be what upstream's generator makes (CI has Go
# and the runtime-tools source: scripts/bootstrap.sh); skip only where Go or
# the package is missing, loudly
if command -v go >/dev/null 2>&1 && [ -d /usr/share/gocode/src/github.com/opencontainers/runtime-tools/generate ]; then
  scripts/upstream-default-config.sh --check >&2
elif [ -n "${CI:-}" ]; then
  echo "conformance: Go or golang-github-opencontainers-runtime-tools-dev missing (scripts/bootstrap.sh)" >&2
  exit 1
else
  echo "conformance: WARNING: cannot check runtime-tools-tests/upstream/*.json against upstream's generator (no Go / runtime-tools source)" >&2
fi
# driver: ordinary build; checker: static (it runs inside a rootfs with no libc)
CARGO_TARGET_DIR=$target cargo build --quiet -p runtime-tools-tests --bin runtime-tools-tests
RUSTFLAGS='-C target-feature=+crt-static' CARGO_TARGET_DIR=$target \
  cargo build --quiet -p runtime-tools-tests --bin rtt-checker --target "$host"

args=()
exp="$ws/runtime-tools-tests/expected/$(basename "$runtime").txt"
if [ -f "$exp" ] && grep -qv '^[[:space:]]*\(#\|$\)' "$exp"; then
  args+=(--expected "$exp")
fi
export RUNTIME=$runtime
export RTT_CHECKER=$target/$host/debug/rtt-checker
# (not the path baked in at build time: the target dir may be shared by checkouts)
export RTT_MKROOTFS=${RTT_MKROOTFS:-$ws/scripts/mk-rootfs.sh}
exec "$target/debug/runtime-tools-tests" "${args[@]}" "$@"

# skiff tasks. `scripts/bootstrap.sh` installs what these need (including just).

skiff := justfile_directory() / "target/debug/skiff"
skiff_release := justfile_directory() / "target/release/skiff"

default:
    @just --list

# Build skiff (debug and release)
build:
    cargo build --workspace
    cargo build --release -p skiff

# Build a busybox bundle and run a container in it (as root)
demo: build
    scripts/demo.sh {{skiff_release}}

# The whole test suite: unit + integration tests, OCI conformance, containerd end to end (as root)
test: build
    cargo test --workspace -- --test-threads=4
    RUNTIME={{skiff}} scripts/conformance.sh
    RUNTIME={{skiff}} scripts/containerd-smoke.sh

# OCI conformance suite; RUNTIME=/path/to/runtime to test another runtime
conformance:
    cargo build -p skiff
    RUNTIME=${RUNTIME:-{{skiff}}} scripts/conformance.sh

# containerd + ctr end-to-end smoke test
containerd-smoke:
    cargo build -p skiff
    RUNTIME=${RUNTIME:-{{skiff}}} scripts/containerd-smoke.sh

# skiff vs crun vs runc: run latency and peak RSS (see docs/benchmarks.md)
bench:
    cargo build --release -p skiff
    scripts/bench.sh

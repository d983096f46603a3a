# skiff tasks. `scripts/bootstrap.sh` installs what these need (including just).

host := `rustc -vV | sed -n 's/^host: //p'`
skiff := justfile_directory() / "target/debug/skiff"
# The release binary (`just release`): static, non-PIE, on musl: no
# dynamic loader and no glibc start-up before main (glibc's costs ~0.5 ms a
# process in a VM: docs/benchmarks.md, "2026-12-04"). What `just install`,
# `just demo` and `just bench` use. --target keeps RUSTFLAGS off proc-macros.
skiff_release := justfile_directory() / "target/x86_64-unknown-linux-musl/release/skiff"
# The same binary on glibc (`just release-glibc`), for a host without the
# musl target; `just test` builds it and checks its link order.
skiff_glibc := justfile_directory() / "target" / host / "release/skiff"
# `just install` puts files under DESTDIR/PREFIX (`just PREFIX=/usr DESTDIR=/tmp/pkg install`,
# or the environment variables of the same names).
PREFIX := env_var_or_default("PREFIX", "/usr/local")
DESTDIR := env_var_or_default("DESTDIR", "")
gen_dir := justfile_directory() / "target/gen"
link_order := justfile_directory() / "crates/skiff/link-order.txt"
# Both release builds: static, non-PIE.
static_flags := "-C target-feature=+crt-static -C relocation-model=static"
# lld's flags: rust-lld is the default linker of x86_64-unknown-linux-gnu
# only (other hosts link with cc's linker, in the default order).
link_flags := if host == "x86_64-unknown-linux-gnu" { "-C link-arg=-Wl,--symbol-ordering-file=" + link_order + " -C link-arg=-Wl,--no-warn-symbol-ordering -C link-arg=-Wl,-Map=" + skiff_glibc + ".map" } else { "" }

default:
    @just --list

# Build skiff: debug (tests) and the static release binary
build: debug release

debug:
    cargo build --workspace

musl_deps := justfile_directory() / "target/musl-deps"
# Each build's symbols carry its own crate hashes: a link order list each.
link_order_musl := justfile_directory() / "crates/skiff/link-order-musl.txt"

# The release binary, on musl. libseccomp is built for musl by
# scripts/musl-deps.sh; linked with lld, the functions a container's life
# runs first and together, in the order of crates/skiff/link-order-musl.txt
# (`just link-order` regenerates it; scripts/link-order.sh says why); the
# link map goes next to the binary.
release:
    rustup target list --installed | grep -qx x86_64-unknown-linux-musl || rustup target add x86_64-unknown-linux-musl
    scripts/musl-deps.sh {{musl_deps}}
    CC_x86_64_unknown_linux_musl=musl-gcc LIBBPF_SYS_EXTRA_CFLAGS="-ffunction-sections -fdata-sections -I{{musl_deps}}/include" \
    LIBSECCOMP_LINK_TYPE=static LIBSECCOMP_LIB_PATH={{musl_deps}}/seccomp/lib \
    RUSTFLAGS="{{static_flags}} -L native={{musl_deps}}/fakelib -C link-arg=-fuse-ld=lld -C link-arg=-Wl,--symbol-ordering-file={{link_order_musl}} -C link-arg=-Wl,--no-warn-symbol-ordering -C link-arg=-Wl,-Map={{skiff_release}}.map" \
    cargo build --release --target x86_64-unknown-linux-musl -p skiff
    @echo "release binary: {{skiff_release}}"

# The release binary on glibc (libseccomp's static library from libseccomp-dev),
# in the order of crates/skiff/link-order.txt (`just link-order-glibc`)
release-glibc:
    LIBSECCOMP_LINK_TYPE=static LIBSECCOMP_LIB_PATH="$(pkg-config --variable=libdir libseccomp)" \
    RUSTFLAGS="{{static_flags}} {{link_flags}}" \
    cargo build --release --target {{host}} -p skiff
    @echo "release binary (glibc): {{skiff_glibc}}"

# The release binary under the integration suite, and both release builds'
# link orders current (part of `just test`)
release-check: release release-glibc
    SKIFF_BIN={{skiff_release}} cargo test -p skiff-integration-tests --no-fail-fast -- --test-threads=4
    LINK_ORDER={{link_order_musl}} scripts/link-order.sh --check {{skiff_release}}
    scripts/link-order.sh --check {{skiff_glibc}}

# Man pages (section 8) and bash/zsh/fish completions from the CLI definition, into target/gen
gen:
    cargo run --quiet -p skiff-gen -- {{gen_dir}} > /dev/null

# Install the release binary, the man pages and the completions where Debian puts runc's (sbin, like runc)
install: release gen
    install -D -m 0755 {{skiff_release}} "{{DESTDIR}}{{PREFIX}}/sbin/skiff"
    install -d "{{DESTDIR}}{{PREFIX}}/share/man/man8"
    install -m 0644 {{gen_dir}}/man8/*.8 "{{DESTDIR}}{{PREFIX}}/share/man/man8/"
    install -D -m 0644 {{gen_dir}}/completions/skiff.bash "{{DESTDIR}}{{PREFIX}}/share/bash-completion/completions/skiff"
    install -D -m 0644 {{gen_dir}}/completions/_skiff "{{DESTDIR}}{{PREFIX}}/share/zsh/vendor-completions/_skiff"
    install -D -m 0644 {{gen_dir}}/completions/skiff.fish "{{DESTDIR}}{{PREFIX}}/share/fish/vendor_completions.d/skiff.fish"

# Remove what `just install` installed (same PREFIX and DESTDIR)
uninstall:
    rm -f "{{DESTDIR}}{{PREFIX}}/sbin/skiff" "{{DESTDIR}}{{PREFIX}}/share/man/man8/skiff.8" "{{DESTDIR}}{{PREFIX}}"/share/man/man8/skiff-*.8 \
      "{{DESTDIR}}{{PREFIX}}/share/bash-completion/completions/skiff" "{{DESTDIR}}{{PREFIX}}/share/zsh/vendor-completions/_skiff" \
      "{{DESTDIR}}{{PREFIX}}/share/fish/vendor_completions.d/skiff.fish"

# `just install` into a temporary DESTDIR, then check the files, the pages and the completions
install-check:
    scripts/install-check.sh

# Build a busybox bundle and run a container in it (as root)
demo: release
    scripts/demo.sh {{skiff_release}}

# The whole test suite: unit + integration tests, OCI conformance, end to end with the real callers (as root)
test: debug
    cargo test --workspace -- --test-threads=4
    scripts/soak.sh 50
    scripts/install-check.sh
    just release-check
    RUNTIME={{skiff}} scripts/conformance.sh
    RUNTIME={{skiff}} e2e/run.sh
    RUNTIME={{skiff_release}} scripts/conformance.sh
    RUNTIME={{skiff_release}} e2e/run.sh
    scripts/lsm-vm.sh
    just vm-tests
    just conformance-v2-ci

# N container lifecycles (create/start/exec/kill/delete, run with a terminal), failing
# if mounts, cgroup dirs, fds, zombies or state files grew; `just test` runs 50 (~20 s),
# `just soak 1000` by hand. SKIFF=/usr/sbin/runc to soak another runtime.
soak N="50": debug
    scripts/soak.sh {{N}}

# Integration tests that need a cgroup-v2 host or systemd, in the VM of
# ../shared/tools/vm-run.sh (part of `just test`): exec, the cgroup tests,
# every linux.resources field on v2 (~2 min), update/events (~2 min),
# checkpoint/restore with CRIU (~2 min, and end to end ~3 min: CRIU cannot
# work on this host's kernel), and the systemd driver against a real systemd
# (there it must not skip)
vm-tests: debug
    scripts/vm-test.sh exec
    scripts/vm-test.sh cgroups
    scripts/vm-test.sh --strict resources
    scripts/vm-test.sh --strict update_events
    scripts/vm-test.sh --systemd --strict systemd
    scripts/vm-test.sh --systemd --strict rootless delegated
    scripts/vm-test.sh --strict checkpoint
    just e2e-checkpoint

# ctr task checkpoint + containers restore --live and Podman container checkpoint/restore
# with CRIU, which cannot work on this host's kernel (~3 min; part of vm-tests):
# Checkpoint/restore end to end in the VM (RUNTIME=/usr/sbin/runc for another runtime)
e2e-checkpoint: debug
    RUNTIME=${RUNTIME:-{{skiff}}} e2e/checkpoint-vm.sh

# Regenerate runtime-tools-tests/upstream/default-config.json with upstream's generator (Go)
upstream-config:
    scripts/upstream-default-config.sh

# OCI conformance suite; RUNTIME=/path/to/runtime to test another runtime
conformance: debug
    RUNTIME=${RUNTIME:-{{skiff}}} scripts/conformance.sh

# containerd 1.6 + ctr, its CRI plugin (driven as the kubelet does), dockerd 20.10
# and Podman 4.3 (rootful, and rootless as a user of its own), each with the runtime
# under test; prints the client x scenario table. PARTS: some of "containerd cri
# docker podman podman-rootless"; E2E_EXPECTED=FILE lists
# rows expected to fail (docs/compatibility.md, "End to end with the real callers").
# End to end with the real callers (RUNTIME=/usr/sbin/runc to test another runtime)
e2e PARTS="": debug
    RUNTIME=${RUNTIME:-{{skiff}}} e2e/run.sh {{PARTS}}

# containerd + ctr, the quick check (`just e2e` covers it and more)
containerd-smoke: debug
    RUNTIME=${RUNTIME:-{{skiff}}} SMOKE_EXEC=${SMOKE_EXEC:-1} python3 e2e/subreaper.py scripts/containerd-smoke.sh

floor_bin := justfile_directory() / "target/bench/floor"

# The reference floor (bench/floor.c): the kernel work of the benchmark's container, no runtime
# (on musl, as the release binary: glibc's start-up is no kernel work, and
# costs ~0.5 ms a process in a VM; docs/benchmarks.md, "2026-12-05")
floor:
    mkdir -p "$(dirname {{floor_bin}})"
    scripts/musl-deps.sh {{musl_deps}}
    musl-gcc -O2 -static -Wall -Wextra -I{{musl_deps}}/include -o {{floor_bin}} bench/floor.c

# RUNS, ROUNDS, ORDERS, RUNTIMES, SKIFF... pass through (scripts/bench.sh lists them).
# ~10 min at the defaults; docs/benchmarks.md. skiff vs crun vs runc (youki if installed)
# vs the floor: every row of issue 12 in both runtime orders, and the targets table
bench: release floor
    SKIFF="${SKIFF:-{{skiff_release}}}" FLOOR="${FLOOR:-{{floor_bin}}}" RUNS="${RUNS:-100}" ROUNDS="${ROUNDS:-4}" \
      ORDERS="${ORDERS:-forward reverse}" scripts/bench.sh

# What a cgroup v1 join costs after an idle moment: from outside (runc's way) vs by the process itself (skiff's)
bench-cgroup-join:
    mkdir -p target/bench
    cc -O2 -Wall -Wextra -o target/bench/cgroup-join bench/cgroup-join.c
    target/bench/cgroup-join outside 20 && target/bench/cgroup-join self 20

# Trace a container's life in the release binary and write crates/skiff/link-order-musl.txt
link-order: release
    LINK_ORDER={{link_order_musl}} scripts/link-order.sh {{skiff_release}}

# The same for the glibc build: crates/skiff/link-order.txt
link-order-glibc: release-glibc
    scripts/link-order.sh {{skiff_glibc}}

# list/state with 1 000 containers in the root, create with 10 000 entries (docs/benchmarks.md)
bench-scale: release
    SKIFF="${SKIFF:-{{skiff_release}}}" scripts/bench-scale.sh

# conformance-v2-ci's cases: every cgroup case plus the cases whose setup
# touches cgroups, namespaces or the cgroup-v2 /sys (=NAME: exact name)
v2_cases := "--filter cgroups --filter =default --filter =create --filter =delete --filter =delete_only_create_resources --filter =delete_resources --filter =state --filter =kill --filter =linux_ns_nopath --filter =linux_ns_itype --filter =linux_ns_path --filter =process --filter =process_capabilities --filter =process_user --filter =process_rlimits --filter =linux_devices --filter =mounts --filter =linux_sysctl --filter =linux_uid_mappings --filter =misc_props --filter =linux_seccomp --filter =root_readonly_true --filter =hooks_stdin"

# The conformance cases whose outcome can depend on the cgroup version, in a
# cgroup-v2 VM (../shared/tools/vm-run.sh), failing on a regression against
# runtime-tools-tests/expected/skiff-v2.txt. Part of `just test`. The whole
# suite takes ~9 min of the emulated VM, this subset about half; left out:
# hook timing, masked/read-only paths, rootfs propagation, signals,
# namespace-path types and the extras, which do not touch cgroups.
conformance-v2-ci: debug
    RTT_TARGET_DIR={{justfile_directory()}}/target/rtt scripts/conformance.sh --list > /dev/null
    {{justfile_directory()}}/../shared/tools/vm-run.sh --timing -C {{justfile_directory()}} -t 1200 \
      "RUNTIME={{skiff}} RTT_CHECKER={{justfile_directory()}}/target/rtt/{{host}}/debug/rtt-checker \
       RTT_MKROOTFS={{justfile_directory()}}/scripts/mk-rootfs.sh \
       {{justfile_directory()}}/target/rtt/debug/runtime-tools-tests --timeout 300 \
       --expected {{justfile_directory()}}/runtime-tools-tests/expected/skiff-v2.txt {{v2_cases}}"

# Conformance cases on a pure cgroup-v2 host: a throw-away VM (../shared/tools/vm-run.sh).
# FILTER selects cases (default: the cgroup ones); software emulation, so keep it focused.
conformance-v2 FILTER="cgroups": debug
    RTT_TARGET_DIR={{justfile_directory()}}/target/rtt scripts/conformance.sh --list > /dev/null
    {{justfile_directory()}}/../shared/tools/vm-run.sh -C {{justfile_directory()}} -t 1800 \
      "RUNTIME={{skiff}} RTT_CHECKER={{justfile_directory()}}/target/rtt/{{host}}/debug/rtt-checker \
       RTT_MKROOTFS={{justfile_directory()}}/scripts/mk-rootfs.sh \
       {{justfile_directory()}}/target/rtt/debug/runtime-tools-tests --filter {{FILTER}}"

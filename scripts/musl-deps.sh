#!/bin/bash
# musl-deps.sh DIR — the C libraries a static musl skiff links, built in DIR
# (`just release`; docs/benchmarks.md, "2026-12-04").
#
# Why musl at all: glibc's static start-up asks the CPU for its cache
# geometry with dozens of `cpuid`s, and in a virtual machine every `cpuid`
# exits to the hypervisor. On the benchmark machine that is ~0.4–0.7 ms of
# every skiff process (`state`, `start`, `kill`, `delete`), more than the
# rest of `state`'s work.
#
# What DIR gets:
#   seccomp/      libseccomp, static, built with musl-gcc from the Debian
#                 source of the libseccomp-dev this host has (the version the
#                 glibc build links), fetched with apt-get source through a
#                 private apt state (deb-src entries made from this host's
#                 Debian sources; the host's apt configuration is untouched);
#   include/      the headers musl-gcc does not search: the kernel's
#                 (linux-libc-dev) for libseccomp and libbpf, and libelf's and
#                 zlib's for libbpf's declarations;
#   fakelib/      empty libelf.a and libz.a. libbpf-sys (under libcgroups'
#                 cgroup-v2 devices) asks for -lelf -lz; libcgroups calls only
#                 libbpf's bpf_prog_* wrappers, and with libbpf compiled in
#                 sections (LIBBPF_SYS_EXTRA_CFLAGS) the linker drops every
#                 path into libelf and zlib. A reference left would fail the
#                 link: nothing is silently missing.
# Runs again in a second when DIR is complete. Needs root (apt), musl-tools,
# gperf, linux-libc-dev, libelf-dev, zlib1g-dev (scripts/bootstrap.sh).
set -euo pipefail
dir=${1:?usage: musl-deps.sh DIR}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
version=$(dpkg-query -W -f '${source:Version}' libseccomp-dev)
upstream=${version%%-*}
upstream=${upstream#*:}
stamp="$dir/seccomp/.version"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$version" ] && [ -f "$dir/seccomp/lib/libseccomp.a" ]; then
	exit 0
fi
for t in musl-gcc gperf; do
	command -v "$t" >/dev/null || { echo "musl-deps.sh: $t is missing (scripts/bootstrap.sh installs it)" >&2; exit 1; }
done

# Headers.
inc="$dir/include"
mkdir -p "$inc"
multiarch=$(gcc -print-multiarch)
ln -sfn /usr/include/linux "$inc/linux"
ln -sfn /usr/include/asm-generic "$inc/asm-generic"
ln -sfn "/usr/include/$multiarch/asm" "$inc/asm"
for h in libelf.h gelf.h nlist.h zlib.h zconf.h; do
	src=/usr/include/$h
	[ -e "$src" ] || src=/usr/include/$multiarch/$h
	[ -e "$src" ] || { echo "musl-deps.sh: $h not found (libelf-dev, zlib1g-dev)" >&2; exit 1; }
	ln -sfn "$src" "$inc/$h"
done

# Empty stand-ins for -lelf -lz.
mkdir -p "$dir/fakelib"
rm -f "$dir/fakelib/libelf.a" "$dir/fakelib/libz.a"
ar rc "$dir/fakelib/libelf.a"
ar rc "$dir/fakelib/libz.a"

# libseccomp's source, verified by apt against the signed Sources index.
apt_dir="$dir/apt"
rm -rf "$apt_dir" "$dir/src"
mkdir -p "$apt_dir/sources.list.d" "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$dir/src"
for f in /etc/apt/sources.list.d/*.sources; do
	[ -f "$f" ] && grep -q 'debian' "$f" || continue
	sed 's/^Types:.*/Types: deb-src/' "$f" >"$apt_dir/sources.list.d/$(basename "$f")"
done
if [ -f /etc/apt/sources.list ]; then
	grep -E '^deb .*debian' /etc/apt/sources.list | sed 's/^deb /deb-src /' >"$apt_dir/sources.list.d/main.list" || true
fi
apt_opts=(-o "Dir::Etc::SourceList=/dev/null" -o "Dir::Etc::SourceParts=$apt_dir/sources.list.d"
	-o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir/cache" -o "APT::Sandbox::User=root" -q)
apt-get "${apt_opts[@]}" update >"$apt_dir/update.log" 2>&1 || { cat "$apt_dir/update.log" >&2; exit 1; }
(cd "$dir/src" && apt-get "${apt_opts[@]}" source --download-only "libseccomp=$version" >"$apt_dir/source.log" 2>&1) ||
	{ cat "$apt_dir/source.log" >&2; exit 1; }
tar -xzf "$dir/src/libseccomp_$upstream.orig.tar.gz" -C "$dir/src"

# libseccomp, static, for musl.
build="$dir/src/libseccomp-$upstream"
(
	cd "$build"
	CC=musl-gcc CFLAGS="-O2 -I$inc" ./configure --prefix="$dir/seccomp" --enable-static --disable-shared >configure.log 2>&1 ||
		{ cat configure.log >&2; exit 1; }
	make -j"$(nproc)" >make.log 2>&1 || { tail -30 make.log >&2; exit 1; }
	make install >install.log 2>&1 || { tail -30 install.log >&2; exit 1; }
)
echo "$version" >"$stamp"
echo "musl-deps.sh: libseccomp $version for musl in $dir/seccomp"

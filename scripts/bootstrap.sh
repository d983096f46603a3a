#!/bin/sh
# bootstrap.sh — install what building and testing skiff needs (as root):
# Debian packages and `just` (not in Debian's archive: built with cargo).
set -eu
pkgs="apparmor procps man-db groff-base zsh fish busybox-static gcc libc6-dev golang-go golang-github-opencontainers-runtime-tools-dev libseccomp-dev libelf-dev zlib1g-dev pkg-config containerd runc crun hyperfine time iproute2 python3 util-linux jq docker.io podman conmon slirp4netns containernetworking-plugins iptables python3-grpcio uidmap strace criu musl-tools lld gperf linux-libc-dev"
missing=""
for p in $pkgs; do
  dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
if [ -n "$missing" ]; then
  echo "bootstrap: apt-get install$missing"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $missing >/dev/null
fi
if ! command -v just >/dev/null 2>&1; then
  echo "bootstrap: cargo install just"
  cargo install --quiet --locked just
fi
# crun refuses hybrid cgroup v1 hosts without a hugetlb hierarchy.
if [ -d /sys/fs/cgroup/unified ] && ! [ -d /sys/fs/cgroup/hugetlb ]; then
  mkdir -p /sys/fs/cgroup/hugetlb 2>/dev/null && mount -t cgroup -o hugetlb cgroup /sys/fs/cgroup/hugetlb 2>/dev/null || true
fi
# Rootless networking (slirp4netns, pasta) opens /dev/net/tun as the user:
# Debian's udev makes it 0666; this machine's /dev has it 0600.
if [ -c /dev/net/tun ] && [ "$(stat -c %a /dev/net/tun)" != 666 ]; then
  chmod 0666 /dev/net/tun
fi

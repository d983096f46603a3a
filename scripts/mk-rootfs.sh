#!/bin/sh
# mk-rootfs.sh DIR — build a minimal busybox root filesystem in DIR.
# Used by the demo, the integration tests, the conformance suite and the
# benchmarks, so every consumer runs on the same image.
set -eu
dir=${1:?usage: mk-rootfs.sh DIR}
bb=$(command -v busybox || true)
[ -n "$bb" ] && file -L "$bb" 2>/dev/null | grep -q 'statically linked' || bb=/bin/busybox
[ -x "$bb" ] || { echo "mk-rootfs.sh: busybox-static is not installed (apt-get install busybox-static)" >&2; exit 1; }
mkdir -p "$dir"/bin "$dir"/sbin "$dir"/usr/bin "$dir"/usr/sbin "$dir"/etc "$dir"/proc "$dir"/sys \
         "$dir"/dev "$dir"/tmp "$dir"/root "$dir"/var "$dir"/run "$dir"/home
cp "$bb" "$dir"/bin/busybox
for a in $("$dir"/bin/busybox --list); do
  [ "$a" = busybox ] || ln -sf busybox "$dir/bin/$a"
done
chmod 1777 "$dir"/tmp
cat > "$dir"/etc/passwd <<'P'
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/sh
P
cat > "$dir"/etc/group <<'G'
root:x:0:
daemon:x:1:
wheel:x:10:
nogroup:x:65534:
G
echo skiff-rootfs > "$dir"/etc/hostname
: > "$dir"/etc/hosts
: > "$dir"/etc/resolv.conf

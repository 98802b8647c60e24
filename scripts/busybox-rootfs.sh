#!/bin/sh
# Builds the default busybox image's root filesystem as a tar, from Debian's busybox-static.
# Usage: scripts/busybox-rootfs.sh OUTPUT.tar
set -eu
output=${1:?usage: $0 OUTPUT.tar}
# busybox-static installs a statically linked /bin/busybox, which needs nothing else in the image.
busybox=/bin/busybox
[ -x "$busybox" ] || { echo "$busybox not found: install busybox-static" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root="$work/rootfs"
mkdir -p "$root/bin" "$root/sbin" "$root/usr/bin" "$root/usr/sbin" "$root/etc" "$root/root" \
    "$root/tmp" "$root/var/tmp" "$root/home" "$root/dev" "$root/proc" "$root/sys"
chmod 1777 "$root/tmp" "$root/var/tmp"
cp "$busybox" "$root/bin/busybox"
# One link per applet, at the path busybox itself reports (bin/ls, usr/bin/env, ...).
"$root/bin/busybox" --list-full | while read -r applet; do
    [ -e "$root/$applet" ] || ln -s /bin/busybox "$root/$applet"
done
cat > "$root/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
PASSWD
cat > "$root/etc/group" <<'GROUP'
root:x:0:
daemon:x:1:
tty:x:5:
nogroup:x:65534:
GROUP
# Fixed times and owners make the tar, and so the layer digest, the same on every machine.
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime='2024-01-01 00:00:00Z' \
    -C "$root" -cf "$output" .

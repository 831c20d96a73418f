#!/usr/bin/env bash
# A container launch by hand, for the demo stream: new namespaces, a tmpfs root with the
# host's /usr bind-mounted read-only, proc, pivot_root, a command, an exit code. Every step
# shows up in `tracer watch` as an exec, mount, pivot_root, umount, fork, rename or exit.
set -euo pipefail
root=$(mktemp -d /tmp/tracer-demo.XXXXXX)
trap 'rmdir "$root"' EXIT

unshare --mount --uts --ipc --pid --fork --propagation private bash -c '
  set -eu
  root=$1
  mount -t tmpfs -o size=8m,mode=0755 demo-rootfs "$root"
  mkdir -p "$root/usr" "$root/proc" "$root/old" "$root/tmp"
  mount --bind /usr "$root/usr"
  mount -o remount,bind,ro "$root/usr"
  for l in bin lib lib64 sbin; do ln -s "usr/$l" "$root/$l"; done
  cd "$root"
  pivot_root . old
  mount -t proc proc /proc
  umount -l /old
  hostname demo-container
  exec /bin/sh -c "echo hello from \$(hostname), pid \$\$; exit 3"
' demo "$root" || echo "demo container exited with $?"

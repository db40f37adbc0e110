#!/usr/bin/env bash
# Writes a Docker build context (DIR/Dockerfile + DIR/rootfs) for a small image made from this machine's own
# static busybox and git, so that tests, the benchmark and the demo need no container registry.
#   scripts/make-image-context.sh DIR
set -euo pipefail
dir=${1:?usage: $0 DIR}
busybox=/bin/busybox
if ! [ -x "$busybox" ] || [[ "$(ldd "$busybox" 2>&1 || true)" != *"not a dynamic"* ]]; then
  echo "make-image-context: needs a static busybox at $busybox (Debian: apt-get install busybox-static)" >&2; exit 1
fi
git=$(command -v git)
rm -rf "$dir/rootfs"
mkdir -p "$dir/rootfs/bin" "$dir/rootfs/usr/bin" "$dir/rootfs/etc" "$dir/rootfs/tmp" "$dir/rootfs/home"
chmod 1777 "$dir/rootfs/tmp"
cp "$busybox" "$dir/rootfs/bin/busybox"
cp "$git" "$dir/rootfs/usr/bin/git"
# git's shared libraries and the loader, at the paths ldd reports.
ldd "$git" | awk '/=> \//{print $3} /^[ \t]*\/lib/{print $1}' | while read -r lib; do
  mkdir -p "$dir/rootfs$(dirname "$lib")"
  cp -L "$lib" "$dir/rootfs$lib"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/sh\n' >"$dir/rootfs/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$dir/rootfs/etc/group"
cat >"$dir/Dockerfile" <<'DOCKERFILE'
FROM scratch
COPY rootfs/ /
RUN ["/bin/busybox", "--install", "-s", "/bin"]
ENV PATH=/usr/bin:/bin
CMD ["sh"]
DOCKERFILE

#!/usr/bin/env bash
# images/build.sh OUTDIR: builds berth's own images as OCI image layouts, no Docker Hub needed:
#   OUTDIR/hello-world  the static `hello` program (images/hello) as /hello, CMD ["/hello"]
#   OUTDIR/busybox      Debian's busybox-static with its applet links, CMD ["sh"]
# Push them with e.g. `skopeo copy --dest-tls-verify=false oci:OUTDIR/busybox:latest docker://127.0.0.1:5000/busybox:latest`.
set -euo pipefail
OUT=${1:?usage: images/build.sh OUTDIR}
cd "$(dirname "$0")/.."
command -v busybox >/dev/null || { echo "images/build.sh: busybox is missing (apt-get install busybox-static)" >&2; exit 1; }
cargo rustc -q -p berth-hello --release -- -C target-feature=+crt-static
cargo build -q -p berth-image --example oci_layout
TARGET=${CARGO_TARGET_DIR:-target}
LAYOUT=$TARGET/debug/examples/oci_layout
# Created at the commit's time: the same commit builds the same images (same digests).
BERTH_IMAGE_CREATED=$(date -u -d "@$(git log -1 --format=%ct 2>/dev/null || echo 0)" +%Y-%m-%dT%H:%M:%SZ)
export BERTH_IMAGE_CREATED
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
rm -rf "$OUT/hello-world" "$OUT/busybox"
mkdir -p "$OUT"

mkdir -p "$WORK/hello"
cp "$TARGET/release/hello" "$WORK/hello/hello"
"$LAYOUT" "$WORK/hello" "$OUT/hello-world" latest /hello

mkdir -p "$WORK/busybox/bin" "$WORK/busybox/etc" "$WORK/busybox/tmp" "$WORK/busybox/root"
cp "$(command -v busybox)" "$WORK/busybox/bin/busybox"
for applet in $("$WORK/busybox/bin/busybox" --list); do
  [ "$applet" = busybox ] || ln -sf busybox "$WORK/busybox/bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' > "$WORK/busybox/etc/passwd"
printf 'root:x:0:\nnobody:x:65534:\n' > "$WORK/busybox/etc/group"
chmod 1777 "$WORK/busybox/tmp"
"$LAYOUT" "$WORK/busybox" "$OUT/busybox" latest sh
echo "images in $OUT: hello-world busybox"

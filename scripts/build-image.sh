#!/usr/bin/env bash
# The tracer's OCI image, built offline: the binary and the libraries it links, on an empty
# root (FROM scratch), imported into Docker. `cargo xtask image` runs it on the release build.
#   scripts/build-image.sh BINARY TAG [SAVE.tar]
set -euo pipefail
bin=$1
tag=$2
save=${3:-}
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
chmod 0755 "$root"
install -D -m 0755 "$bin" "$root/usr/local/bin/tracer"
# Every library it links, the dynamic loader among them, at the path it is looked up by.
for lib in $(ldd "$bin" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }'); do
    # The loader is exec'd as the binary's interpreter: it needs its execute bit.
    install -D -m 0755 "$lib" "$root$lib"
done
# Mount points the runtime fills, and where a document is written.
mkdir -p "$root/proc" "$root/sys" "$root/dev" "$root/tmp" "$root/run" "$root/var/lib/tracer"
tar -C "$root" -c . | docker import \
    --change 'ENTRYPOINT ["/usr/local/bin/tracer"]' \
    --change 'CMD ["watch"]' \
    --change 'ENV OTEL_SERVICE_NAME=tracer' \
    - "$tag" >/dev/null
if [ -n "$save" ]; then
    docker save -o "$save" "$tag"
fi
echo "$tag"

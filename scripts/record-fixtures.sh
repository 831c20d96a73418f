#!/bin/bash
# Records the traces in fixtures/ on this machine: each one is `tracer watch --json` around one
# real container lifecycle. Needs root, a release build (cargo build --release), and the
# Debian packages docker.io, runc, crun, podman, busybox-static.
#
#   scripts/record-fixtures.sh [NAME...]     (default: all of them)
#
# Names: docker-run docker-exec runc crun podman tracer-run concurrent runs
set -euo pipefail
cd "$(dirname "$0")/.."
TRACER=${TRACER:-$PWD/target/release/tracer}
OUT=$PWD/fixtures
WORK=${WORK:-/tmp/tracer-fixtures}
IMAGE=busybox-static
mkdir -p "$WORK"

rootfs() {
    [ -x "$WORK/rootfs/bin/busybox" ] && return
    mkdir -p "$WORK/rootfs/bin"
    cp /bin/busybox "$WORK/rootfs/bin/busybox"
    chroot "$WORK/rootfs" /bin/busybox --install -s /bin
    mkdir -p "$WORK/rootfs"/{proc,sys,dev,etc,tmp}
    tar -C "$WORK/rootfs" -cf "$WORK/rootfs.tar" .
}

bundle() {
    rootfs
    [ -f "$WORK/bundle/config.json" ] && return
    mkdir -p "$WORK/bundle"
    cp -a "$WORK/rootfs" "$WORK/bundle/rootfs"
    (cd "$WORK/bundle" && runc spec)
    # Not a terminal, and a command that prints and exits.
    sed -i 's/"terminal": true/"terminal": false/; s/"sh"$/"echo", "hi"/' "$WORK/bundle/config.json"
}

docker_up() {
    docker info >/dev/null 2>&1 || {
        pgrep -x containerd >/dev/null || (containerd >"$WORK/containerd.log" 2>&1 &)
        sleep 2
        (dockerd --containerd=/run/containerd/containerd.sock >"$WORK/dockerd.log" 2>&1 &)
        for _ in $(seq 50); do docker info >/dev/null 2>&1 && break; sleep 0.2; done
    }
    rootfs
    docker image inspect $IMAGE >/dev/null 2>&1 || docker import "$WORK/rootfs.tar" $IMAGE >/dev/null
}

# record NAME COMMAND...: traces COMMAND into fixtures/NAME.json.
record() {
    local name=$1; shift
    "$TRACER" watch -q --no-table --json "$OUT/$name.json" 2>"$WORK/$name.err" &
    local watch=$!
    until grep -q "ready:" "$WORK/$name.err"; do sleep 0.05; done
    echo "recording $name: $*"
    "$@"
    sleep 0.5
    kill -INT $watch
    wait $watch
    echo "  $(wc -c <"$OUT/$name.json") bytes"
}

docker_run() { docker_up; record docker-run docker run --rm $IMAGE echo hi; }

docker_exec() {
    docker_up
    record docker-exec sh -c "id=\$(docker run -d --name fx-exec $IMAGE sleep 60)
        docker exec fx-exec echo inside
        docker stop -t 1 fx-exec >/dev/null
        docker rm fx-exec >/dev/null"
}

runc_run() { bundle; record runc runc run --bundle "$WORK/bundle" fx-runc; }

crun_run() {
    bundle
    # crun refuses this host's hybrid cgroup layout unless cgroup2's controller list is
    # hidden (see the environment notes); the bind mount stays in a private mount namespace.
    : >"$WORK/empty"
    record crun unshare -m --propagation private sh -c "
        mount --bind $WORK/empty /sys/fs/cgroup/unified/cgroup.controllers
        crun run --bundle $WORK/bundle fx-crun"
}

podman_run() {
    rootfs
    podman image exists localhost/$IMAGE || podman import "$WORK/rootfs.tar" $IMAGE >/dev/null
    record podman podman run --rm --runtime runc --ulimit nofile=20000:20000 \
        --ulimit nproc=32768:32768 localhost/$IMAGE echo hi
}

tracer_run() { record tracer-run "$TRACER" run -q --name fx-tracer -- echo hi; }

# Four docker containers and two plain runc ones started at once; what Docker and ip(8)
# say of each is kept beside the trace, to check every fact against.
concurrent() {
    docker_up
    bundle
    # The runc containers run `sleep 2; exit 7`.
    mkdir -p "$WORK/par-bundle"
    [ -d "$WORK/par-bundle/rootfs" ] || cp -a "$WORK/bundle/rootfs" "$WORK/par-bundle/rootfs"
    sed 's/"echo", "hi"/"sh", "-c", "sleep 2; exit 7"/' "$WORK/bundle/config.json" \
        >"$WORK/par-bundle/config.json"
    record concurrent scripts/concurrent-workload.sh "$OUT/concurrent.truth.json" $IMAGE \
        "$WORK/par-bundle"
}

# 30 `tracer run` and 30 `runc run`, one after the other: for phase statistics.
runs() {
    bundle
    record runs sh -c "for i in \$(seq 30); do
            $TRACER run -q --net none -- true
            runc run --bundle $WORK/bundle fx-runs-\$i >/dev/null
        done"
}

for name in "${@:-docker-run docker-exec runc crun podman tracer-run concurrent runs}"; do
    for n in $name; do
        case $n in
            docker-run) docker_run ;;
            docker-exec) docker_exec ;;
            runc) runc_run ;;
            crun) crun_run ;;
            podman) podman_run ;;
            tracer-run) tracer_run ;;
            concurrent) concurrent ;;
            runs) runs ;;
            *) echo "unknown fixture $n" >&2; exit 2 ;;
        esac
    done
done

#!/bin/bash
# Starts containers at the same instant, as Compose or a CI runner does: 4 `docker run -d`
# (each `sleep 2; exit N`) and 2 plain `runc run` of the same bundle, then writes what
# Docker and ip(8) say about each (the ground truth the trace is checked against) as JSON
# to $1.   scripts/concurrent-workload.sh TRUTH.json IMAGE BUNDLE
set -euo pipefail
truth=$1 image=$2 bundle=$3
for i in 1 2 3 4; do docker rm -f fx-par-$i >/dev/null 2>&1 || true; done
for i in 1 2 3 4; do
    docker run -d --name fx-par-$i "$image" sh -c "sleep 2; exit $i" >/dev/null &
done
for i in 1 2; do
    runc run --bundle "$bundle" fx-par-runc-$i >/dev/null 2>&1 &
done
sleep 1
{
    echo "["
    for i in 1 2 3 4; do
        id=$(docker inspect -f '{{.Id}}' fx-par-$i)
        merged=$(docker inspect -f '{{.GraphDriver.Data.MergedDir}}' fx-par-$i)
        pid=$(docker inspect -f '{{.State.Pid}}' fx-par-$i)
        # eth0@ifN inside: N is the host end's index.
        iflink=$(nsenter -t "$pid" -n ip -o link show eth0 | sed -n 's/^[0-9]*: eth0@if\([0-9]*\):.*/\1/p')
        veth=$(ip -o link | sed -n "s/^$iflink: \([^@:]*\).*/\1/p")
        [ "$i" = 1 ] || echo ","
        echo "{\"id\":\"$id\",\"exit_code\":$i,\"rootfs\":\"$merged\",\"veth\":\"$veth\"}"
    done
    echo "]"
} >"$truth"
wait
for i in 1 2 3 4; do docker wait fx-par-$i >/dev/null; docker rm fx-par-$i >/dev/null; done

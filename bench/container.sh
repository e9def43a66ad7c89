#!/usr/bin/env bash
# Container start-to-exit: /bin/true in new user+mnt+pid+net+uts+ipc namespaces with a tmpfs
# root, read-only /usr (plus the usr-merged symlinks) and /proc — the same layout four ways:
#   ctrsh bench/true.rhai               the recipe (one process, in-process mounts)
#   bwrap --unshare-all ...             bubblewrap, what sandboxes use today
#   unshare --root + --mount-proc       util-linux, the nearest one-command equivalent
#   unshare + sh/mount/chroot glue      the hand-written script of the seeds
#   ctr0                                ../shared/bench/src/ctr0.c, the C floor
# Medians from hyperfine, then peak RSS (GNU time, max of 20 runs). Not a test.
# Usage: sudo bench/container.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-300}
. bench/build.sh
work=$(mktemp -d /tmp/ctrsh-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
cc -O2 -o "$work/ctr0" ../shared/bench/src/ctr0.c

# The unshare --root variant needs a prepared root directory (it cannot build one).
mkdir -p "$work/root"/{usr,proc}
for d in bin sbin lib lib64; do ln -s "usr/$d" "$work/root/$d"; done

cat > "$work/glue.sh" <<GLUE
#!/bin/sh
# inside: unshare -Urmpfniu sh glue.sh
set -e
r=\$(mktemp -d)
mount -t tmpfs tmpfs "\$r"
mkdir "\$r/usr" "\$r/proc"
mount --rbind /usr "\$r/usr"
mount -o remount,bind,ro "\$r/usr"
for d in bin sbin lib lib64; do ln -s "usr/\$d" "\$r/\$d"; done
mount -t proc proc "\$r/proc"
exec chroot "\$r" /bin/true
GLUE

bwrap_cmd="bwrap --unshare-all --ro-bind /usr /usr --symlink usr/bin /bin --symlink usr/sbin /sbin --symlink usr/lib /lib --symlink usr/lib64 /lib64 --proc /proc /bin/true"
unshare_root="unshare --user --map-root-user --mount --pid --net --uts --ipc --fork --mount-proc --root=$work/root /bin/true"
# --root needs /usr inside: bind it first, in a private mount namespace of the benchmark.
unshare_root_cmd="unshare --mount --propagation private sh -c 'mount --rbind -o ro /usr $work/root/usr && exec $unshare_root'"
glue_cmd="unshare --user --map-root-user --mount --pid --net --uts --ipc --fork sh $work/glue.sh"

hyperfine -N --warmup 20 --runs "$runs" --export-json "$work/h.json" \
    -n ctrsh "$ctrsh bench/true.rhai" \
    -n bwrap "$bwrap_cmd" \
    -n "unshare --root" "sh -c \"$unshare_root_cmd\"" \
    -n "unshare + glue" "$glue_cmd" \
    -n ctr0 "$work/ctr0 -- /bin/true" >/dev/null

python3 - "$work/h.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["results"]
floor = next(x for x in r if x["command"] == "ctr0")["median"]
bw = next(x for x in r if x["command"] == "bwrap")["median"]
print(f"{'':18} {'median':>9} {'vs ctr0':>8} {'vs bwrap':>9}")
for x in r:
    m = x["median"]
    print(f"{x['command']:18} {m*1000:7.2f}ms {m/floor:7.2f}x {m/bw:8.2f}x")
PY

echo
echo "peak RSS (max of 20 runs, KiB; includes the payload /bin/true)"
rss() { local max=0; for _ in $(seq 20); do
    v=$( { /usr/bin/time -f %M "$@" >/dev/null; } 2>&1 | tail -1 ); [ "$v" -gt "$max" ] && max=$v; done; echo "$max"; }
printf '%-18s %s\n' ctrsh "$(rss "$ctrsh" bench/true.rhai)"
printf '%-18s %s\n' bwrap "$(rss $bwrap_cmd)"
printf '%-18s %s\n' "unshare + glue" "$(rss $glue_cmd)"
printf '%-18s %s\n' ctr0 "$(rss "$work/ctr0" -- /bin/true)"

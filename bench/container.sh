#!/usr/bin/env bash
# Container start-to-exit: /bin/true in new user+mnt+pid+net+uts+ipc namespaces with a tmpfs
# root, read-only /usr (plus the usr-merged symlinks) and /proc — the same layout four ways:
#   ctrsh bench/true.rhai               the recipe (one process, in-process mounts)
#   ctrsh bench/true-pid1.rhai          the same with init: false (the payload is pid 1)
#   bwrap --unshare-all ...             bubblewrap, what sandboxes use today
#   unshare --root + --mount-proc       util-linux, the nearest one-command equivalent
#   unshare + sh/mount/chroot glue      the hand-written script of the seeds
#   ctr0                                ../shared/bench/src/ctr0.c, the C floor
# Medians from hyperfine (interleaved rounds, below), then peak RSS (GNU time, max of 20
# runs). Not a test.
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

# Rounds, each command in turn, the order rotated every round: a network namespace is
# freed by a kernel worker after its last process exits, so one command's runs leave work
# behind that slows whichever runs next. Interleaving spreads that evenly; one long run per
# command let the order decide the ratios (seen: ctr0 1.03x bwrap when it followed the glue).
names=(ctrsh "ctrsh init:false" bwrap "unshare --root" "unshare + glue" ctr0)
cmds=("$ctrsh bench/true.rhai" "$ctrsh bench/true-pid1.rhai" "$bwrap_cmd" "sh -c \"$unshare_root_cmd\"" "$glue_cmd" "$work/ctr0 -- /bin/true")
rounds=10
per=$(( (runs + rounds - 1) / rounds ))
for ((r = 0; r < rounds; r++)); do
    for ((i = 0; i < ${#names[@]}; i++)); do
        k=$(( (i + r) % ${#names[@]} ))
        hyperfine -N --warmup 3 --runs "$per" --export-json "$work/h-$r-$k.json" \
            -n "${names[$k]}" "${cmds[$k]}" >/dev/null
    done
done

python3 - "$work" "${names[@]}" <<'PY'
import glob, json, statistics, sys
work, names = sys.argv[1], sys.argv[2:]
times = {n: [] for n in names}
for f in glob.glob(f"{work}/h-*.json"):
    for x in json.load(open(f))["results"]:
        times[x["command"]] += x["times"]
med = {n: statistics.median(t) for n, t in times.items()}
print(f"{'':18} {'median':>9} {'vs ctr0':>8} {'vs bwrap':>9}   ({len(times['ctr0'])} runs each, interleaved)")
for n in names:
    m = med[n]
    print(f"{n:18} {m*1000:7.2f}ms {m/med['ctr0']:7.2f}x {m/med['bwrap']:8.2f}x")
PY

echo
echo "peak RSS (max of 20 runs, KiB; includes the payload /bin/true)"
rss() { local max=0; for _ in $(seq 20); do
    v=$( { /usr/bin/time -f %M "$@" >/dev/null; } 2>&1 | tail -1 ); [ "$v" -gt "$max" ] && max=$v; done; echo "$max"; }
printf '%-18s %s\n' ctrsh "$(rss "$ctrsh" bench/true.rhai)"
printf '%-18s %s\n' bwrap "$(rss $bwrap_cmd)"
printf '%-18s %s\n' "unshare + glue" "$(rss $glue_cmd)"
printf '%-18s %s\n' ctr0 "$(rss "$work/ctr0" -- /bin/true)"

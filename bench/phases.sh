#!/usr/bin/env bash
# Where a container start's time goes, phase by phase: ctrsh bench/true.rhai, the same with
# init: false, and ../shared/bench/src/ctr0.c (the C floor), traced with kernel tracepoints
# (process exec/fork/exit and the clone/execve/exit_group syscalls, recorded system-wide so
# that no per-task perf state is copied at fork). Then the container work alone: RUNS
# containers started by one ctrsh in a loop (bench/loop.rhai), beside ctr0 started RUNS
# times from bash minus ctr0's own start (ctr0 without arguments: exec, usage message, exit).
# Tracing adds a few microseconds per event: compare the columns, not the totals, with
# bench/container.sh. Not a test. Needs perf (Debian: linux-perf). Usage: sudo bench/phases.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-60}
command -v perf >/dev/null || { echo "phases.sh: perf is needed (apt-get install linux-perf)" >&2; exit 1; }
. bench/build.sh
work=$(mktemp -d /tmp/ctrsh-phases.XXXXXX)
trap 'rm -rf "$work"' EXIT
cc -O2 -o "$work/ctr0" ../shared/bench/src/ctr0.c

events=(sched:sched_process_exec sched:sched_process_exit
        syscalls:sys_enter_clone3 syscalls:sys_exit_clone3
        syscalls:sys_enter_clone syscalls:sys_exit_clone
        syscalls:sys_enter_exit_group)
ev_args=()
for e in "${events[@]}"; do ev_args+=(-e "$e"); done

names=(ctrsh "ctrsh init:false" ctr0)
cmds=("$ctrsh bench/true.rhai" "$ctrsh bench/true-pid1.rhai" "$work/ctr0 -- /bin/true")
for i in "${!names[@]}"; do
    perf record -q -a "${ev_args[@]}" -o "$work/$i.data" -- \
        sh -c "for i in \$(seq $runs); do ${cmds[$i]} || exit 1; done" >/dev/null 2>&1
    perf script -i "$work/$i.data" -F comm,pid,time,event,trace > "$work/$i.txt" 2>/dev/null
done

python3 - "$work" "$ctrsh" "$work/ctr0" "${names[@]}" <<'PY'
import re, statistics, sys
work, tops, names = sys.argv[1], sys.argv[2:4], sys.argv[4:]
line = re.compile(r'\s*(\S+)\s+(\d+)\s+([\d.]+):\s+(\S+):\s*(.*)')
phases = ["start (exec to clone)", "clone (new namespaces)", "setup (to payload exec)",
          "payload (/bin/true)", "mini-init exit", "teardown (to exit_group)", "total"]

def runs_of(path, top):
    runs, cur = [], None
    for l in open(path):
        m = line.match(l)
        if not m:
            continue
        comm, pid, t, ev, tr = m.groups()
        pid, t = int(pid), float(t) * 1000
        if ev == "sched:sched_process_exec" and f"filename={top} " in tr + " ":
            cur = {"top": pid, "exec": t, "ev": []}
            runs.append(cur)
        elif cur:
            cur["ev"].append((t, pid, ev, tr))
    return runs

def phases_of(r):
    top, ev = r["top"], r["ev"]
    def first(p):
        return next((e[0] for e in ev if p(e)), None)
    clone_in = first(lambda e: e[1] == top and e[2].startswith("syscalls:sys_enter_clone"))
    clone_out = first(lambda e: e[1] == top and e[2].startswith("syscalls:sys_exit_clone"))
    p_exec = first(lambda e: e[2] == "sched:sched_process_exec" and "/bin/true" in e[3])
    p_pid = next((e[1] for e in ev if e[2] == "sched:sched_process_exec" and "/bin/true" in e[3]), None)
    p_exit = first(lambda e: e[1] == p_pid and e[2] == "syscalls:sys_enter_exit_group")
    exits = [e[0] for e in ev if e[2] == "sched:sched_process_exit" and e[1] != top]
    top_exit = first(lambda e: e[1] == top and e[2] == "syscalls:sys_enter_exit_group")
    if None in (clone_in, clone_out, p_exec, p_exit, top_exit) or not exits:
        return None
    last = max(exits)
    return [clone_in - r["exec"], clone_out - clone_in, p_exec - clone_out,
            p_exit - p_exec, last - p_exit, top_exit - last, top_exit - r["exec"]]

cols = []
for i, n in enumerate(names):
    top = tops[0] if n.startswith("ctrsh") else tops[1]
    ph = [p for p in map(phases_of, runs_of(f"{work}/{i}.txt", top)) if p]
    cols.append([statistics.median(x[k] for x in ph) for k in range(len(phases))] if ph else None)
print(f"{'median ms, traced':26}" + "".join(f"{n:>18}" for n in names) + f"{'ctrsh - ctr0':>15}")
for k, p in enumerate(phases):
    row = "".join(f"{c[k]:18.3f}" if c else f"{'-':>18}" for c in cols)
    d = f"{cols[0][k] - cols[-1][k]:+15.3f}" if cols[0] and cols[-1] else ""
    print(f"{p:26}{row}{d}")
PY

# The container work alone, without any process start: one ctrsh, RUNS containers.
echo
loop() { local s e; s=$(date +%s%N); "$@" >/dev/null 2>&1; e=$(date +%s%N); echo $(( (e - s) / runs / 1000 )); }
c_loop=$(loop "$ctrsh" bench/loop.rhai "$runs")
c0_all=$(loop sh -c "for i in \$(seq $runs); do $work/ctr0 -- /bin/true; done")
c0_start=$(loop sh -c "for i in \$(seq $runs); do $work/ctr0 2>/dev/null; done")
echo "container work alone, untraced, us per container ($runs each):"
echo "  ctrsh, $runs containers from one recipe:  $c_loop"
echo "  ctr0 from sh, minus ctr0's own start:      $((c0_all - c0_start))   ($c0_all - $c0_start)"

#!/bin/bash
# bench/net.sh — networking benchmark: the linear chain and the star of N network namespaces
# (N = 10 50 100 by default), built and torn down by
#   nlnet    ../shared/bench/src/nlnet.c, one process on raw rtnetlink, direct mode (the floor)
#   ctrsh    bench/net/{linear,star}.rhai up|down (same names, addresses, routes; named netns)
#   bash+ip  ../shared/bench/net/{linear,star}.sh classic (one ip process per step)
# each timed with hyperfine (setup: `up` after a `down`; teardown: `down` after an `up`), a
# ping check (verify.sh) of what every tool built, and the recipe form `ctrsh X.rhai run N`
# (anonymous namespaces, ping inside, torn down when the recipe ends) with its own timings.
#
# usage: sudo bench/net.sh [N ...]        env: RUNS (10), BASH_RUNS (3), SHARED (../shared/bench)
# Needs root, hyperfine, gcc, iproute2, iputils. Leaves no namespace behind.
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${SHARED:-$(cd ../shared/bench 2>/dev/null && pwd || echo /work/shared/bench)}
RUNS=${RUNS:-10}
BASH_RUNS=${BASH_RUNS:-3}
SIZES=("$@")
[[ ${#SIZES[@]} -gt 0 ]] || SIZES=(10 50 100)
W=$(mktemp -d /tmp/ctrsh-bench-net.XXXXXX)
trap 'rm -rf "$W"' EXIT

[[ $(id -u) == 0 ]] || { echo "bench/net.sh: run as root" >&2; exit 2; }
. bench/build.sh
CTRSH=$ctrsh
gcc -O2 -o "$W/nlnet" "$SHARED/src/nlnet.c"
# nlnet needs /run/netns to exist as a shared mount, as `ip netns add` leaves it.
if ! mountpoint -q /run/netns; then ip netns add "ctrsh-bench-$$" && ip netns del "ctrsh-bench-$$"; fi

cmd() { # op tool topo N tag: the command line (timed without a wrapping shell)
  case $2 in
    nlnet) echo "$W/nlnet $3 $1 $4 $5" ;;
    ctrsh) echo "$CTRSH bench/net/$3.rhai $1 $4 $5" ;;
    bash)  echo "bash $SHARED/net/$3.sh $1 $4 $5 classic" ;;
  esac
}
up()   { $(cmd up "$@"); }
down() { $(cmd down "$@") >/dev/null 2>&1 || true; }

results=$W/results.txt
: > "$results"
for topo in linear star; do
  for n in "${SIZES[@]}"; do
    for tool in nlnet ctrsh bash; do
      tag=${tool:0:1}$$; tag=${tag:0:4}
      runs=$RUNS; [[ $tool == bash ]] && runs=$BASH_RUNS
      down $tool $topo $n $tag
      hyperfine -N --runs "$runs" --export-json "$W/setup.json" \
        --prepare "bash -c '$(cmd down $tool $topo $n $tag) >/dev/null 2>&1; sleep 0.3'" \
        --cleanup "bash -c '$(cmd down $tool $topo $n $tag) >/dev/null 2>&1'" \
        "$(cmd up $tool $topo $n $tag)" >/dev/null
      hyperfine -N --runs "$runs" --export-json "$W/down.json" \
        --prepare "bash -c '$(cmd down $tool $topo $n $tag) >/dev/null 2>&1; $(cmd up $tool $topo $n $tag) && sleep 0.3'" \
        "$(cmd down $tool $topo $n $tag)" >/dev/null
      up $tool $topo $n $tag
      if bash "$SHARED/net/verify.sh" $topo $n $tag; then ping=ok; else ping=FAILED; fi
      down $tool $topo $n $tag
      python3 - "$W/setup.json" "$W/down.json" $topo $n $tool $ping >> "$results" <<'EOF'
import json, sys
med = lambda f: json.load(open(f))["results"][0]["median"]
print(sys.argv[3], sys.argv[4], sys.argv[5], med(sys.argv[1]), med(sys.argv[2]), sys.argv[6])
EOF
    done
    # The recipe form: anonymous namespaces, ping inside, teardown when the recipe ends.
    for i in $(seq 5); do "$CTRSH" "bench/net/$topo.rhai" run $n; sleep 0.3; done > "$W/run.txt"
    python3 - "$W/run.txt" $topo $n >> "$results" <<'EOF'
import re, statistics, sys
rows = [re.findall(r"([a-z]+) ([0-9.e-]+) s", l) for l in open(sys.argv[1])]
ok = all("ping ok" in l for l in open(sys.argv[1]))
med = lambda k: statistics.median(float(dict(r)[k]) for r in rows)
print(sys.argv[2], sys.argv[3], "ctrsh-run", med("setup"), med("teardown"), "ok" if ok else "FAILED")
EOF
  done
done

python3 - "$results" <<'EOF'
import sys
rows = [l.split() for l in open(sys.argv[1])]
t = {(r[0], r[1], r[2]): (float(r[3]), float(r[4]), r[5]) for r in rows}
print("| topology | N | tool | setup (median) | teardown (median) | setup / nlnet | teardown / nlnet | bash+ip / ctrsh setup | ping |")
print("|---|---|---|---|---|---|---|---|---|")
for (topo, n, tool), (s, d, ping) in t.items():
    ns, nd, _ = t[(topo, n, "nlnet")]
    vs_bash = ""
    if tool in ("ctrsh", "ctrsh-run"):
        vs_bash = f"{t[(topo, n, 'bash')][0] / s:.0f}x"
    print(f"| {topo} | {n} | {tool} | {s*1000:.1f} ms | {d*1000:.1f} ms | {s/ns:.2f} | {d/nd:.2f} | {vs_bash} | {ping} |")
print("\nctrsh-run: `ctrsh bench/net/X.rhai run N` (anonymous netns, setup/teardown timed inside")
print("the recipe; teardown = cleanup() of everything it owns, the namespaces then die with")
print("their links in one kernel batch). Others: hyperfine medians of the whole process.")
EOF

#!/usr/bin/env bash
# Start-up cost of the interpreter: `ctrsh -e 1` beside other interpreters a recipe might be
# written in today. Not a test: prints hyperfine's table. Usage: bench/startup.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/build.sh
command -v hyperfine >/dev/null || { echo "hyperfine is needed: apt-get install hyperfine" >&2; exit 1; }
hyperfine -N --warmup 20 --runs 300 \
    "$ctrsh -e 1" \
    "bash -c true" \
    "python3 -c 1" \
    "unshare --help" \
    --export-markdown /tmp/ctrsh-startup.md
cat /tmp/ctrsh-startup.md

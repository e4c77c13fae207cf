#!/usr/bin/env bash
# Two builds of Tollgate against each other, interleaved, on one noisy machine: runs
# loadtest/compare.sh with binary A then B, then B then A, … (the order alternates, so neither
# build always runs first) for ROUNDS rounds each, and prints every
# run's Tollgate rows (requests/s, p50/p99, proxy CPU, requests per proxy CPU-second) with nginx's
# from the same run beside them, then the median per build.
#
#   loadtest/ab.sh OLD_BINARY NEW_BINARY
#   ROUNDS=4 DURATION=5s MODES=json CONNS="1 16" loadtest/ab.sh target/old/tollgate target/release/tollgate
#
# A_ENV / B_ENV add environment settings to one side, so one binary can be compared with itself
# under two configurations, e.g. the demo's classifier off (A) and on (B):
#   A_ENV=TG_CLASSIFIER=off B_ENV=TG_CLASSIFIER=on loadtest/ab.sh target/release/tollgate target/release/tollgate
#
# Build the two binaries first (e.g. `git worktree add` the old commit and `cargo build --release`
# in it). Loopback only, every run bounded by DURATION.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -eq 2 ] || { echo "usage: $0 BINARY_A BINARY_B" >&2; exit 2; }
A=$1 B=$2
ROUNDS=${ROUNDS:-3}
export DURATION=${DURATION:-5s} MODES=${MODES:-json} CONNS=${CONNS:-1 16}
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
for round in $(seq 1 "$ROUNDS"); do
  order="A B"; [ $((round % 2)) -eq 0 ] && order="B A"
  for side in $order; do
    bin=$A; settings=${A_ENV:-}
    [ $side = B ] && bin=$B settings=${B_ENV:-}
    echo "round $round, build $side ($bin${settings:+, $settings})" >&2
    env $settings TOLLGATE_BIN="$bin" loadtest/compare.sh > "$OUT/$side-$round.txt"
  done
done
python3 - "$OUT" "$ROUNDS" <<'PY'
import os, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
rows = []   # (side, round, target, mode, conns, req/s, p50, p99, cpu, req/cpu-s)
for side in "AB":
    for r in range(1, rounds + 1):
        for line in open(os.path.join(out, f"{side}-{r}.txt")):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if len(cells) == 10 and cells[0] in ("tollgate", "nginx", "cache-hit"):
                rows.append((side, r, *cells[:8]))
print("| build | round | target | mode | conns | req/s | p50 µs | p99 µs | proxy CPU s | req/CPU-s |")
print("|---|---|---|---|---|---|---|---|---|---|")
for row in sorted(rows, key=lambda x: (x[3], int(x[4]), x[2], x[1], x[0])):
    print("| " + " | ".join(map(str, row)) + " |")
print()
print("| target | mode | conns | median req/CPU-s A | median req/CPU-s B | B/A | median p50 µs A | B |")
print("|---|---|---|---|---|---|---|---|")
keys = sorted({(r[2], r[3], r[4]) for r in rows}, key=lambda k: (k[1], int(k[2]), k[0]))
for t, m, c in keys:
    def med(side, i):
        v = [float(r[i]) for r in rows if r[0] == side and (r[2], r[3], r[4]) == (t, m, c) and r[i] not in ("-", "")]
        return statistics.median(v) if v else float("nan")
    a, b = med("A", 9), med("B", 9)
    print(f"| {t} | {m} | {c} | {a:.0f} | {b:.0f} | {b / a:.3f} | {med('A', 6):.0f} | {med('B', 6):.0f} |")
PY

#!/usr/bin/env bash
# Builds the pipeline bench at two revisions and runs the two builds
# interleaved (base, head, base, head, ...), each run its own process, so
# that a change in the machine's load falls on both alike. Prints each run's
# figures and, per revision, the median of: validate's and plan's best wall
# time and CPU time (the process's, both threads; other load on the machine
# moves it less than the wall time) and plan's peak heap, with the ratio
# head/base (above 1: head is slower or larger). A change meant to keep speed
# must show ratios within the noise. Checks are the bench's own (see
# differential.sh for behaviour); --only skips them, to save time.
#
#   bash benches/ab.sh BASE [HEAD] [-- BENCH ARGS]     (HEAD: the work tree)
#   PAIRS=5 bash benches/ab.sh c7ce0a5 -- --rows 1000000 --reps 1 --only validate,plan
#
# BENCH ARGS default to --rows 100000 --reps 3 --only validate,plan; PAIRS
# (runs of each revision) to 3.
set -euo pipefail
cd "$(dirname "$0")/.."
base=${1:?usage: ab.sh BASE [HEAD] [-- BENCH ARGS]}
shift
head=
if [ $# -gt 0 ] && [ "$1" != "--" ]; then
  head=$1
  shift
fi
if [ "${1:-}" = "--" ]; then
  shift
fi
args=("$@")
if [ ${#args[@]} -eq 0 ]; then
  args=(--rows 100000 --reps 3 --only validate,plan)
fi
pairs=${PAIRS:-3}
. benches/revisions.sh

build() { # DIR OUT: the pipeline bench built in DIR, copied to OUT
  local exe
  exe=$(cd "$1" && cargo bench --quiet --bench pipeline --no-run --message-format=json |
    grep -o '"executable":"[^"]*"' | tail -1 | cut -d'"' -f4)
  cp "$exe" "$2"
}

figures() { # OUT: "validate_s validate_cpu_s plan_s plan_cpu_s plan_peak_MB" of one run
  awk '
    /^pipeline: rows=/ { split($2, a, "="); rows = a[2] }
    ($1 == "validate" || $1 == "plan") && $2 == "best" {
      t[$1] = $3 + 0
      for (i = 1; i <= NF; i++) {
        if ($i == "cpu") { r = $(i + 1); gsub(",", "", r); cpu[$1] = (r + 0 > 0) ? rows / r : 0 }
        if ($i == "heap") heap[$1] = $(i + 1)
      }
    }
    END {
      printf "%.3f %.3f %.3f %.3f %.1f\n", t["validate"], cpu["validate"], t["plan"], cpu["plan"], heap["plan"]
    }' "$1"
}

revisions "$base" "$head" ab
build "$base_dir" "$work/bench-base"
build "$head_dir" "$work/bench-head"

echo "pipeline bench ${args[*]}; base $base, head ${head:-work tree}; $pairs pairs"
row='%-12s %10s %14s %8s %12s %14s\n'
# shellcheck disable=SC2059
printf "$row" run "validate s" "validate cpu s" "plan s" "plan cpu s" "plan peak MB"
for i in $(seq 1 "$pairs"); do
  for rev in base head; do
    "$work/bench-$rev" --bench "${args[@]}" >"$work/out-$rev-$i" 2>&1 ||
      { cat "$work/out-$rev-$i" >&2; exit 1; }
    f=$(figures "$work/out-$rev-$i")
    echo "$rev $f" >>"$work/figures"
    # shellcheck disable=SC2059,SC2086
    printf "$row" "$rev $i" $f
  done
done
awk -v row="$row" '
  function median(rev, c,   m, i, j, x, a) {
    m = n[rev]
    for (i = 1; i <= m; i++) a[i] = v[rev, c, i]
    for (i = 2; i <= m; i++) {
      x = a[i]
      for (j = i - 1; j >= 1 && a[j] > x; j--) a[j + 1] = a[j]
      a[j + 1] = x
    }
    return (m % 2) ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2
  }
  { n[$1]++; for (c = 2; c <= 6; c++) v[$1, c, n[$1]] = $c }
  END {
    for (r = 1; r <= 2; r++) {
      rev = r == 1 ? "base" : "head"
      for (c = 2; c <= 6; c++) q[c] = sprintf(c < 6 ? "%.3f" : "%.1f", median(rev, c))
      printf row, "median " rev, q[2], q[3], q[4], q[5], q[6]
    }
    for (c = 2; c <= 6; c++) {
      b = median("base", c)
      q[c] = b > 0 ? sprintf("%.2f", median("head", c) / b) : "n/a"
    }
    printf row, "head/base", q[2], q[3], q[4], q[5], q[6]
  }' "$work/figures"

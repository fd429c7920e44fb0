#!/usr/bin/env bash
# Runs the differential harness (examples/differential.rs) on two revisions
# and compares what they give: validation, plan and report JSON and the
# store's calls, over the corpus the harness names. A change meant to keep
# behaviour must print "identical".
#
#   bash benches/differential.sh BASE [HEAD]     (HEAD: the work tree)
set -euo pipefail
cd "$(dirname "$0")/.."
base=${1:?usage: differential.sh BASE [HEAD]}
head=${2:-}
. benches/revisions.sh

run() { # DIR OUT
  (cd "$1" && cargo run --quiet --release --example differential -- "$2")
}

revisions "$base" "$head" differential
run "$base_dir" "$work/out-base"
run "$head_dir" "$work/out-head"
if diff -r -q "$work/out-base" "$work/out-head"; then
  echo "identical: $(ls "$work/out-base" | wc -l) cases"
else
  echo "the two revisions differ (diff -r $work/out-base $work/out-head)" >&2
  trap - EXIT
  exit 1
fi

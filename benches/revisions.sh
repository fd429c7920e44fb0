# Sourced by differential.sh and ab.sh, which compare two revisions.
#
#   revisions BASE HEAD NAME
#
# checks out BASE, and HEAD unless it is empty, in a temporary directory
# $work that is removed on exit, with everything in it; sets $base_dir and
# $head_dir (the work tree when HEAD is empty); and points CARGO_TARGET_DIR
# at target/NAME, one target directory, so the two builds share their
# dependencies. Run from the repository's root.
revisions() {
  work=$(mktemp -d)
  trap 'git worktree remove --force "$work/base" >/dev/null 2>&1 || true; git worktree remove --force "$work/head" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
  git worktree add --detach "$work/base" "$1" >/dev/null
  base_dir="$work/base"
  if [ -n "$2" ]; then
    git worktree add --detach "$work/head" "$2" >/dev/null
    head_dir="$work/head"
  else
    head_dir="$PWD"
  fi
  export CARGO_TARGET_DIR="$PWD/target/$3"
}

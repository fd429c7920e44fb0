#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the tests and benchmarks.
#
#   bash .ci/postgres.sh start DIR    # start one in DIR (or reuse the one
#                                     # running there); prints its URL
#   bash .ci/postgres.sh stop DIR     # stop it (DIR is left for you to remove)
#
# The cluster listens on 127.0.0.1 only, on a free port, with "trust"
# authentication, and keeps its socket in DIR. It runs as the calling user,
# or, when that is root (PostgreSQL refuses to run as root), as the
# `postgres` user that Debian's package creates. The server programs are
# Debian's (`apt-get install postgresql`): they are looked for on PATH, then
# under /usr/lib/postgresql/*/bin. Fails, saying why, when they are missing
# or the server does not start: nothing that needs the server is skipped.
set -euo pipefail

cmd=${1:?usage: postgres.sh start|stop DIR}
dir=${2:?usage: postgres.sh start|stop DIR}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)

bindir=""
if command -v initdb >/dev/null 2>&1; then
  bindir=$(dirname "$(command -v initdb)")
else
  bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
fi
if [ -z "$bindir" ] || [ ! -x "$bindir/initdb" ]; then
  echo "postgres.sh: PostgreSQL's server programs are not installed (apt-get install postgresql)" >&2
  exit 1
fi

as_owner() {
  # From DIR: the server's programs go back to the working directory, which
  # the postgres user may not be allowed to enter.
  if [ "$(id -u)" = 0 ]; then
    # runuser is in /usr/sbin, which a root PATH may lack.
    local runuser
    runuser=$(command -v runuser || echo /usr/sbin/runuser)
    (cd "$dir" && "$runuser" -u postgres -- "$@")
  else
    (cd "$dir" && "$@")
  fi
}

data="$dir/data"
case "$cmd" in
  start)
    if [ "$(id -u)" = 0 ]; then
      if ! id postgres >/dev/null 2>&1; then
        echo "postgres.sh: running as root and there is no postgres user to run the server" >&2
        exit 1
      fi
      chown postgres "$dir"
    fi
    if [ -f "$dir/url" ] && as_owner "$bindir/pg_ctl" -D "$data" status >/dev/null 2>&1; then
      cat "$dir/url"
      exit 0
    fi
    if [ ! -f "$data/PG_VERSION" ]; then
      as_owner "$bindir/initdb" -D "$data" -U postgres --auth=trust --encoding=UTF8 \
        --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 || {
        cat "$dir/initdb.log" >&2
        echo "postgres.sh: initdb failed" >&2
        exit 1
      }
    fi
    # A free port; another program may take it before the server binds
    # it, so a few tries.
    started=""
    for _ in 1 2 3; do
      port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
      # fsync stays on: the tests kill connections and read back what was committed.
      if as_owner "$bindir/pg_ctl" -D "$data" -l "$dir/server.log" -w -t 60 \
        -o "-p $port -c listen_addresses=127.0.0.1 -c unix_socket_directories=$dir -c max_connections=200" \
        start >/dev/null; then
        started=yes
        break
      fi
    done
    if [ -z "$started" ]; then
      cat "$dir/server.log" >&2 || true
      echo "postgres.sh: the server did not start" >&2
      exit 1
    fi
    echo "postgres://postgres@127.0.0.1:$port/postgres" >"$dir/url"
    cat "$dir/url"
    ;;
  stop)
    as_owner "$bindir/pg_ctl" -D "$data" -m fast stop >/dev/null 2>&1 || true
    rm -f "$dir/url"
    ;;
  *)
    echo "usage: postgres.sh start|stop DIR" >&2
    exit 2
    ;;
esac

#!/usr/bin/env bash
# Throw-away PostgreSQL server on 127.0.0.1 for tests (no systemd, nothing under /etc or /var/lib).
#   eval "$(bash .ci/postgres.sh start)"   # exports BULKFLOW_TEST_POSTGRES_URL (+ _TLS_URL if PG_TEST_TLS=1)
#   bash .ci/postgres.sh stop              # stops it and deletes its data dir
# Idempotent: `start` while it runs prints the same exports again; `stop` with nothing running is a no-op.
set -euo pipefail

BASE="${PG_TEST_BASE:-/tmp/bulkflow-pg}"   # data dir, logs, port file, TLS files
PORTS="${PG_TEST_PORTS:-19700-19799}"      # first-last TCP port to try on 127.0.0.1
TLS="${PG_TEST_TLS:-0}"                    # 1: also serve TLS with a throw-away CA
OWNER=postgres                             # OS user that runs the server when we are root
MARK=.bulkflow-pg                          # marker: only ever rm -rf a dir this script made

log() { echo "postgres.sh: $*" >&2; }

pg_bindir() {
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1 || true)
  if [ -n "$d" ] && [ -x "$d/initdb" ]; then echo "$d"; fi
}

install_pg() {
  if [ -n "$(pg_bindir)" ]; then return 0; fi
  log "installing the PostgreSQL server package"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends postgresql >&2
}

# initdb, postgres and pg_ctl refuse to run as root: run them as $OWNER, from a dir it can read
as_owner() {
  if [ "$(id -u)" = 0 ]; then (cd / && runuser -u "$OWNER" -- "$@"); else "$@"; fi
}

print_env() {
  local port; port=$(cat "$BASE/port")
  echo "export BULKFLOW_TEST_POSTGRES_URL='postgres://postgres@127.0.0.1:${port}/postgres?sslmode=disable'"
  if [ -f "$BASE/tls/ca.crt" ]; then
    echo "export BULKFLOW_TEST_POSTGRES_TLS_URL='postgres://postgres@127.0.0.1:${port}/postgres?sslmode=verify-full&sslrootcert=$BASE/tls/ca.crt'"
  fi
}

make_tls() {  # CA + server cert for 127.0.0.1 and localhost (Go checks SANs only, never the CN)
  local t="$BASE/tls"; mkdir -p "$t"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 7 \
    -subj "/CN=bulkflow-test-ca" -keyout "$t/ca.key" -out "$t/ca.crt" 2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -subj "/CN=localhost" -keyout "$t/server.key" -out "$t/server.csr" 2>/dev/null
  printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >"$t/ext.cnf"
  openssl x509 -req -in "$t/server.csr" -CA "$t/ca.crt" -CAkey "$t/ca.key" -CAcreateserial \
    -days 7 -extfile "$t/ext.cnf" -out "$t/server.crt" 2>/dev/null
  chmod 600 "$t/server.key" "$t/ca.key"
  # the server refuses a key file it cannot read or that others can read
  if [ "$(id -u)" = 0 ]; then chown -R "$OWNER:" "$t"; fi
  TLS_OPTS="-c ssl=on -c ssl_cert_file=$t/server.crt -c ssl_key_file=$t/server.key"
}

# PID of our postmaster, only if the PID in postmaster.pid really is a postgres on $BASE/data
# (a stale pid file from a killed run may name a reused PID: never signal that one)
our_pid() {
  local pid
  pid=$(head -n1 "$BASE/data/postmaster.pid" 2>/dev/null) || return 1
  [ -n "$pid" ] && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "-D $BASE/data " &&
    echo "$pid"
}

running() {
  [ -f "$BASE/port" ] && our_pid >/dev/null &&
    pg_isready -q -h 127.0.0.1 -p "$(cat "$BASE/port")" -U postgres
}

stop_server() {
  if [ -n "$BIN" ] && our_pid >/dev/null; then
    as_owner "$BIN/pg_ctl" -D "$BASE/data" -m immediate -w -s stop >&2 || true
  fi
}

wipe() {
  if [ -e "$BASE" ] && [ ! -f "$BASE/$MARK" ]; then
    log "$BASE exists and was not made by this script; refusing to delete it"; exit 1
  fi
  rm -rf "$BASE"
}

start() {
  install_pg
  BIN=$(pg_bindir)
  if running; then print_env; return 0; fi
  stop_server
  wipe
  mkdir -p "$BASE"; touch "$BASE/$MARK"; chmod 700 "$BASE"
  if [ "$(id -u)" = 0 ]; then chown "$OWNER:" "$BASE"; fi
  as_owner "$BIN/initdb" -D "$BASE/data" -A trust -U postgres -E UTF8 --locale=C \
    --no-sync --no-instructions >"$BASE/initdb.log" 2>&1 || { cat "$BASE/initdb.log" >&2; return 1; }
  TLS_OPTS=""
  if [ "$TLS" = 1 ]; then make_tls; fi
  local first=${PORTS%-*} last=${PORTS#*-} port
  for ((port = first; port <= last; port++)); do
    # -l: the server's output goes to a file, so `$(... start)` does not hang on an inherited stdout
    if as_owner "$BIN/pg_ctl" -D "$BASE/data" -l "$BASE/server.log" -w -t 60 -s \
      -o "-p $port -c listen_addresses=127.0.0.1 -c unix_socket_directories= \
          -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c timezone=UTC $TLS_OPTS" \
      start >"$BASE/pg_ctl.out" 2>&1; then
      echo "$port" >"$BASE/port"
      for _ in $(seq 1 100); do
        if pg_isready -q -h 127.0.0.1 -p "$port" -U postgres; then print_env; return 0; fi
        sleep 0.1
      done
      log "server on port $port never became ready"; tail -n 20 "$BASE/server.log" >&2; return 1
    fi
    # only a busy port is worth another try
    if ! grep -q "Address already in use" "$BASE/server.log" 2>/dev/null; then
      cat "$BASE/pg_ctl.out" >&2; tail -n 20 "$BASE/server.log" >&2; return 1
    fi
    : >"$BASE/server.log"
  done
  log "no free port in $PORTS"; return 1
}

stop() {
  BIN=$(pg_bindir)
  stop_server
  wipe
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  env) print_env ;;
  *) echo "usage: $0 start|stop|env" >&2; exit 2 ;;
esac

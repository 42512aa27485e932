#!/usr/bin/env bash
# blobservers.sh: local object-storage servers for the cloud blob tests.
#
#   .ci/blobservers.sh start   install (once, cached) and start versitygw (S3),
#                              fake-gcs-server (GCS) and Azurite (Azure blob),
#                              all bound to 127.0.0.1; write the env file
#   .ci/blobservers.sh stop    stop the servers started by "start"
#   .ci/blobservers.sh env     print the env file's path
#
# After "start", `source "$(.ci/blobservers.sh env)"` sets the BULKFLOW_TEST_*
# variables (and the client credentials) that pipeline/blobio/cloud_test.go
# reads. See shared/docs/blob-test-servers.md for why each flag is there.
#
# Settings (environment):
#   BULKFLOW_TOOLS_DIR  install cache (default $HOME/.cache/bulkflow-tools)
#   BULKFLOW_BLOB_DIR   state dir: PIDs, logs, data, env file
#                       (default ${TMPDIR:-/tmp}/bulkflow-blob)
#   S3_PORT GCS_PORT AZURE_PORT   ports (default 7070, 4443, 10000)
set -euo pipefail

VERSITYGW_VERSION=v1.8.0
FAKEGCS_VERSION=v1.56.1
AZURITE_VERSION=3.37.0

TOOLS_DIR=${BULKFLOW_TOOLS_DIR:-$HOME/.cache/bulkflow-tools}
STATE_DIR=${BULKFLOW_BLOB_DIR:-${TMPDIR:-/tmp}/bulkflow-blob}
ENV_FILE=$STATE_DIR/bulkflow-blob.env
S3_PORT=${S3_PORT:-7070}
GCS_PORT=${GCS_PORT:-4443}
AZURE_PORT=${AZURE_PORT:-10000}
WAIT_SECONDS=${WAIT_SECONDS:-60}

S3_KEY=testkey
S3_SECRET=testsecret
AZURE_ACCOUNT=devstoreaccount1
# Azurite's well-known development key (public, documented by Microsoft).
AZURE_KEY='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='

export PATH="/usr/local/go/bin:$PATH"

log() { echo "blobservers: $*" >&2; }
die() { log "error: $*"; exit 1; }

install_tools() {
	mkdir -p "$TOOLS_DIR/bin"
	local bin=$TOOLS_DIR/bin t0
	# Versioned marker files make the install idempotent per version.
	if [[ ! -x $bin/versitygw || ! -e $bin/.versitygw-$VERSITYGW_VERSION ]]; then
		t0=$SECONDS
		log "installing versitygw $VERSITYGW_VERSION (go install; minutes when cold)"
		# GOFLAGS from the caller (e.g. -mod=readonly) must not leak into a
		# module-mode install outside the project.
		(cd "$TOOLS_DIR" && GOFLAGS= GOBIN=$bin go install "github.com/versity/versitygw/cmd/versitygw@$VERSITYGW_VERSION")
		touch "$bin/.versitygw-$VERSITYGW_VERSION"
		log "versitygw installed in $((SECONDS - t0))s"
	fi
	if [[ ! -x $bin/fake-gcs-server || ! -e $bin/.fake-gcs-server-$FAKEGCS_VERSION ]]; then
		t0=$SECONDS
		log "installing fake-gcs-server $FAKEGCS_VERSION (go install; minutes when cold)"
		(cd "$TOOLS_DIR" && GOFLAGS= GOBIN=$bin go install "github.com/fsouza/fake-gcs-server@$FAKEGCS_VERSION")
		touch "$bin/.fake-gcs-server-$FAKEGCS_VERSION"
		log "fake-gcs-server installed in $((SECONDS - t0))s"
	fi
	local az=$TOOLS_DIR/azurite-$AZURITE_VERSION
	if [[ ! -f $az/node_modules/azurite/dist/src/blob/main.js ]]; then
		command -v npm >/dev/null || die "npm not found; Azurite needs Node.js (>= 18) and npm"
		t0=$SECONDS
		log "installing azurite $AZURITE_VERSION (npm; minutes when cold)"
		mkdir -p "$az"
		[[ -f $az/package.json ]] || echo '{"name":"bulkflow-azurite","private":true}' >"$az/package.json"
		(cd "$az" && npm install --no-audit --no-fund --loglevel=error "azurite@$AZURITE_VERSION")
		log "azurite installed in $((SECONDS - t0))s"
	fi
}

# port_open HOST PORT: true when something accepts TCP connections there.
port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

# wait_port NAME PORT PID LOG: bounded wait for the port; fail with the log tail.
wait_port() {
	local name=$1 port=$2 pid=$3 logf=$4 i
	for ((i = 0; i < WAIT_SECONDS * 10; i++)); do
		if port_open 127.0.0.1 "$port"; then
			log "$name is listening on 127.0.0.1:$port (pid $pid)"
			return 0
		fi
		if ! kill -0 "$pid" 2>/dev/null; then
			log "$name (pid $pid) exited before opening 127.0.0.1:$port; last lines of $logf:"
			tail -n 20 "$logf" >&2 || true
			stop_servers
			exit 1
		fi
		sleep 0.1
	done
	log "$name did not open 127.0.0.1:$port within ${WAIT_SECONDS}s; last lines of $logf:"
	tail -n 20 "$logf" >&2 || true
	stop_servers
	exit 1
}

start_servers() {
	local start_ts end_ts
	start_ts=$(date +%s)
	install_tools
	end_ts=$(date +%s)
	log "tools ready in $((end_ts - start_ts))s (cache: $TOOLS_DIR)"

	if [[ -e $STATE_DIR/pids ]]; then
		log "servers from an earlier start are recorded; stopping them first"
		stop_servers
	fi
	for p in "$S3_PORT" "$GCS_PORT" "$AZURE_PORT"; do
		port_open 127.0.0.1 "$p" && die "127.0.0.1:$p is already in use; stop what holds it or set S3_PORT/GCS_PORT/AZURE_PORT"
	done
	mkdir -p "$STATE_DIR/s3data" "$STATE_DIR/logs"
	: >"$STATE_DIR/pids"
	local bin=$TOOLS_DIR/bin pid

	# S3: versitygw, posix backend (needs user xattrs; ext4/tmpfs are fine).
	ROOT_ACCESS_KEY=$S3_KEY ROOT_SECRET_KEY=$S3_SECRET \
		nohup "$bin/versitygw" -q --port "127.0.0.1:$S3_PORT" posix "$STATE_DIR/s3data" \
		>"$STATE_DIR/logs/versitygw.log" 2>&1 &
	pid=$!
	echo "versitygw $pid" >>"$STATE_DIR/pids"

	# GCS: -public-host is required or every read returns "object doesn't exist".
	nohup "$bin/fake-gcs-server" -scheme http -host 127.0.0.1 -port "$GCS_PORT" -backend memory \
		-public-host 127.0.0.1 -external-url "http://127.0.0.1:$GCS_PORT" -log-level warn \
		>"$STATE_DIR/logs/fake-gcs-server.log" 2>&1 &
	pid=$!
	echo "fake-gcs-server $pid" >>"$STATE_DIR/pids"

	# Azure: the blob service only, in memory, telemetry off (closed network).
	nohup node "$TOOLS_DIR/azurite-$AZURITE_VERSION/node_modules/azurite/dist/src/blob/main.js" \
		--blobHost 127.0.0.1 --blobPort "$AZURE_PORT" --inMemoryPersistence --silent --disableTelemetry \
		>"$STATE_DIR/logs/azurite.log" 2>&1 &
	pid=$!
	echo "azurite $pid" >>"$STATE_DIR/pids"

	local name
	while read -r name pid; do
		case $name in
		versitygw) wait_port "$name" "$S3_PORT" "$pid" "$STATE_DIR/logs/$name.log" ;;
		fake-gcs-server) wait_port "$name" "$GCS_PORT" "$pid" "$STATE_DIR/logs/$name.log" ;;
		azurite) wait_port "$name" "$AZURE_PORT" "$pid" "$STATE_DIR/logs/$name.log" ;;
		esac
	done <"$STATE_DIR/pids"

	cat >"$ENV_FILE" <<EOF
# Written by .ci/blobservers.sh start; source it before go test.
export BULKFLOW_TEST_S3_ENDPOINT=http://127.0.0.1:$S3_PORT
export AWS_ACCESS_KEY_ID=$S3_KEY
export AWS_SECRET_ACCESS_KEY=$S3_SECRET
export AWS_REGION=us-east-1
export AWS_EC2_METADATA_DISABLED=true
export BULKFLOW_TEST_GCS_HOST=127.0.0.1:$GCS_PORT
export STORAGE_EMULATOR_HOST=127.0.0.1:$GCS_PORT
export BULKFLOW_TEST_AZURE_DOMAIN=127.0.0.1:$AZURE_PORT
export AZURE_STORAGE_ACCOUNT=$AZURE_ACCOUNT
export AZURE_STORAGE_KEY='$AZURE_KEY'
EOF
	log "all servers up in $(($(date +%s) - start_ts))s; run: source $ENV_FILE"
	echo "$ENV_FILE"
}

stop_servers() {
	local f=$STATE_DIR/pids name pid i
	if [[ ! -e $f ]]; then
		log "nothing recorded in $f; nothing to stop"
		return 0
	fi
	while read -r name pid; do
		[[ -n ${pid:-} ]] || continue
		if kill -0 "$pid" 2>/dev/null; then
			kill "$pid" 2>/dev/null || true
			for ((i = 0; i < 50; i++)); do
				kill -0 "$pid" 2>/dev/null || break
				sleep 0.1
			done
			if kill -0 "$pid" 2>/dev/null; then
				log "$name (pid $pid) ignored SIGTERM; sending SIGKILL"
				kill -9 "$pid" 2>/dev/null || true
			fi
			log "stopped $name (pid $pid)"
		fi
	done <"$f"
	rm -f "$f" "$ENV_FILE"
	rm -rf "$STATE_DIR/s3data"
}

case ${1:-} in
start) start_servers ;;
stop) stop_servers ;;
env) echo "$ENV_FILE" ;;
*)
	echo "usage: $0 start|stop|env" >&2
	exit 2
	;;
esac

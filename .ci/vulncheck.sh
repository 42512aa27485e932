#!/usr/bin/env bash
# Runs govulncheck (symbol level: only vulnerable code the program can reach
# counts) against a vulnerability database built offline from a pinned
# snapshot of the golang.org/x/vulndb module, fetched through the Go module
# proxy like any module: the public database endpoint is not reachable from
# the machines this project builds on. Fails on any reachable finding.
#
# Refresh the snapshot: set VULNDB_VERSION to a newer pseudo-version of
# golang.org/x/vulndb (it has no tagged versions; `go list -m
# golang.org/x/vulndb@latest` prints the newest) and rerun.
set -euo pipefail
cd "$(dirname "$0")/.."

GOVULNCHECK_VERSION="${GOVULNCHECK_VERSION:-v1.9.0}"
VULNDB_VERSION="${VULNDB_VERSION:-v0.0.0-20261105234957-e22db6528018}"

db="${VULNDB_DIR:-${TMPDIR:-/tmp}/bulkflow-vulndb-$VULNDB_VERSION}"
if [ ! -f "$db/index/db.json" ]; then
	src="$(go mod download -json "golang.org/x/vulndb@$VULNDB_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
	[ -d "$src/data/osv" ] || { echo "vulncheck: no data/osv in golang.org/x/vulndb@$VULNDB_VERSION" >&2; exit 1; }
	rm -rf "$db.tmp"
	# indexdb turns the module's OSV JSON files into the v1 database layout govulncheck reads.
	(cd "${TMPDIR:-/tmp}" && GOFLAGS= go run "golang.org/x/vulndb/cmd/indexdb@$VULNDB_VERSION" -vulns "$src/data/osv" -out "$db.tmp")
	mv "$db.tmp" "$db"
fi
echo "vulncheck: database golang.org/x/vulndb@$VULNDB_VERSION ($(ls "$db/ID" | wc -l) entries), govulncheck $GOVULNCHECK_VERSION"
GOFLAGS= go run "golang.org/x/vuln/cmd/govulncheck@$GOVULNCHECK_VERSION" -db "file://$db" ./...

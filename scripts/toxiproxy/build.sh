#!/usr/bin/env bash
# Builds toxiproxy-server (the TCP fault proxy of the fault campaign, one proxy per simulated node)
# from the Go module github.com/Shopify/toxiproxy/v2 and caches it OUTSIDE the repository.
# Idempotent: once the marker file exists it exits 0 at once; concurrent runs wait on a lock.
# Progress goes to stderr; the last line on stdout is the cache dir (binary: <dir>/bin/toxiproxy-server).
# See scripts/toxiproxy/README.md.
set -euo pipefail

TOXIPROXY_VERSION=2.5.0

CACHE_ROOT="${SDV_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/sdv-failover}"
CACHE_DIR="${CACHE_ROOT}/toxiproxy-${TOXIPROXY_VERSION}"
MARKER="${CACHE_DIR}/.complete"

log() { printf '[toxiproxy/build %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

if [[ -f "$MARKER" ]]; then
  log "cache complete: $CACHE_DIR"
  echo "$CACHE_DIR"
  exit 0
fi

if ! command -v go >/dev/null 2>&1; then
  if [[ -x /usr/local/go/bin/go ]]; then
    export PATH="$PATH:/usr/local/go/bin"
  else
    log "ERROR: go not found (need Go on PATH or /usr/local/go/bin/go)"
    exit 1
  fi
fi

mkdir -p "$CACHE_DIR"
# One build at a time: a second caller waits for the first, then sees the marker.
exec 9>"${CACHE_DIR}/.lock"
if ! flock -n 9; then
  log "another build holds ${CACHE_DIR}/.lock; waiting"
  flock 9
fi
if [[ -f "$MARKER" ]]; then
  log "cache completed by another build: $CACHE_DIR"
  echo "$CACHE_DIR"
  exit 0
fi

START_S=$SECONDS
BUILD_DIR="${CACHE_DIR}/build"
OUT_BIN="${CACHE_DIR}/bin"
rm -rf "$BUILD_DIR"
mkdir -p "$BUILD_DIR" "$OUT_BIN"
log "go: $(go version)"
log "building toxiproxy-server v${TOXIPROXY_VERSION} into $OUT_BIN"
cd "$BUILD_DIR"
# `go install module/pkg@version` needs no wrapper module: the module's own go.mod pins the
# dependencies, fetched through the Go module proxy (GOPROXY/GOFLAGS as configured, like kine and
# kwok in scripts/controlplane/build.sh). The binary is named after the package directory
# ("server"); renamed below to upstream's name.
CGO_ENABLED=0 GOBIN="${BUILD_DIR}/gobin" go install -trimpath \
  -ldflags="-s -w -X github.com/Shopify/toxiproxy/v2.Version=${TOXIPROXY_VERSION}" \
  "github.com/Shopify/toxiproxy/v2/cmd/server@v${TOXIPROXY_VERSION}"
mv -f "${BUILD_DIR}/gobin/server" "$OUT_BIN/toxiproxy-server"

"$OUT_BIN/toxiproxy-server" -version >&2
cd "$CACHE_DIR"
rm -rf "$BUILD_DIR"
{
  echo "toxiproxy=v${TOXIPROXY_VERSION}"
  echo "go=$(go version | cut -d" " -f3) built=$(date -u +%Y-%m-%dT%H:%M:%SZ) seconds=$((SECONDS - START_S))"
} >"${MARKER}.tmp"
mv -f "${MARKER}.tmp" "$MARKER"
log "done in $((SECONDS - START_S)) s"
echo "$CACHE_DIR"

#!/usr/bin/env bash
# Builds the pieces of a real Kubernetes control plane for the acceptance tests
# (kube-apiserver, kube-controller-manager, kube-scheduler, kine, kwok) and caches
# them OUTSIDE the repository. Idempotent: once the marker file exists it exits 0
# at once. Progress goes to stderr; the last line on stdout is the cache dir.
# See scripts/controlplane/README.md.
set -euo pipefail

K8S_VERSION=1.37.2
STAGING_VERSION=0.37.2
KINE_VERSION=0.17.5
KWOK_VERSION=0.8.0

CACHE_ROOT="${SDV_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/sdv-failover}"
CACHE_DIR="${CACHE_ROOT}/cp-k8s${K8S_VERSION}-kine${KINE_VERSION}-kwok${KWOK_VERSION}"
MARKER="${CACHE_DIR}/.complete"

log() { printf '[controlplane/build %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

if [[ -f "$MARKER" ]]; then
  log "cache complete: $CACHE_DIR"
  echo "$CACHE_DIR"
  exit 0
fi

if ! command -v go >/dev/null 2>&1; then
  if [[ -x /usr/local/go/bin/go ]]; then
    export PATH="$PATH:/usr/local/go/bin"
  else
    log "ERROR: go not found (need Go >= 1.25 on PATH)"
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
OUT_STAGES="${CACHE_DIR}/stages"
mkdir -p "$BUILD_DIR" "$OUT_BIN" "$OUT_STAGES"
log "go: $(go version)"
log "cache dir: $CACHE_DIR"

# While the (CPU-bound) Kubernetes build runs, download the modules kine and kwok
# need (I/O-bound) in the background. Best effort: go install fetches anything missing.
PREFETCH_PID=""
start_prefetch() {
  [[ -x "$OUT_BIN/kine" && -x "$OUT_BIN/kwok" ]] && return 0
  log "prefetching kine and kwok modules in the background"
  (
    cd "$BUILD_DIR" &&
      # -n: resolve and download exactly what the builds below need, compile nothing.
      CGO_ENABLED=1 go install -n "github.com/k3s-io/kine@v${KINE_VERSION}" &&
      go install -n "sigs.k8s.io/kwok/cmd/kwok@v${KWOK_VERSION}"
  ) >"${BUILD_DIR}/prefetch.log" 2>&1 &
  PREFETCH_PID=$!
}
wait_prefetch() {
  if [[ -n "$PREFETCH_PID" ]]; then
    wait "$PREFETCH_PID" || true
    PREFETCH_PID=""
  fi
}
trap '[[ -n "$PREFETCH_PID" ]] && kill "$PREFETCH_PID" 2>/dev/null; true' EXIT

# ---- 1. kube-apiserver, kube-controller-manager, kube-scheduler -------------
have_k8s=1
for b in kube-apiserver kube-controller-manager kube-scheduler; do
  [[ -x "$OUT_BIN/$b" ]] || have_k8s=0
done
if [[ $have_k8s == 1 ]]; then
  log "k8s binaries already built, skipping"
else
  WRAP="${BUILD_DIR}/k8s-wrapper"
  rm -rf "$WRAP"
  mkdir -p "$WRAP"
  cd "$WRAP"
  log "resolving k8s.io/kubernetes v${K8S_VERSION} go.mod"
  KGOMOD="$(GOFLAGS=-mod=mod go mod download -json "k8s.io/kubernetes@v${K8S_VERSION}" |
    sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p')"
  [[ -f "$KGOMOD" ]] || { log "ERROR: cannot find go.mod of k8s.io/kubernetes"; exit 1; }
  # Staging modules: the "k8s.io/X => ./staging/src/k8s.io/X" replaces, minus sample-*.
  mapfile -t STAGING < <(sed -n 's#^[[:space:]]*\(k8s\.io/[A-Za-z0-9._-]*\) => \./staging/.*#\1#p' "$KGOMOD" |
    grep -v '^k8s\.io/sample-' | sort -u)
  [[ ${#STAGING[@]} -gt 10 ]] || { log "ERROR: found only ${#STAGING[@]} staging modules"; exit 1; }
  log "replacing ${#STAGING[@]} staging modules at v${STAGING_VERSION}"
  {
    echo "module sdv-failover/controlplane-wrapper"
    echo
    echo "go 1.25"
    echo
    echo "require k8s.io/kubernetes v${K8S_VERSION}"
    echo
    echo "replace ("
    for m in "${STAGING[@]}"; do echo "	$m => $m v${STAGING_VERSION}"; done
    echo ")"
  } >go.mod
  cat >tools.go <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
)
GO
  log "go mod tidy (downloads modules)"
  go mod tidy
  start_prefetch
  log "building kube-apiserver, kube-controller-manager, kube-scheduler (several minutes)"
  t0=$SECONDS
  CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "${BUILD_DIR}/k8s-bin/" \
    k8s.io/kubernetes/cmd/kube-apiserver \
    k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler
  for b in kube-apiserver kube-controller-manager kube-scheduler; do
    mv -f "${BUILD_DIR}/k8s-bin/$b" "$OUT_BIN/$b"
  done
  log "k8s binaries built in $((SECONDS - t0)) s"
fi

# ---- 2. kine (SQLite needs cgo) ---------------------------------------------
wait_prefetch
if [[ -x "$OUT_BIN/kine" ]]; then
  log "kine already built, skipping"
else
  log "building kine v${KINE_VERSION} (CGO_ENABLED=1)"
  t0=$SECONDS
  cd "$BUILD_DIR"
  CGO_ENABLED=1 GOBIN="${BUILD_DIR}/gobin" go install -trimpath -ldflags='-s -w' \
    "github.com/k3s-io/kine@v${KINE_VERSION}"
  mv -f "${BUILD_DIR}/gobin/kine" "$OUT_BIN/kine"
  log "kine built in $((SECONDS - t0)) s"
fi

# ---- 3. kwok ---------------------------------------------------------------
if [[ -x "$OUT_BIN/kwok" ]]; then
  log "kwok already built, skipping"
else
  log "building kwok v${KWOK_VERSION}"
  t0=$SECONDS
  cd "$BUILD_DIR"
  CGO_ENABLED=0 GOBIN="${BUILD_DIR}/gobin" go install -trimpath -ldflags='-s -w' \
    "sigs.k8s.io/kwok/cmd/kwok@v${KWOK_VERSION}"
  mv -f "${BUILD_DIR}/gobin/kwok" "$OUT_BIN/kwok"
  log "kwok built in $((SECONDS - t0)) s"
fi

# ---- 4. kwok stage files -----------------------------------------------------
KWOK_MOD="$(go env GOMODCACHE)/sigs.k8s.io/kwok@v${KWOK_VERSION}"
if [[ ! -d "$KWOK_MOD/kustomize/stage" ]]; then
  (cd "$BUILD_DIR" && GOFLAGS=-mod=mod go mod download "sigs.k8s.io/kwok@v${KWOK_VERSION}")
fi
STAGE_SRC="$KWOK_MOD/kustomize/stage"
rm -rf "$OUT_STAGES"
mkdir -p "$OUT_STAGES"
cp "$STAGE_SRC/node/fast/node-initialize.yaml" "$OUT_STAGES/"
cp "$STAGE_SRC/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml" "$OUT_STAGES/"
cp "$STAGE_SRC"/pod/fast/pod-*.yaml "$OUT_STAGES/"
chmod u+w "$OUT_STAGES"/*.yaml
log "stages: $(cd "$OUT_STAGES" && echo *.yaml)"

# ---- 5. verify and mark ------------------------------------------------------
for b in kube-apiserver kube-controller-manager kube-scheduler kine kwok; do
  [[ -x "$OUT_BIN/$b" ]] || { log "ERROR: missing $OUT_BIN/$b"; exit 1; }
done
"$OUT_BIN/kube-apiserver" --version >&2
"$OUT_BIN/kwok" --version >&2 || true
cd "$CACHE_DIR"
rm -rf "$BUILD_DIR"
{
  echo "k8s=v${K8S_VERSION} staging=v${STAGING_VERSION} kine=v${KINE_VERSION} kwok=v${KWOK_VERSION}"
  echo "go=$(go version | cut -d" " -f3) built=$(date -u +%Y-%m-%dT%H:%M:%SZ) seconds=$((SECONDS - START_S))"
} >"${MARKER}.tmp"
mv -f "${MARKER}.tmp" "$MARKER"
log "done in $((SECONDS - START_S)) s"
echo "$CACHE_DIR"

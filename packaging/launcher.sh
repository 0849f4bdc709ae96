#!/bin/sh
# sdv-failover @VERSION@ for @TARGET@: runs the bundled program (lib/sdv-failover.js) on the
# bundled Deno @DENO_VERSION@ runtime (lib/deno). Needs no Node, no npm and no network: remote and
# npm modules are disabled (the program is one self-contained file) and nothing is fetched.
#
# Permissions: @PERMISSIONS@ (no -A; env is unscoped because a dependency enumerates it; the
# one writable path is systemd's notification socket). @UNSTABLE@: Deno.listenDatagram (sd_notify).
# DENO_DIR (only a V8 code cache: it halves later start-ups) defaults to $CACHE_DIRECTORY/deno
# (systemd's CacheDirectory=), else ${XDG_CACHE_HOME:-~/.cache}/sdv-failover/deno; an unwritable
# one only costs start-up time.
# SDV_FAILOVER_EMULATOR, when set, is put in front of the runtime (e.g. "qemu-aarch64-static" to
# try the ARM64 package on an x86_64 host).
set -eu
self=$(readlink -f "$0")
root=$(dirname "$(dirname "$self")")
if [ -z "${DENO_DIR:-}" ]; then
  if [ -n "${CACHE_DIRECTORY:-}" ]; then
    DENO_DIR=${CACHE_DIRECTORY%%:*}/deno
  else
    DENO_DIR=${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/sdv-failover/deno
  fi
fi
export DENO_DIR
export DENO_NO_UPDATE_CHECK=1 DENO_NO_PROMPT=1
flags="--no-config --no-lock --no-remote --no-npm --cached-only --no-prompt @PERMISSIONS@ @UNSTABLE@"
# run: its failover journal (journal.path, default $STATE_DIRECTORY/journal.jsonl) may be written
# in systemd's StateDirectory= and nowhere else
if [ "${1:-}" = run ] && [ -n "${STATE_DIRECTORY:-}" ]; then
  flags="$flags --allow-write=${STATE_DIRECTORY%%:*}"
fi
# With an empty cache, Deno's analysis of the 8 MB program costs ≈ 110 MB of resident memory that
# the process keeps for good (measured: agent 216 MB cold, 104 MB with the cache). So before a
# long-running command starts on a cold cache, a short-lived `version` fills the cache first.
case "${1:-}" in
run | agent | publish | demo)
  marker="$DENO_DIR/.sdv-failover-@PROGRAM_ID@"
  if [ ! -e "$marker" ] && mkdir -p "$DENO_DIR" 2>/dev/null && [ -w "$DENO_DIR" ]; then
    # shellcheck disable=SC2086 # the emulator may carry arguments; flags are fixed words
    if ${SDV_FAILOVER_EMULATOR:-} "$root/lib/deno" run $flags "$root/lib/sdv-failover.js" version \
      >/dev/null 2>&1; then
      : >"$marker" 2>/dev/null || true
    fi
  fi
  ;;
esac
# shellcheck disable=SC2086 # the emulator may carry arguments; flags are fixed words
exec ${SDV_FAILOVER_EMULATOR:-} "$root/lib/deno" run $flags "$root/lib/sdv-failover.js" "$@"

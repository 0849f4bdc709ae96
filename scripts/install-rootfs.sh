#!/usr/bin/env bash
# Installs an sdv-failover package into a root file system directory, as when preparing a Jetson
# image (Linux_for_Tegra/rootfs) before flashing it. Runs on the build host; runs nothing inside the
# image (no chroot, no systemctl): units are enabled by symlink, as `systemctl enable` would.
#
#   install-rootfs.sh ROOTFS [--role agent|supervisor]... [--node NAME] [--package FILE|DIR]
#                            [--arch arm64|x86_64] [--k3s-pod]
#
#   ROOTFS      the target's root file system (must exist)
#   --role      what this image runs (repeatable, default agent): `agent` on every Jetson,
#               `supervisor` on the K3s server node; roles not given are disabled again
#   --node      the agent's node name (as in config.yaml `nodes:`), written to
#               /etc/sdv-failover/agent.env when that file is created; default: the host name
#   --package   the .tar.gz (or unpacked directory) to install; default: the package this script
#               is part of, else dist/sdv-failover-<version>-linux-<arch of ROOTFS>.tar.gz
#   --arch      the architecture of ROOTFS, for a tree too bare to tell (checked when it can tell)
#   --k3s-pod   run the supervisor as a K3s pod (k3s/supervisor-pod.yaml into K3s's auto-deploy
#               manifests) instead of enabling its systemd unit
#
# Result: /opt/sdv-failover (the package, replaced as a whole), /usr/local/bin/sdv-failover,
# /etc/systemd/system/sdv-failover-{agent,supervisor}.service (+ multi-user.target.wants links for
# the roles), /etc/sdv-failover/{config.yaml,agent.env,supervisor.env} (only when absent: existing
# configuration is never overwritten), for the supervisor role the RBAC manifest in
# /var/lib/rancher/k3s/server/manifests/ (when absent). Running it again changes nothing.
# Exit status: 0 done, 2 usage error, wrong architecture, missing directory or damaged package.
set -euo pipefail

say() { echo "install-rootfs: $*"; }
die() {
  echo "install-rootfs: error: $*" >&2
  exit 2
}
usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }

rootfs=""
roles=()
node=""
package=""
arch_given=""
k3s_pod=0
while [ $# -gt 0 ]; do
  case "$1" in
  -h | --help)
    usage
    exit 0
    ;;
  --role)
    [ $# -ge 2 ] || die "--role needs agent or supervisor"
    IFS=, read -r -a more <<<"$2"
    roles+=("${more[@]}")
    shift 2
    ;;
  --role=*)
    IFS=, read -r -a more <<<"${1#--role=}"
    roles+=("${more[@]}")
    shift
    ;;
  --node)
    [ $# -ge 2 ] || die "--node needs a name"
    node=$2
    shift 2
    ;;
  --node=*)
    node=${1#--node=}
    shift
    ;;
  --package)
    [ $# -ge 2 ] || die "--package needs a file"
    package=$2
    shift 2
    ;;
  --package=*)
    package=${1#--package=}
    shift
    ;;
  --arch)
    [ $# -ge 2 ] || die "--arch needs arm64 or x86_64"
    arch_given=$2
    shift 2
    ;;
  --arch=*)
    arch_given=${1#--arch=}
    shift
    ;;
  --k3s-pod)
    k3s_pod=1
    shift
    ;;
  -*) die "unknown option $1 (see --help)" ;;
  *)
    [ -z "$rootfs" ] || die "one ROOTFS only (got '$rootfs' and '$1')"
    rootfs=$1
    shift
    ;;
  esac
done

[ -n "$rootfs" ] || {
  usage >&2
  die "ROOTFS missing"
}
[ -d "$rootfs" ] || die "ROOTFS '$rootfs' is not a directory (expected the target's root file system, e.g. Linux_for_Tegra/rootfs)"
rootfs=$(cd "$rootfs" && pwd -P)
[ ${#roles[@]} -gt 0 ] || roles=(agent)
want_agent=0
want_supervisor=0
for r in "${roles[@]}"; do
  case "$r" in
  agent) want_agent=1 ;;
  supervisor) want_supervisor=1 ;;
  *) die "--role '$r': use agent or supervisor" ;;
  esac
done
if [ -n "$node" ] && ! [[ "$node" =~ ^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$ ]]; then
  die "--node '$node' is not a DNS-1123 name (lower case letters, digits, '-', '.')"
fi
[ $k3s_pod -eq 0 ] || [ $want_supervisor -eq 1 ] || die "--k3s-pod needs --role supervisor"

# --- architecture -------------------------------------------------------------------------------
normalise_arch() {
  case "$1" in
  arm64 | aarch64) echo aarch64 ;;
  x64 | x86_64 | amd64) echo x86_64 ;;
  *) return 1 ;;
  esac
}
# The machine an ELF file is built for (bytes 18-19 of its header), or nothing.
elf_machine() {
  local hdr
  hdr=$(od -An -v -t x1 -N 20 "$1" 2>/dev/null | tr -d ' \n') || return 0
  [ "${hdr:0:8}" = 7f454c46 ] || return 0
  case "${hdr:36:4}" in
  b700) echo aarch64 ;;
  3e00) echo x86_64 ;;
  *) echo "e_machine-${hdr:36:4}" ;;
  esac
}
# The architecture of the tree: an ELF program in it, else its dynamic loader's name.
rootfs_machine() {
  local f m
  for f in usr/bin/env usr/bin/dash usr/bin/busybox bin/busybox; do
    if [ -f "$rootfs/$f" ] && [ ! -L "$rootfs/$f" ]; then
      m=$(elf_machine "$rootfs/$f")
      if [ -n "$m" ]; then
        echo "$m"
        return
      fi
    fi
  done
  for f in lib/ld-linux-aarch64.so.1 usr/lib/ld-linux-aarch64.so.1 usr/lib/aarch64-linux-gnu; do
    if [ -e "$rootfs/$f" ] || [ -L "$rootfs/$f" ]; then
      echo aarch64
      return
    fi
  done
  for f in lib64/ld-linux-x86-64.so.2 usr/lib64/ld-linux-x86-64.so.2 usr/lib/x86_64-linux-gnu; do
    if [ -e "$rootfs/$f" ] || [ -L "$rootfs/$f" ]; then
      echo x86_64
      return
    fi
  done
}
arch_of() { [ "$1" = aarch64 ] && echo arm64 || echo x64; }

machine=$(rootfs_machine)
if [ -n "$arch_given" ]; then
  given=$(normalise_arch "$arch_given") || die "--arch '$arch_given': use arm64 or x86_64"
  if [ -n "$machine" ] && [ "$machine" != "$given" ]; then
    die "wrong architecture: --arch says $given but ROOTFS '$rootfs' is $machine"
  fi
  machine=$given
fi
[ -n "$machine" ] || die "cannot tell the architecture of ROOTFS '$rootfs' (no usr/bin/env, no dynamic loader): is it a root file system? If it is, say so with --arch arm64 (or --arch x86_64)"
case "$machine" in aarch64 | x86_64) ;; *) die "ROOTFS '$rootfs' is $machine: packages exist for aarch64 (arm64) and x86_64 only" ;; esac

# --- the package ------------------------------------------------------------------------------
here=$(cd "$(dirname "$0")" && pwd -P)
if [ -z "$package" ]; then
  if [ -f "$here/MANIFEST.json" ] && [ -f "$here/lib/deno" ]; then
    package=$here
  else
    repo=$(dirname "$here")
    version=$(sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' "$repo/deno.json" 2>/dev/null | head -1)
    package="$repo/dist/sdv-failover-${version:-VERSION}-linux-$(arch_of "$machine").tar.gz"
    [ -f "$package" ] || die "no package at $package: build it with 'deno task package' or pass --package FILE"
  fi
fi
[ -e "$package" ] || die "package '$package' does not exist"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if [ -d "$package" ]; then
  pkg=$(cd "$package" && pwd -P)
else
  tar -xzf "$package" -C "$tmp" --no-same-owner 2>"$tmp/tar.err" ||
    die "cannot unpack '$package': $(head -c 300 "$tmp/tar.err")"
  pkg=$(find "$tmp" -mindepth 1 -maxdepth 1 -type d | head -1)
fi
[ -n "$pkg" ] && [ -f "$pkg/MANIFEST.json" ] && [ -f "$pkg/SHA256SUMS" ] ||
  die "'$package' is not an sdv-failover package (no MANIFEST.json / SHA256SUMS)"
(cd "$pkg" && sha256sum --quiet --strict -c SHA256SUMS >/dev/null 2>&1) ||
  die "'$package' is damaged: its files do not match its SHA256SUMS"
manifest_field() { sed -n "s/^  \"$1\": \"\\([^\"]*\\)\",\$/\\1/p" "$pkg/MANIFEST.json" | head -1; }
pkg_machine=$(manifest_field machine)
pkg_version=$(manifest_field version)
runtime_machine=$(elf_machine "$pkg/lib/deno")
[ "$runtime_machine" = "$pkg_machine" ] ||
  die "'$package' is inconsistent: MANIFEST.json says $pkg_machine, lib/deno is ${runtime_machine:-not ELF}"
if [ "$pkg_machine" != "$machine" ]; then
  die "wrong architecture: '$(basename "$package")' is for $pkg_machine ($(arch_of "$pkg_machine")), but ROOTFS '$rootfs' is $machine; use sdv-failover-$pkg_version-linux-$(arch_of "$machine").tar.gz"
fi
as_root() { [ "$(id -u)" -eq 0 ]; }
# ln -sfn, but only when the link is missing or points elsewhere (so a re-run touches nothing).
link() { [ -L "$2" ] && [ "$(readlink "$2")" = "$1" ] || ln -sfn "$1" "$2"; }

# --- program: /opt/sdv-failover, replaced as a whole ----------------------------------------------
dest="$rootfs/opt/sdv-failover"
if [ -f "$dest/SHA256SUMS" ] && cmp -s "$dest/SHA256SUMS" "$pkg/SHA256SUMS" &&
  (cd "$dest" && sha256sum --quiet --strict -c SHA256SUMS >/dev/null 2>&1); then
  say "program: /opt/sdv-failover already holds sdv-failover $pkg_version ($pkg_machine), unchanged"
else
  mkdir -p "$rootfs/opt"
  stage="$rootfs/opt/.sdv-failover.new.$$"
  old="$rootfs/opt/.sdv-failover.old.$$"
  rm -rf "$stage" "$old"
  cp -R "$pkg" "$stage"
  if as_root; then chown -R 0:0 "$stage"; fi
  chmod -R u+rwX,go+rX,go-w "$stage"
  if [ -e "$dest" ] || [ -L "$dest" ]; then mv "$dest" "$old"; fi
  mv "$stage" "$dest"
  rm -rf "$old"
  say "program: installed sdv-failover $pkg_version ($pkg_machine) in /opt/sdv-failover"
fi
mkdir -p "$rootfs/usr/local/bin"
link /opt/sdv-failover/bin/sdv-failover "$rootfs/usr/local/bin/sdv-failover"

# --- systemd units (package files: always the package's) and their enablement -----------------------
unitdir="$rootfs/etc/systemd/system"
mkdir -p "$unitdir/multi-user.target.wants"
for role in agent supervisor; do
  unit="sdv-failover-$role.service"
  if ! cmp -s "$pkg/systemd/$unit" "$unitdir/$unit"; then
    install -m 0644 "$pkg/systemd/$unit" "$unitdir/$unit"
  fi
  want=0
  if [ $role = agent ] && [ $want_agent -eq 1 ]; then want=1; fi
  if [ $role = supervisor ] && [ $want_supervisor -eq 1 ] && [ $k3s_pod -eq 0 ]; then want=1; fi
  wants_link="$unitdir/multi-user.target.wants/$unit"
  if [ $want -eq 1 ]; then
    link "/etc/systemd/system/$unit" "$wants_link"
    say "unit: $unit enabled"
  elif [ -e "$wants_link" ] || [ -L "$wants_link" ]; then
    rm -f "$wants_link"
    say "unit: $unit disabled (role not selected)"
  fi
done

# --- configuration: written only when absent ---------------------------------------------------------
confdir="$rootfs/etc/sdv-failover"
mkdir -p "$confdir"
[ "$(stat -c %a "$confdir")" = 755 ] || chmod 0755 "$confdir"
place_config() { # SRC DEST MODE
  if [ -e "$2" ] || [ -L "$2" ]; then
    say "config: kept ${2#"$rootfs"} (present, never overwritten)"
    return 1
  fi
  install -m "$3" "$1" "$2"
  say "config: wrote ${2#"$rootfs"}"
}
place_config "$pkg/config/config.yaml" "$confdir/config.yaml" 0644 || true
agent_env="$pkg/config/agent.env"
if [ -n "$node" ]; then
  cp "$pkg/config/agent.env" "$tmp/agent.env"
  printf 'SDV_NODE=%s\n' "$node" >>"$tmp/agent.env"
  agent_env="$tmp/agent.env"
fi
if ! place_config "$agent_env" "$confdir/agent.env" 0600 && [ -n "$node" ] &&
  ! grep -qx "SDV_NODE=$node" "$confdir/agent.env"; then
  say "warning: --node $node not applied: the existing /etc/sdv-failover/agent.env does not set SDV_NODE=$node; edit it"
fi
place_config "$pkg/config/supervisor.env" "$confdir/supervisor.env" 0600 || true
if [ -n "$node" ] && ! grep -Eq "^[[:space:]]*-[[:space:]]+name:[[:space:]]*${node}[[:space:]]*$" "$confdir/config.yaml"; then
  say "warning: node $node is not named in /etc/sdv-failover/config.yaml; the agent will refuse to start until it is"
fi

# --- K3s manifests for the supervisor (auto-deployed by the K3s server; written only when absent) ----
if [ $want_supervisor -eq 1 ]; then
  mdir="$rootfs/var/lib/rancher/k3s/server/manifests"
  mkdir -p "$mdir"
  place_config "$pkg/k3s/rbac.yaml" "$mdir/sdv-failover-rbac.yaml" 0600 || true
  if [ $k3s_pod -eq 1 ]; then
    place_config "$pkg/k3s/supervisor-pod.yaml" "$mdir/sdv-failover-supervisor.yaml" 0600 || true
  elif [ -e "$mdir/sdv-failover-supervisor.yaml" ]; then
    say "warning: ${mdir#"$rootfs"}/sdv-failover-supervisor.yaml is present: remove it, or the supervisor runs twice (pod and unit)"
  fi
fi

if [ "$rootfs" = / ]; then
  say "done; on this running system: systemctl daemon-reload, then start the enabled units"
else
  say "done: $rootfs is ready to flash"
fi

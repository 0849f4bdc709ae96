#!/usr/bin/env bash
# Installs what the acceptance tests need and is not in the repository, idempotently:
#  - mosquitto (Debian package; the real MQTT broker of the tests)
#  - the real Kubernetes control plane (kube-apiserver, controller-manager, scheduler, kine, kwok),
#    built from Go modules once and cached outside the clone (scripts/controlplane/build.sh)
# Skips the control plane when SDV_SKIP_CONTROLPLANE=1. Needs root for apt-get, Go for the build.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

if ! command -v mosquitto >/dev/null 2>&1 && [ ! -x /usr/sbin/mosquitto ]; then
  echo "setup: installing mosquitto (apt)" >&2
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  $SUDO apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq mosquitto >&2
fi

if [ "${SDV_SKIP_CONTROLPLANE:-0}" != "1" ]; then
  "$here/controlplane/build.sh" >/dev/null
fi
echo "setup: test dependencies ready" >&2

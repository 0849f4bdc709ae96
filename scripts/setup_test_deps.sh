#!/usr/bin/env bash
# Installs what the acceptance tests need and is not in the repository, idempotently:
#  - mosquitto (Debian package; the real MQTT broker of the tests)
#  - the real Kubernetes control plane (kube-apiserver, controller-manager, scheduler, kine, kwok),
#    built from Go modules once and cached outside the clone (scripts/controlplane/build.sh)
#  - qemu-user-static + the arm64 glibc/libgcc (Debian packages), to run the ARM64 package's
#    runtime under emulation (tests/package_test.ts); skipped when SDV_SKIP_EMULATION=1
#  - for the fault campaign (tests/campaign/): nftables and stress-ng (Debian packages) and
#    toxiproxy-server v2.5.0, built from its Go module once and cached outside the clone
#    (scripts/toxiproxy/build.sh); all three skipped when SDV_SKIP_CAMPAIGN=1
#  - for the application examples (tests/app_examples_test.ts): python3 with python3-paho-mqtt, and
#    gcc, pkg-config, libmosquitto-dev and libcjson-dev (Debian packages); skipped when
#    SDV_SKIP_APP_EXAMPLES=1
#  - prometheus (Debian package: `prometheus` and `promtool`), to scrape the runtime's /metrics and
#    run every query of the shipped Grafana dashboard (tests/prometheus_test.ts); skipped when
#    SDV_SKIP_PROMETHEUS=1
# Skips the control plane when SDV_SKIP_CONTROLPLANE=1. Needs root for apt-get, Go for the builds.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

missing=()
if ! command -v mosquitto >/dev/null 2>&1 && [ ! -x /usr/sbin/mosquitto ]; then
  missing+=(mosquitto)
fi
if [ "${SDV_SKIP_EMULATION:-0}" != "1" ]; then
  command -v qemu-aarch64-static >/dev/null 2>&1 || missing+=(qemu-user-static)
  [ -e /usr/aarch64-linux-gnu/lib/ld-linux-aarch64.so.1 ] || missing+=(libc6-arm64-cross)
  [ -e /usr/aarch64-linux-gnu/lib/libgcc_s.so.1 ] || missing+=(libgcc-s1-arm64-cross)
fi
if [ "${SDV_SKIP_CAMPAIGN:-0}" != "1" ]; then
  command -v nft >/dev/null 2>&1 || [ -x /usr/sbin/nft ] || missing+=(nftables)
  command -v stress-ng >/dev/null 2>&1 || missing+=(stress-ng)
fi
if [ "${SDV_SKIP_APP_EXAMPLES:-0}" != "1" ]; then
  /usr/bin/python3 -c 'import paho.mqtt.client' >/dev/null 2>&1 || missing+=(python3-paho-mqtt)
  command -v gcc >/dev/null 2>&1 || missing+=(gcc libc6-dev)
  command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
  [ -e /usr/include/mosquitto.h ] || missing+=(libmosquitto-dev)
  [ -e /usr/include/cjson/cJSON.h ] || missing+=(libcjson-dev)
fi
if [ "${SDV_SKIP_PROMETHEUS:-0}" != "1" ]; then
  { command -v promtool >/dev/null 2>&1 && command -v prometheus >/dev/null 2>&1; } ||
    missing+=(prometheus)
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]} (apt)" >&2
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  $SUDO apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

if [ "${SDV_SKIP_CONTROLPLANE:-0}" != "1" ]; then
  "$here/controlplane/build.sh" >/dev/null
fi
if [ "${SDV_SKIP_CAMPAIGN:-0}" != "1" ]; then
  "$here/toxiproxy/build.sh" >/dev/null
fi
echo "setup: test dependencies ready" >&2

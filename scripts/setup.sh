#!/usr/bin/env bash
# setup.sh: installs every Debian package the build, the tests and the demo need,
# then builds faraday into ./build. Idempotent: safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  # build
  build-essential meson ninja-build pkg-config clang clang-format libclang-rt-14-dev
  libsodium-dev libb2-dev libssl-dev libfmt-dev libcli11-dev libgtest-dev libgmock-dev libbenchmark-dev
  libboost-dev libprotobuf-dev protobuf-compiler libtomlplusplus-dev libmnl-dev nlohmann-json3-dev liburcu-dev
  libipsec-mb-dev libdpdk-dev
  # tests, demo and benchmarks
  iproute2 iputils-ping iperf3 wireguard-go wireguard-tools python3 procps ethtool
  # containers: podman with its CNI backend (runc, cgroupfs), an image from busybox-static
  podman runc conmon containernetworking-plugins busybox-static
)

if [ "$(id -u)" -ne 0 ]; then
  echo "setup.sh: run as root (it installs packages and later tests create network namespaces)" >&2
  exit 1
fi

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup.sh: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if [ ! -d build ]; then
  # CI keeps line tables only (-g1): a quarter less compile time for its one
  # build; a developer's build keeps full debug information for gdb and perf.
  if [ "${CI:-}" = true ]; then
    meson setup build -Dcpp_args=-g1
  else
    meson setup build
  fi
fi
ninja -C build

#!/usr/bin/env bash
# Install every Debian 12 package mmfuzz needs. Idempotent and quiet when all
# are present; uses sudo only when not root.
set -euo pipefail

PKGS=(
  # toolchain
  build-essential cmake ninja-build g++ clang-14 lld-14 llvm-14 libclang-rt-14-dev
  clang-format clang-tidy pkg-config git zstd
  # ci/campaign.sh (fuzz campaigns) and the ClusterFuzzLite seed archives
  python3 zip
  # test, property and benchmark frameworks
  libgtest-dev libgmock-dev librapidcheck-dev libbenchmark-dev
  # libraries
  libboost-stacktrace-dev libfmt-dev libcli11-dev nlohmann-json3-dev
  libzstd-dev zlib1g-dev
  # trace-cmd's trace.dat reader and the fuzzers
  libtraceevent-dev libtracefs-dev libtracecmd-dev trace-cmd afl++
)

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "deps.sh: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  SUDO="sudo"
fi
echo "deps.sh: installing ${missing[*]}"
# sudo resets the environment, so pass the frontend through env.
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

#!/bin/bash
# Install the Debian packages kiln needs to build and test, if missing.
# Run as root (CI, `make check`); as an ordinary user it only reports.
set -euo pipefail

PKGS=(
  build-essential meson ninja-build pkg-config clang clang-format
  libclang-rt-14-dev
  libseccomp-dev libjansson-dev libarchive-dev libsqlite3-dev libsodium-dev
  libmicrohttpd-dev libfyaml-dev libcurl4-openssl-dev sqlite3
  minisign
  bubblewrap iproute2 util-linux procps coreutils python3 curl openssl systemd
  prometheus chromium chromium-driver python3-websocket
  golang-go golang-golang-x-mod-dev
)

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: missing Debian packages: ${missing[*]}" >&2
  echo "install-deps: run 'sudo apt-get install ${missing[*]}' (or make check as root)" >&2
  exit 1
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"

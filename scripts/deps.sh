#!/usr/bin/env bash
# Installs the Debian packages the build and the tests need when they are missing.
# Idempotent; runs apt-get update only when something must be installed.
set -euo pipefail
need=()
for p in libpcsclite-dev pcscd vsmartcard-vpcd pcsc-tools vsftpd openssl chromium; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if ((${#need[@]})); then
  echo "deps: installing ${need[*]}" >&2
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

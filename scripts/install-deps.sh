#!/usr/bin/env bash
# Installs the Debian packages Ferry needs, only those missing. Needs root.
set -euo pipefail
pkgs=(qemu-system-x86 qemu-utils busybox-static cpio kmod gcc libc6-dev iproute2 iputils-ping curl procps chromium etcd-server etcd-client)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

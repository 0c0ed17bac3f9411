#!/usr/bin/env bash
# Installs the Debian packages Ferry needs, only those missing. Needs root.
#
# QEMU: at least 9.0. Debian 12 ships 7.2, whose TCG dirty tracking loses guest writes during a
# migration unless guest RAM is trimmed, and the trim costs the guest a stall at the start of every
# move (src/qemu/argv.ts). On Debian 12 the script therefore takes QEMU from Debian's own
# bookworm-backports suite (10.0 there), adding that suite to apt's sources if it is not there.
# FERRY_QEMU=stock does not upgrade Debian 12's QEMU 7.2 (Ferry runs on it, trimming RAM under
# TCG); it never downgrades a QEMU already upgraded.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
pkgs=(busybox-static cpio kmod gcc libc6-dev iproute2 iputils-ping curl procps tcpdump openssl chromium etcd-server etcd-client)
qemu_pkgs=(qemu-system-x86 qemu-utils)
codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
updated=0
apt_update() { if ((updated == 0)); then apt-get update -qq; updated=1; fi; }

installed_major() {  # the major version of an installed package, or 0
  local v
  v=$(dpkg-query -W -f='${Status} ${Version}' "$1" 2>/dev/null | sed -n 's/^install ok installed \([0-9]*:\)\{0,1\}\([0-9]*\).*/\2/p')
  echo "${v:-0}"
}

qemu_from=()
if [[ $codename == bookworm && ${FERRY_QEMU:-} != stock ]]; then
  if (($(installed_major qemu-system-x86) < 9 || $(installed_major qemu-utils) < 9)); then
    # An active entry: a .list line or a .sources Suites field, not a comment (a stray mention
    # elsewhere is caught below, when the install does not bring QEMU 9 or later).
    if ! grep -rqsE '^[^#]*bookworm-backports' --include='*.list' --include='*.sources' /etc/apt/sources.list /etc/apt/sources.list.d/; then
      echo "adding Debian's bookworm-backports suite to apt's sources (for QEMU 10)"
      cat > /etc/apt/sources.list.d/ferry-bookworm-backports.sources <<'SRC'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
    fi
    qemu_from=(-t bookworm-backports)
  fi
else
  pkgs+=("${qemu_pkgs[@]}")
fi

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  apt_update
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
if ((${#qemu_from[@]})); then
  echo "installing: ${qemu_pkgs[*]} from bookworm-backports"
  apt_update
  apt-get install -y -qq --no-install-recommends "${qemu_from[@]}" "${qemu_pkgs[@]}"
  if (($(installed_major qemu-system-x86) < 9)); then
    echo "error: QEMU is still older than 9.0 after installing from bookworm-backports; check apt's sources, or run with FERRY_QEMU=stock to keep QEMU 7.2" >&2
    exit 1
  fi
fi

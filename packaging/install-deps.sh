#!/usr/bin/env bash
# Installs what building, testing and the demo need on Debian/Ubuntu. Idempotent; run as root.
set -euo pipefail
need=()
win_need=()
for pkg_cmd in iproute2:ip nftables:nft conntrack:conntrack iputils-ping:ping iperf3:iperf3 procps:ps \
               build-essential:cc pkg-config:pkg-config curl:curl ca-certificates:update-ca-certificates \
               miniupnpd-nftables:miniupnpd miniupnpc:upnpc \
               dpkg-dev:dpkg-shlibdeps systemd:systemd-analyze dbus-daemon:dbus-daemon x11-utils:xwininfo \
               desktop-file-utils:desktop-file-validate xclip:xclip; do
  pkg=${pkg_cmd%%:*}; cmd=${pkg_cmd##*:}
  command -v "$cmd" >/dev/null 2>&1 || need+=("$pkg")
done
# warren-gui and its Xvfb smoke test: an X server, Mesa's software GL, the X11 libraries winit loads.
command -v Xvfb >/dev/null 2>&1 || need+=(xvfb)
for pkg in libgl1-mesa-dri libegl1 libgl1 libxkbcommon-x11-0 libxcursor1 libxrandr2 libxi6; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'ok installed' || need+=("$pkg")
done
# The remote desktop lab tests (lab/tests/remote_desktop.rs): a real RDP client (FreeRDP 2)
# under Xvfb, and xwd + ImageMagick for screenshots of what it shows. The server is below.
for pkg_cmd in freerdp2-x11:xfreerdp x11-apps:xwd imagemagick:/usr/bin/convert; do
  pkg=${pkg_cmd%%:*}; cmd=${pkg_cmd##*:}
  command -v "$cmd" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # iperf3 asks whether to start a daemon; answer no.
  echo "iperf3 iperf3/start_daemon boolean false" | debconf-set-selections 2>/dev/null || true
  # The NAT lab's port-mapping router runs miniupnpd in a namespace: only the binary
  # (miniupnpd-nftables), not the `miniupnpd` package, whose service would start on this host.
  apt-get install -y -qq "${need[@]}" >/dev/null
fi
# Installs packages whose services are not wanted on this host (the lab tests run the programs
# in their own namespaces with their own config): the services are kept from starting while the
# packages install (policy-rc.d, unless one exists already) and disabled afterwards under systemd.
# Usage: install_without_services "PKG…" "SERVICE…"
install_without_services() {
  local pkgs=$1 services=$2 own_policy= rc=0
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    own_policy=1
  fi
  # shellcheck disable=SC2086 # word splitting of the package list is wanted
  apt-get install -y -qq --no-install-recommends $pkgs >/dev/null || rc=$?
  if [ -n "$own_policy" ]; then rm -f /usr/sbin/policy-rc.d; fi
  [ "$rc" -eq 0 ] || exit "$rc"
  if [ -d /run/systemd/system ]; then
    # shellcheck disable=SC2086
    systemctl disable --now $services >/dev/null 2>&1 || true
  fi
}
# The game discovery test's real LAN discovery programs: Samba's NetBIOS name server nmbd (in
# `samba`) and nmblookup (`samba-common-bin`), both run in lab namespaces.
if ! command -v nmbd >/dev/null 2>&1 || ! command -v nmblookup >/dev/null 2>&1; then
  echo "installing: samba samba-common-bin (binaries only; their services stay off)"
  install_without_services "samba samba-common-bin" "smbd nmbd samba-ad-dc"
  command -v nmbd >/dev/null 2>&1 || { echo "samba installed but nmbd is missing" >&2; exit 1; }
fi
# The remote desktop lab tests' RDP server, xrdp (with xrdp-sesman), run in the foreground.
if ! command -v xrdp >/dev/null 2>&1 || ! command -v xrdp-sesman >/dev/null 2>&1; then
  echo "installing: xrdp (binaries only; its services stay off)"
  install_without_services xrdp "xrdp xrdp-sesman"
  command -v xrdp >/dev/null 2>&1 || { echo "xrdp installed but the xrdp program is missing" >&2; exit 1; }
fi
# The coordinator's PostgreSQL store tests start their own server (initdb in a temporary
# directory, as nobody; lab/src/pg.rs): only the programs are wanted, not a
# cluster of this host's own nor its service, so neither is created nor started here.
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  echo "installing: postgresql (programs only; no cluster, no service)"
  mkdir -p /etc/postgresql-common/createcluster.d
  echo "create_main_cluster = false" > /etc/postgresql-common/createcluster.d/warren-tests.conf
  install_without_services postgresql postgresql
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 ||
    { echo "postgresql installed but initdb is missing" >&2; exit 1; }
fi
if ! command -v cargo >/dev/null 2>&1 && [ ! -x "$HOME/.cargo/bin/cargo" ]; then
  echo "installing the Rust toolchain with rustup"
  curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
fi
# The Windows build (issue 24, .ci/windows): Rust's x86_64-pc-windows-gnu target, Debian's
# mingw-w64 to link it, Wine to run its tests and the Windows coordinator, NSIS to make the
# installer and 7-Zip to list what is in it.
for pkg_cmd in gcc-mingw-w64-x86-64:x86_64-w64-mingw32-gcc wine:wine wine64:/usr/lib/wine/wine64 \
               nsis:makensis p7zip-full:7z; do
  pkg=${pkg_cmd%%:*}; cmd=${pkg_cmd##*:}
  command -v "$cmd" >/dev/null 2>&1 || win_need+=("$pkg")
done
if [ ${#win_need[@]} -gt 0 ]; then
  echo "installing: ${win_need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${win_need[@]}" >/dev/null
fi
PATH="$HOME/.cargo/bin:$PATH" rustup target list --installed 2>/dev/null |
  grep -qx x86_64-pc-windows-gnu ||
  PATH="$HOME/.cargo/bin:$PATH" rustup target add x86_64-pc-windows-gnu

#!/usr/bin/env bash
# Builds the Debian packages from this workspace with plain dpkg-deb (no cargo-deb):
#   warren              warrend, warren, the coordinator for `warren host` in /usr/lib/warren
#                       (+ warren-gui when target/PROFILE/warren-gui exists),
#                       warrend.service, man pages, shell completions, group `warren`
#   warren-coordinator  warren-coordinator, warren-coordinator.service, man page
#
#   packaging/build-deb.sh [--profile release|debug] [--no-build] [--out DIR] [--fast] [--version V]
#
# --profile  which cargo profile to build and package (default release; the test uses debug,
#            which CI has already built, to save minutes)
# --no-build package the binaries already in target/PROFILE (fails if one is missing)
# --out      where the .deb files go (default target/debian)
# --fast     gzip -1 instead of xz (for tests)
# --version  the packages' version instead of the workspace's (the test's upgrade)
# Prints the path of each package it wrote, one a line, on stdout.
set -euo pipefail
umask 022
root="$(cd "$(dirname "$0")/.." && pwd)"
profile=release build=1 out="" compress=(-Zxz) version=""
while [ $# -gt 0 ]; do
  case "$1" in
    --profile) profile="$2"; shift 2 ;;
    --profile=*) profile="${1#*=}"; shift ;;
    --no-build) build=0; shift ;;
    --out) out="$2"; shift 2 ;;
    --out=*) out="${1#*=}"; shift ;;
    --fast) compress=(-Zgzip -z1); shift ;;
    --version) version="$2"; shift 2 ;;
    --version=*) version="${1#*=}"; shift ;;
    -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "build-deb.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
case "$profile" in
  release) cargo_profile=(--release) dir=release ;;
  debug|dev) cargo_profile=() dir=debug ;;
  *) echo "build-deb.sh: --profile is release or debug" >&2; exit 2 ;;
esac
export PATH="$HOME/.cargo/bin:$PATH"
target="${CARGO_TARGET_DIR:-$root/target}"
bin="$target/$dir"
out="${out:-$target/debian}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"

if [ "$build" = 1 ]; then
  (cd "$root" && cargo build "${cargo_profile[@]}" --workspace --locked >&2)
fi
for b in warrend warren warren-coordinator; do
  [ -x "$bin/$b" ] || { echo "build-deb.sh: $bin/$b is missing (build first, or drop --no-build)" >&2; exit 1; }
done
gui=0
[ -x "$bin/warren-gui" ] && gui=1

[ -n "$version" ] || version="$(sed -n 's/^version = "\(.*\)"/\1/p' "$root/Cargo.toml" | head -n1)"
arch="$(dpkg --print-architecture)"
maintainer="Warren developers <warren@localhost>"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# install_bin SRC DEST: a copy without debug info, mode 0755.
install_bin() {
  install -D -m 0755 "$1" "$2"
  if command -v strip >/dev/null 2>&1; then strip --strip-unneeded "$2"; fi
}

# man_page_to OUT NAME SECTION SUMMARY EXE [SUBCOMMAND...]: a man page whose body is EXE's
# --help, then each SUBCOMMAND's.
man_page_to() {
  local outp="$1"; shift
  local name="$1" section="$2" summary="$3" exe="$4"; shift 4
  local esc='s/\\/\\e/g; s/^\([.'"'"']\)/\\\&\1/'
  mkdir -p "$(dirname "$outp")"
  {
    printf '.TH %s %s "" "Warren %s" "Warren"\n' "$(echo "$name" | tr '[:lower:]' '[:upper:]')" "$section" "$version"
    printf '.SH NAME\n%s \\- %s\n' "${name//-/\\-}" "$summary"
    printf '.SH DESCRIPTION\n.nf\n'
    "$exe" --help | sed "$esc"
    printf '.fi\n'
    for sub in "$@"; do
      printf '.SS %s\n.nf\n' "$sub"
      "$exe" "$sub" --help | sed "$esc"
      printf '.fi\n'
    done
    printf '.SH SEE ALSO\nwarren(1), warrend(8), warren\\-coordinator(8); /usr/share/doc/warren/README.md\n'
  } | gzip -9n > "$outp"
}

# depends FALLBACK BIN...: shared-library dependencies from dpkg-shlibdeps, else FALLBACK.
depends() {
  local fallback="$1"; shift
  if command -v dpkg-shlibdeps >/dev/null 2>&1; then
    local d="$work/shlibs"
    mkdir -p "$d/debian"
    printf 'Source: warren\n\nPackage: warren\nArchitecture: any\n' > "$d/debian/control"
    local line
    if line="$(cd "$d" && dpkg-shlibdeps -O "$@" 2>/dev/null)"; then
      line="${line#shlibs:Depends=}"
      [ -n "$line" ] && { echo "$line"; return; }
    fi
    echo "build-deb.sh: dpkg-shlibdeps found nothing; Depends falls back to '$fallback'" >&2
  fi
  echo "$fallback"
}

# control PKGDIR NAME DEPENDS DESCRIPTION...
control() {
  local d="$1" name="$2" deps="$3"; shift 3
  local size
  size="$(du -sk --exclude=DEBIAN "$d" | cut -f1)"
  {
    echo "Package: $name"
    echo "Version: $version"
    echo "Architecture: $arch"
    echo "Maintainer: $maintainer"
    echo "Installed-Size: $size"
    echo "Depends: $deps"
    echo "Section: net"
    echo "Priority: optional"
    for l in "$@"; do echo "$l"; done
  } > "$d/DEBIAN/control"
}

copyright() {
  install -d "$1"
  cat > "$1/copyright" <<EOF
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: warren

Files: *
Copyright: Warren developers
License: Apache-2.0
 On Debian systems the full text is in /usr/share/common-licenses/Apache-2.0.
EOF
}

pkg="$root/packaging"

# ---- warren -----------------------------------------------------------------------------
p="$work/warren"
install -d "$p/DEBIAN"
install_bin "$bin/warrend" "$p/usr/bin/warrend"
install_bin "$bin/warren" "$p/usr/bin/warren"
# `warren host`: warrend runs this coordinator for networks hosted on this PC (the
# warren-coordinator package, for servers, has its own copy on PATH and its own service).
install_bin "$bin/warren-coordinator" "$p/usr/lib/warren/warren-coordinator"
install -D -m 0644 "$pkg/systemd/warrend.service" "$p/lib/systemd/system/warrend.service"
install -D -m 0644 "$pkg/default/warren" "$p/etc/default/warren"
conffiles=(/etc/default/warren)
subs="$("$p/usr/bin/warren" --help | sed -n '/^Commands:/,/^$/p' | awk 'NR>1 && $1!="help" && NF {print $1}')"
# shellcheck disable=SC2086
man_page_to "$p/usr/share/man/man1/warren.1.gz" warren 1 "control the Warren overlay on this host" \
  "$p/usr/bin/warren" $subs
man_page_to "$p/usr/share/man/man8/warrend.8.gz" warrend 8 "the Warren overlay VPN daemon" \
  "$p/usr/bin/warrend"
"$p/usr/bin/warren" completions bash | install -D -m 0644 /dev/stdin "$p/usr/share/bash-completion/completions/warren"
"$p/usr/bin/warren" completions zsh | install -D -m 0644 /dev/stdin "$p/usr/share/zsh/vendor-completions/_warren"
"$p/usr/bin/warren" completions fish | install -D -m 0644 /dev/stdin "$p/usr/share/fish/vendor_completions.d/warren.fish"
copyright "$p/usr/share/doc/warren"
gzip -9n < "$root/README.md" > "$p/usr/share/doc/warren/README.md.gz"
chmod 0644 "$p/usr/share/doc/warren/"*
# The guides, troubleshooting and reference pages, as README.md links them (docs/…).
cp -r "$root/docs" "$p/usr/share/doc/warren/docs"
find "$p/usr/share/doc/warren/docs" -type d -exec chmod 0755 {} + -o -type f -exec chmod 0644 {} +
bins=("$p/usr/bin/warrend" "$p/usr/bin/warren" "$p/usr/lib/warren/warren-coordinator")
if [ "$gui" = 1 ]; then
  install_bin "$bin/warren-gui" "$p/usr/bin/warren-gui"
  man_page_to "$p/usr/share/man/man1/warren-gui.1.gz" warren-gui 1 "the Warren window and tray icon" \
    "$p/usr/bin/warren-gui"
  install -D -m 0644 "$pkg/desktop/warren-gui.desktop" "$p/usr/share/applications/warren-gui.desktop"
  install -D -m 0644 "$pkg/desktop/warren-gui-autostart.desktop" "$p/etc/xdg/autostart/warren-gui.desktop"
  install -D -m 0644 "$pkg/icons/warren.svg" "$p/usr/share/icons/hicolor/scalable/apps/warren.svg"
  conffiles+=(/etc/xdg/autostart/warren-gui.desktop)
  bins+=("$p/usr/bin/warren-gui")
fi
printf '%s\n' "${conffiles[@]}" > "$p/DEBIAN/conffiles"
for s in postinst prerm postrm; do install -m 0755 "$pkg/debian/warren/$s" "$p/DEBIAN/$s"; done
gui_line="warrend runs as a systemd service; warren is its command-line client."
[ "$gui" = 1 ] && gui_line="warrend runs as a systemd service; warren is its command-line client and warren-gui its desktop app."
# warren-gui loads its window system's libraries at run time (winit, glutin: dlopen), so
# dpkg-shlibdeps cannot see them; recommended, so a server installed without recommends
# does not pull in X11 and GL.
recommends="systemd"
[ "$gui" = 1 ] && recommends="$recommends, libgl1, libegl1, libx11-6, libx11-xcb1, libxcb1, libxkbcommon-x11-0, libxcursor1, libxrandr2, libxi6"
control "$p" warren "$(depends 'libc6' "${bins[@]}"), adduser, nftables" \
  "Recommends: $recommends" \
  "Suggests: systemd-resolved" \
  "Description: peer-to-peer VPN overlay (daemon and client)" \
  " Warren gives this host a stable overlay address and carries IP packets to its" \
  " peers inside WireGuard-encrypted UDP, directly or through a coordinator's relay." \
  " $gui_line" \
  " Members of group warren may use it without sudo."
deb="$out/warren_${version}_${arch}.deb"
dpkg-deb --root-owner-group "${compress[@]}" --build "$p" "$deb" >&2
echo "$deb"

# ---- warren-coordinator -----------------------------------------------------------------
p="$work/warren-coordinator"
install -d "$p/DEBIAN"
install_bin "$bin/warren-coordinator" "$p/usr/bin/warren-coordinator"
install -D -m 0644 "$pkg/systemd/warren-coordinator.service" "$p/lib/systemd/system/warren-coordinator.service"
install -D -m 0644 "$pkg/default/warren-coordinator" "$p/etc/default/warren-coordinator"
echo /etc/default/warren-coordinator > "$p/DEBIAN/conffiles"
man_page_to "$p/usr/share/man/man8/warren-coordinator.8.gz" warren-coordinator 8 \
  "the Warren coordinator: networks, hole punching, relay" "$p/usr/bin/warren-coordinator" relay key
copyright "$p/usr/share/doc/warren-coordinator"
for s in postinst prerm postrm; do install -m 0755 "$pkg/debian/warren-coordinator/$s" "$p/DEBIAN/$s"; done
control "$p" warren-coordinator "$(depends 'libc6' "$p/usr/bin/warren-coordinator")" \
  "Recommends: systemd" \
  "Description: Warren coordinator: networks, hole punching and relay" \
  " The server Warren hosts connect to: networks with passwords and invites, address" \
  " leases, STUN, hole punching, and a relay for hosts that cannot meet directly." \
  " Runs as a systemd service under a dynamic user."
deb="$out/warren-coordinator_${version}_${arch}.deb"
dpkg-deb --root-owner-group "${compress[@]}" --build "$p" "$deb" >&2
echo "$deb"

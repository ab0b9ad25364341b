#!/usr/bin/env bash
# Builds Warren's Windows installer with NSIS (makensis, Debian package nsis).
#
#   packaging/windows/build-installer.sh BIN_DIR OUT.exe
#
# BIN_DIR  holds warrend.exe, warren.exe, warren-gui.exe, warren-coordinator.exe (x86-64 Windows builds),
#          e.g. target/x86_64-pc-windows-gnu/release
# OUT.exe  the installer to write
#
# wintun.dll (amd64) and its license come from, in this order:
#   WINTUN_DLL=/path/wintun.dll  (the license must be LICENSE.txt in that folder or its parent,
#                                 or be given as WINTUN_LICENSE=/path)
#   the wintun or wintun-bindings crate in the workspace's dependency graph for Windows
#   the wintun crate fetched by cargo into a throwaway project (tun-rs, which the daemon uses,
#   loads wintun.dll at run time and pulls neither crate)
# Both crates ship the signed DLLs from wintun.net at wintun/bin/ARCH/wintun.dll with the
# license at wintun/LICENSE.txt.
# VERSION=x.y.z overrides the version from the workspace Cargo.toml.
# Prints the installer's path on stdout.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
here="$root/packaging/windows"

if [ $# -ne 2 ]; then
  echo "usage: $0 BIN_DIR OUT.exe" >&2
  exit 2
fi
bin_dir="$1"
out="$2"
case "$out" in /*) ;; *) out="$PWD/$out" ;; esac

die() { echo "build-installer: $*" >&2; exit 1; }

# PE32+ x86-64: "PE\0\0" at the offset in 0x3c, machine 0x8664 after it, optional-header
# magic 0x20b 20 bytes further on. Read with od so it does not depend on file(1)'s wording.
pe_x64() {
  local f="$1" pe sig machine magic
  [ "$(od -An -c -N2 "$f" | tr -d ' ')" = "MZ" ] || return 1
  pe=$(od -An -tu4 -j60 -N4 "$f" | tr -d ' ')
  sig=$(od -An -tx1 -j"$pe" -N4 "$f" | tr -d ' ')
  machine=$(od -An -tx2 -j$((pe + 4)) -N2 "$f" | tr -d ' ')
  magic=$(od -An -tx2 -j$((pe + 24)) -N2 "$f" | tr -d ' ')
  [ "$sig" = "50450000" ] && [ "$machine" = "8664" ] && [ "$magic" = "020b" ]
}

for exe in warrend.exe warren.exe warren-gui.exe warren-coordinator.exe; do
  [ -f "$bin_dir/$exe" ] || die "$bin_dir/$exe is missing (cargo build --target x86_64-pc-windows-gnu)"
  pe_x64 "$bin_dir/$exe" || die "$bin_dir/$exe is not a 64-bit (PE32+ x86-64) Windows program"
done

# ---- wintun ---------------------------------------------------------------------------
# --locked: never rewrite the workspace's Cargo.lock (a stale lock falls through to the fetch).
wintun_from_crate() { # prints the crate directory of wintun or wintun-bindings, if any
  (cd "$root" && cargo metadata --locked --format-version 1 --filter-platform x86_64-pc-windows-gnu 2>/dev/null) |
    python3 -c '
import json, os, sys
for p in json.load(sys.stdin)["packages"]:
    if p["name"] in ("wintun", "wintun-bindings"):
        print(os.path.dirname(p["manifest_path"]))
        break
' 2>/dev/null || true
}

wintun_fetch() { # fetches the wintun crate into cargo's registry; prints its directory
  local tmp
  tmp=$(mktemp -d)
  mkdir -p "$tmp/src"
  cat >"$tmp/Cargo.toml" <<'EOF'
[package]
name = "wintun-fetch"
version = "0.0.0"
edition = "2021"
[dependencies]
wintun = "0.5"
EOF
  echo 'fn main() {}' >"$tmp/src/main.rs"
  (cd "$tmp" && cargo fetch -q >&2 && cargo metadata --format-version 1 2>/dev/null) |
    python3 -c '
import json, os, sys
for p in json.load(sys.stdin)["packages"]:
    if p["name"] == "wintun":
        print(os.path.dirname(p["manifest_path"]))
' || true
  rm -rf "$tmp"
}

if [ -n "${WINTUN_DLL:-}" ]; then
  dll="$WINTUN_DLL"
  lic="${WINTUN_LICENSE:-}"
  if [ -z "$lic" ]; then
    for c in "$(dirname "$dll")/LICENSE.txt" "$(dirname "$dll")/../LICENSE.txt" \
      "$(dirname "$dll")/../../LICENSE.txt"; do
      [ -f "$c" ] && { lic="$c"; break; }
    done
  fi
else
  crate="$(wintun_from_crate)"
  [ -n "$crate" ] || crate="$(wintun_fetch)"
  [ -n "$crate" ] || die "no wintun.dll: cargo could not fetch the wintun crate; give WINTUN_DLL=/path/wintun.dll"
  dll="$crate/wintun/bin/amd64/wintun.dll"
  lic="$crate/wintun/LICENSE.txt"
fi
[ -f "$dll" ] || die "$dll is missing"
pe_x64 "$dll" || die "$dll is not the amd64 wintun.dll"
if [ -z "$lic" ] || [ ! -f "$lic" ]; then die "no license for $dll (give WINTUN_LICENSE=/path)"; fi
grep -q "Prebuilt Binaries License" "$lic" || die "$lic is not wintun's prebuilt binaries license"

# ---- version --------------------------------------------------------------------------
version="${VERSION:-$(awk '
  /^\[/ { in_ws = ($0 == "[workspace.package]") }
  in_ws && $1 == "version" { gsub(/"/, "", $3); print $3; exit }' "$root/Cargo.toml")}"
[ -n "$version" ] || die "no version in [workspace.package] of $root/Cargo.toml"

# ---- stage and build ------------------------------------------------------------------
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
cp "$bin_dir/warrend.exe" "$bin_dir/warren.exe" "$bin_dir/warren-gui.exe" \
  "$bin_dir/warren-coordinator.exe" "$dll" "$stage/"
cp "$lic" "$stage/wintun-LICENSE.txt"

defines=()
# The icon is drawn from the SVG when ImageMagick can (it needs its SVG delegate); without
# it the installer keeps NSIS's default icon.
if command -v convert >/dev/null &&
  convert -background none -density 384 "$root/packaging/icons/warren.svg" -depth 8 \
    -define icon:auto-resize=256,48,32,16 "$stage/warren.ico" 2>/dev/null; then
  defines+=("-DICON=$stage/warren.ico")
else
  echo "build-installer: no ImageMagick with SVG support: the installer has NSIS's default icon" >&2
fi

mkdir -p "$(dirname "$out")"
makensis -V2 "-DVERSION=$version" "-DSTAGE=$stage" "-DOUTFILE=$out" "${defines[@]}" \
  "$here/warren.nsi" >&2
echo "$out"

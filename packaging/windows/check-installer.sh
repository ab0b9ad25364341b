#!/usr/bin/env bash
# Checks a Warren installer built by build-installer.sh:
#
#   packaging/windows/check-installer.sh OUT.exe [BIN_DIR]
#
# 1. The payload, as 7-Zip lists it, is exactly the expected files (and, given BIN_DIR, the three
#    programs in it are byte for byte the ones packed).
# 2. Under Wine, in a throwaway 64-bit prefix: a silent install, an upgrade over it, the files,
#    registry values (autostart, PATH, Add/Remove Programs, the service's registration), the
#    Start-menu shortcut; a silent uninstall that keeps ProgramData\Warren and restores PATH
#    byte for byte; a second round where the user already had the folder on PATH and the
#    uninstall has /PURGE.
#    The PATH is made longer than NSIS's 1024-character strings first, which an installer
#    using NSIS strings for it would cut short.
#    Nothing here needs the programs to run: the service's start may fail (dummy programs,
#    Wine's service manager) and that is not checked. Without wine only step 1 runs.
# VERSION=x.y.z: the version the installer should show (default: the workspace's).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
  echo "usage: $0 OUT.exe [BIN_DIR]" >&2
  exit 2
fi
installer="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
bin_dir="${2:-}"
version="${VERSION:-$(awk '
  /^\[/ { in_ws = ($0 == "[workspace.package]") }
  in_ws && $1 == "version" { gsub(/"/, "", $3); print $3; exit }' "$root/Cargo.toml")}"

failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
ok() { echo "ok: $*" >&2; }
# expect WHAT ACTUAL EXPECTED
expect() {
  if [ "$2" = "$3" ]; then ok "$1"; else fail "$1: got [$2], want [$3]"; fi
}

tmp=$(mktemp -d)
cleanup() {
  if [ -n "${WINEPREFIX:-}" ] && [ -d "$WINEPREFIX" ]; then
    wineserver -k >/dev/null 2>&1 || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT

# ---- 1. payload ------------------------------------------------------------------------
programs=(warrend.exe warren.exe warren-gui.exe)
payload=("${programs[@]}" wintun.dll wintun-LICENSE.txt)
# 7-Zip lists the files NSIS extracts: the payload, the uninstaller it writes (no size: it is
# made at install time) and the stock plugins under $PLUGINSDIR. The plugins are listed too
# so that a third-party plugin, which Debian's nsis cannot supply, shows up here.
expected_list=$(printf '%s\n' "${payload[@]}" uninstall.exe \
  '$PLUGINSDIR/System.dll' '$PLUGINSDIR/modern-wizard.bmp' '$PLUGINSDIR/nsDialogs.dll' \
  '$PLUGINSDIR/nsExec.dll' | LC_ALL=C sort)
7z l -slt "$installer" >"$tmp/list" || { echo "FAIL: 7z cannot read $installer" >&2; exit 1; }
grep -q '^Type = Nsis' "$tmp/list" || fail "7z does not see an NSIS installer"
# Entries follow the "----------" line; each has "Path = ..." then "Size = ...".
awk '/^----------/ { on = 1; next } on && /^Path = / { sub(/^Path = /, ""); print }' "$tmp/list" |
  LC_ALL=C sort >"$tmp/paths"
if [ "$(cat "$tmp/paths")" = "$expected_list" ]; then
  ok "payload is exactly: $(tr '\n' ' ' <"$tmp/paths")"
else
  fail "payload differs (- expected, + found):"
  diff <(echo "$expected_list") "$tmp/paths" | grep '^[<>]' | sed 's/^</  -/; s/^>/  +/' >&2
fi
size_of() { # the size 7z lists for an entry
  awk -v p="$1" '/^----------/ { on = 1 } on && $0 == "Path = " p { f = 1; next }
    f && /^Size = / { sub(/^Size = /, ""); print; exit }' "$tmp/list"
}
mkdir "$tmp/payload"
7z x -y -o"$tmp/payload" "$installer" "${payload[@]}" >/dev/null
for f in "${payload[@]}"; do
  [ -f "$tmp/payload/$f" ] || { fail "$f not extracted"; continue; }
  expect "$f: listed size is the extracted size" "$(size_of "$f")" "$(stat -c %s "$tmp/payload/$f")"
done
if [ -n "$bin_dir" ]; then
  for f in "${programs[@]}"; do
    if cmp -s "$bin_dir/$f" "$tmp/payload/$f"; then ok "$f is $bin_dir/$f"; else fail "$f differs from $bin_dir/$f"; fi
  done
fi
grep -q "Prebuilt Binaries License" "$tmp/payload/wintun-LICENSE.txt" ||
  fail "wintun-LICENSE.txt is not wintun's prebuilt binaries license"
file "$tmp/payload/wintun.dll" | grep -q 'PE32+.*x86-64' || fail "wintun.dll is not the amd64 DLL"

# ---- 2. install and uninstall under Wine -----------------------------------------------
if ! command -v wine >/dev/null; then
  echo "SKIP: no wine; only the payload was checked" >&2
  [ "$failures" -eq 0 ] || { echo "$failures check(s) failed" >&2; exit 1; }
  exit 0
fi
export WINEPREFIX="$tmp/prefix" WINEDEBUG=-all WINEARCH=win64
# No Mono/Gecko install prompts in a fresh prefix.
export WINEDLLOVERRIDES="mscoree,mshtml="
drive_c="$WINEPREFIX/drive_c"
instdir='C:\Program Files\Warren'
unixdir="$drive_c/Program Files/Warren"
data="$drive_c/ProgramData/Warren"
lnk="$drive_c/ProgramData/Microsoft/Windows/Start Menu/Programs/Warren.lnk"
env_key='HKLM\System\CurrentControlSet\Control\Session Manager\Environment'
run_key='HKLM\Software\Microsoft\Windows\CurrentVersion\Run'
uninst_key='HKLM\Software\Microsoft\Windows\CurrentVersion\Uninstall\Warren'
svc_key='HKLM\System\CurrentControlSet\Services\Warren'

wineboot --init >/dev/null 2>&1
wineserver -w

# reg_get KEY NAME: the value's data ("" and status 1 if the key or value is missing)
reg_get() {
  local out
  out=$(wine reg query "$1" /v "$2" 2>/dev/null | tr -d '\r') || return 1
  printf '%s\n' "$out" | awk -v n="$2" '
    { line = $0; sub(/^ +/, "", line) }
    index(line, n "    ") == 1 {
      line = substr(line, length(n) + 5); sub(/^REG_[A-Z_]+    /, "", line); print line; found = 1 }
    END { exit !found }'
}
reg_type() {
  wine reg query "$1" /v "$2" 2>/dev/null | tr -d '\r' | awk -v n="$2" '$1 == n { print $2 }'
}
key_exists() { wine reg query "$1" >/dev/null 2>&1; }
set_path() { wine reg add "$env_key" /v Path /t REG_EXPAND_SZ /d "$1" /f >/dev/null; }

# The silent uninstall runs a copy of itself from %TEMP% and returns at once (NSIS's
# _?=DIR would keep it in place, but wine quotes that argument because of the space in
# "Program Files", and quoted it is not recognised). wineserver -w waits for every process
# of the prefix, that copy included.
uninstall() {
  wine "$unixdir/uninstall.exe" "$@" || fail "uninstall $* exited with $?"
  timeout 60 wineserver -w || fail "the uninstaller did not finish in 60 s"
}

# A PATH longer than NSIS's 1024-character strings, with a look-alike entry that must survive.
path0="$(reg_get "$env_key" Path)"
for i in $(seq -w 1 40); do path0="$path0;C:\\Tools\\a-rather-long-folder-name-$i\\bin"; done
path0="$path0;$instdir"2
set_path "$path0"
expect "PATH set up (${#path0} characters)" "$(reg_get "$env_key" Path)" "$path0"

check_installed() { # $1: PATH expected after install, $2: PathAdded expected
  local f
  for f in "${payload[@]}"; do
    if cmp -s "$tmp/payload/$f" "$unixdir/$f"; then ok "installed $f"; else fail "$f not installed intact"; fi
  done
  [ -f "$unixdir/uninstall.exe" ] && ok "installed uninstall.exe" || fail "no uninstall.exe"
  expect "autostart" "$(reg_get "$run_key" Warren)" "\"$instdir\\warren-gui.exe\" --hidden"
  expect "PATH" "$(reg_get "$env_key" Path)" "$1"
  expect "PATH type" "$(reg_type "$env_key" Path)" REG_EXPAND_SZ
  expect "uninstall DisplayName" "$(reg_get "$uninst_key" DisplayName)" "Warren (beta)"
  expect "uninstall DisplayVersion" "$(reg_get "$uninst_key" DisplayVersion)" "$version"
  expect "uninstall Publisher" "$(reg_get "$uninst_key" Publisher)" Warren
  expect "uninstall UninstallString" "$(reg_get "$uninst_key" UninstallString)" "\"$instdir\\uninstall.exe\""
  expect "uninstall InstallLocation" "$(reg_get "$uninst_key" InstallLocation)" "$instdir"
  expect "uninstall NoModify" "$(reg_get "$uninst_key" NoModify)" 0x1
  expect "uninstall NoRepair" "$(reg_get "$uninst_key" NoRepair)" 0x1
  expect "uninstall PathAdded" "$(reg_get "$uninst_key" PathAdded)" "$2"
  local size
  size=$(reg_get "$uninst_key" EstimatedSize || echo 0)
  # KiB of the installed files: at least the payload's size
  local want=$(($(cat "$tmp/payload"/* | wc -c) / 1024))
  if [ $((size)) -ge "$want" ]; then ok "EstimatedSize $((size)) KiB"; else fail "EstimatedSize $((size)) < $want KiB"; fi
  expect "service ImagePath" "$(reg_get "$svc_key" ImagePath)" "\"$instdir\\warrend.exe\" --service"
  expect "service start=auto" "$(reg_get "$svc_key" Start)" 0x2
  expect "service DisplayName" "$(reg_get "$svc_key" DisplayName)" Warren
  [ -n "$(reg_get "$svc_key" Description)" ] && ok "service description" || fail "no service description"
  [ -f "$lnk" ] && ok "Start-menu shortcut" || fail "no Start-menu shortcut at $lnk"
}

check_uninstalled() { # $1: PATH expected after uninstall
  [ ! -e "$unixdir" ] && ok "install folder removed" || fail "left behind: $(ls -A "$unixdir" | tr '\n' ' ')"
  key_exists "$svc_key" && fail "service still registered" || ok "service removed"
  reg_get "$run_key" Warren >/dev/null && fail "autostart value left" || ok "autostart removed"
  key_exists "$uninst_key" && fail "Add/Remove Programs entry left" || ok "Add/Remove Programs entry removed"
  [ ! -e "$lnk" ] && ok "shortcut removed" || fail "shortcut left"
  expect "PATH after uninstall" "$(reg_get "$env_key" Path)" "$1"
}

echo "--- round 1: install, upgrade, uninstall keeping state" >&2
wine "$installer" /S || fail "install exited with $?"
# The upgrade: the same installer over the first; the PATH entry must not double.
wine "$installer" /S || fail "upgrade exited with $?"
check_installed "$path0;$instdir" 0x1
mkdir -p "$data"
echo marker >"$data/identity.marker"
uninstall /S
check_uninstalled "$path0"
[ -f "$data/identity.marker" ] && ok "silent uninstall kept ProgramData\\Warren" || fail "silent uninstall deleted ProgramData\\Warren"

echo "--- round 2: the user's own PATH entry, uninstall /PURGE" >&2
set_path "$path0;$instdir"
wine "$installer" /S || fail "install exited with $?"
check_installed "$path0;$instdir" 0x0
uninstall /S /PURGE
check_uninstalled "$path0;$instdir"
[ ! -e "$data" ] && ok "/PURGE deleted ProgramData\\Warren" || fail "/PURGE left ProgramData\\Warren"

if [ "$failures" -ne 0 ]; then
  echo "$failures check(s) failed" >&2
  exit 1
fi
echo "all installer checks passed" >&2

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
# check WHAT COMMAND...: ok if the command succeeds
check() {
  local what="$1"
  shift
  if "$@"; then ok "$what"; else fail "$what"; fi
}
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
programs=(warrend.exe warren.exe warren-gui.exe warren-coordinator.exe)
payload=("${programs[@]}" wintun.dll wintun-LICENSE.txt)
# 7-Zip lists the files NSIS extracts: the payload, the uninstaller it writes (no size: it is
# made at install time) and the stock plugins under $PLUGINSDIR. The plugins are listed too
# so that a third-party plugin, which Debian's nsis cannot supply, shows up here.
# shellcheck disable=SC2016 # $PLUGINSDIR is NSIS's, literally in 7z's listing
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
  diff <(echo "$expected_list") "$tmp/paths" | grep '^[<>]' | sed 's/^</  -/; s/^>/  +/' >&2 || true
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

# Each wine call costs a few tenths of a second, so a key is read once (reg_load) and its
# values looked up in that copy (val).
# reg_load KEY FILE: the key's values as "NAME<TAB>TYPE<TAB>DATA" lines (empty if no key)
reg_load() {
  wine reg query "$1" 2>/dev/null | tr -d '\r' | awk '
    /^    [^ ]/ { line = substr($0, 5); n = index(line, "    "); name = substr(line, 1, n - 1)
      rest = substr(line, n + 4); m = index(rest, "    ")
      if (m == 0) { type = rest; data = "" } else { type = substr(rest, 1, m - 1); data = substr(rest, m + 4) }
      print name "\t" type "\t" data }' >"$2" || true
}
# val FILE NAME [type]: the data (or type) of a value; status 1 if missing. Names are matched
# regardless of case, as Windows does (Wine names the value PATH, Windows Path).
val() {
  awk -F '\t' -v n="$2" -v col="$([ "${3:-}" = type ] && echo 2 || echo 3)" \
    'tolower($1) == tolower(n) { print $col; found = 1; exit } END { exit !found }' "$1"
}
reg_get() { reg_load "$1" "$tmp/one" && val "$tmp/one" "$2"; }
no_key() { ! wine reg query "$1" >/dev/null 2>&1; }
no_value() { ! reg_get "$1" "$2" >/dev/null; }
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
  local f size want
  for f in "${payload[@]}"; do
    if cmp -s "$tmp/payload/$f" "$unixdir/$f"; then ok "installed $f"; else fail "$f not installed intact"; fi
  done
  check "installed uninstall.exe" test -f "$unixdir/uninstall.exe"
  reg_load "$run_key" "$tmp/run"
  reg_load "$env_key" "$tmp/env"
  reg_load "$uninst_key" "$tmp/uninst"
  reg_load "$svc_key" "$tmp/svc"
  expect "autostart" "$(val "$tmp/run" Warren)" "\"$instdir\\warren-gui.exe\" --hidden"
  expect "PATH" "$(val "$tmp/env" Path)" "$1"
  expect "PATH type" "$(val "$tmp/env" Path type)" REG_EXPAND_SZ
  expect "uninstall DisplayName" "$(val "$tmp/uninst" DisplayName)" "Warren (beta)"
  expect "uninstall DisplayVersion" "$(val "$tmp/uninst" DisplayVersion)" "$version"
  expect "uninstall Publisher" "$(val "$tmp/uninst" Publisher)" Warren
  expect "uninstall UninstallString" "$(val "$tmp/uninst" UninstallString)" "\"$instdir\\uninstall.exe\""
  expect "uninstall InstallLocation" "$(val "$tmp/uninst" InstallLocation)" "$instdir"
  expect "uninstall NoModify" "$(val "$tmp/uninst" NoModify)" 0x1
  expect "uninstall NoRepair" "$(val "$tmp/uninst" NoRepair)" 0x1
  expect "uninstall PathAdded" "$(val "$tmp/uninst" PathAdded)" "$2"
  size=$(val "$tmp/uninst" EstimatedSize || echo 0)
  # KiB of the installed files: at least the payload's size
  want=$(($(cat "$tmp/payload"/* | wc -c) / 1024))
  if [ $((size)) -ge "$want" ]; then ok "EstimatedSize $((size)) KiB"; else fail "EstimatedSize $((size)) < $want KiB"; fi
  # The installing user, as Wine names it (the Unix user running the check).
  expect "service ImagePath" "$(val "$tmp/svc" ImagePath)" \
    "\"$instdir\\warrend.exe\" --service --api-user \"$(id -un)\""
  expect "service start=auto" "$(val "$tmp/svc" Start)" 0x2
  expect "service DisplayName" "$(val "$tmp/svc" DisplayName)" Warren
  check "service description" test -n "$(val "$tmp/svc" Description)"
  check "Start-menu shortcut" test -f "$lnk"
}

check_uninstalled() { # $1: PATH expected after uninstall
  if [ -e "$unixdir" ]; then
    fail "install folder left, with: $(find "$unixdir" -mindepth 1 -printf '%P ')"
  else
    ok "install folder removed"
  fi
  check "service removed" no_key "$svc_key"
  check "autostart removed" no_value "$run_key" Warren
  check "Add/Remove Programs entry removed" no_key "$uninst_key"
  check "shortcut removed" test ! -e "$lnk"
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
check "silent uninstall kept ProgramData\\Warren" test -f "$data/identity.marker"

echo "--- round 2: the user's own PATH entry, uninstall /PURGE" >&2
set_path "$path0;$instdir"
wine "$installer" /S || fail "install exited with $?"
check_installed "$path0;$instdir" 0x0
uninstall /S /PURGE
check_uninstalled "$path0;$instdir"
check "/PURGE deleted ProgramData\\Warren" test ! -e "$data"

if [ "$failures" -ne 0 ]; then
  echo "$failures check(s) failed" >&2
  exit 1
fi
echo "all installer checks passed" >&2

#!/usr/bin/env bash
# The packaging test (run by .ci/run after `cargo build`): builds both packages from the debug
# binaries already in target/debug, installs them on this machine with dpkg, checks files,
# permissions, group `warren`, `warren version`, `systemd-analyze verify` on the installed
# units, the units started by a real systemd (packaging/test-systemd.sh), an upgrade that keeps
# the identity, `remove` that keeps the state, and `purge` that
# removes everything. Purges and deletes what it made even when a check fails.
# Needs root and dpkg; skips otherwise, and skips rather than disturb a machine that already
# has Warren installed or state in /var/lib/warren*.
#   packaging/test-deb.sh [--profile debug|release]
set -euo pipefail
cd "$(dirname "$0")/.."
profile=debug
target="${CARGO_TARGET_DIR:-target}"
[ "${1:-}" = --profile ] && profile="$2"

# On a developer's machine a real install is left alone; in CI (a fresh machine) the same
# finding means an earlier run left something behind, and skipping would hide it.
skip() {
  if [ -n "${CI:-}" ]; then echo "test-deb: FAIL (CI set, will not skip): $*"; exit 1; fi
  echo "test-deb: SKIPPED: $*"; exit 0
}
[ "$(id -u)" = 0 ] || skip "needs root"
if ! command -v dpkg-deb >/dev/null 2>&1 || ! command -v dpkg >/dev/null 2>&1; then skip "no dpkg"; fi
# present PKG: dpkg knows PKG in any state but "not-installed" (config-files counts).
present() {
  local s
  s="$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null || true)"
  [ -n "$s" ] && [ "$s" != not-installed ]
}
for p in warren warren-coordinator; do
  if present "$p"; then
    skip "package $p is already on this machine"
  fi
done
for d in /var/lib/warren /var/lib/warren-coordinator /var/lib/private/warren-coordinator; do
  [ -e "$d" ] && skip "$d exists (a real installation's state; not touching it)"
done

fails=0
ok() { echo "  ok: $*"; }
fail() { echo "  FAIL: $*"; fails=$((fails + 1)); }
check() { local what="$1"; shift; if "$@" >/dev/null 2>&1; then ok "$what"; else fail "$what"; fi; }
mode_is() { # PATH MODE OWNER
  local got; got="$(stat -c '%a %U:%G' "$1" 2>/dev/null || echo missing)"
  if [ "$got" = "$2 $3" ]; then ok "$1 $got"; else fail "$1 is $got, want $2 $3"; fi
}

out="$(mktemp -d)"
had_group=0
getent group warren >/dev/null && had_group=1
# The desktop user who installs with sudo: becomes an operator user.
op_user="warrendeb$$"
useradd --system --no-create-home --user-group --shell /usr/sbin/nologin "$op_user"
cleanup() {
  dpkg --purge warren warren-coordinator >/dev/null 2>&1 || true
  userdel "$op_user" >/dev/null 2>&1 || true
  if [ "$had_group" = 0 ] && getent group warren >/dev/null; then groupdel warren || true; fi
  rm -rf "$out"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

echo "test-deb: building the packages from $target/$profile"
mapfile -t debs < <(packaging/build-deb.sh --profile "$profile" --no-build --fast --out "$out")
[ "${#debs[@]}" = 2 ] || { echo "test-deb: build-deb.sh wrote ${#debs[*]} packages"; exit 1; }
for d in "${debs[@]}"; do
  dpkg-deb --info "$d" | sed -n 's/^ \(Package\|Version\|Depends\|Installed-Size\):/    &/p'
done

echo "test-deb: dpkg -i"
log="$out/install.log"
SUDO_USER="$op_user" dpkg -i "${debs[@]}" > "$log" 2>&1 || { cat "$log"; fail "dpkg -i"; exit 1; }
check "postinst says the installing user may use Warren" grep -qF "Warren: $op_user may use Warren" "$log"
check "the operator list names the installing user (SUDO_USER)" \
  sh -c "/usr/bin/warrend --state-dir /var/lib/warren operator list | grep -q '^$op_user (uid '"
mode_is /var/lib/warren 700 root:root
check "dpkg reports both installed" dpkg-query -W warren warren-coordinator

for b in /usr/bin/warrend /usr/bin/warren /usr/bin/warren-coordinator /usr/lib/warren/warren-coordinator; do
  mode_is "$b" 755 root:root
done
for u in /lib/systemd/system/warrend.service /lib/systemd/system/warren-coordinator.service; do
  mode_is "$u" 644 root:root
done
for f in /usr/share/man/man1/warren.1.gz /usr/share/man/man8/warrend.8.gz \
         /usr/share/man/man8/warren-coordinator.8.gz /etc/default/warren \
         /etc/default/warren-coordinator /usr/share/doc/warren/copyright \
         /usr/share/zsh/vendor-completions/_warren /usr/share/fish/vendor_completions.d/warren.fish \
         /usr/share/doc/warren/docs/troubleshooting.md /usr/share/doc/warren/docs/guides/lan-gaming.md; do
  mode_is "$f" 644 root:root
done
mode_is /usr/share/doc/warren/docs/guides 755 root:root
check "bash completion parses and completes subcommands" \
  bash -c '. /usr/share/bash-completion/completions/warren && grep -q netcheck /usr/share/bash-completion/completions/warren'
check "man page warren(1) documents the subcommands" sh -c 'zcat /usr/share/man/man1/warren.1.gz | grep -q "^\.SS invite"'
check "man page warren(1) documents hosting" sh -c 'zcat /usr/share/man/man1/warren.1.gz | grep -q "^\.SS host" && zcat /usr/share/man/man1/warren.1.gz | grep -q "Host a network from this PC"'
check "group warren exists" getent group warren
if [ -x "$target/$profile/warren-gui" ]; then
  mode_is /usr/bin/warren-gui 755 root:root
  check "the autostart entry starts the GUI in the tray (--hidden, which it knows)" \
    sh -c "grep -qx 'Exec=warren-gui --hidden' /etc/xdg/autostart/warren-gui.desktop && /usr/bin/warren-gui --help 2>&1 | grep -q -- --hidden"
  for f in /usr/share/applications/warren-gui.desktop /etc/xdg/autostart/warren-gui.desktop; do
    check "desktop-file-validate $f" desktop-file-validate "$f"
  done
  check "the GUI's run-time libraries are recommended" \
    sh -c "dpkg-query -W -f='\${Recommends}' warren | grep -q libxkbcommon-x11-0"
  for f in /usr/share/applications/warren-gui.desktop /etc/xdg/autostart/warren-gui.desktop \
           /usr/share/icons/hicolor/scalable/apps/warren.svg /usr/share/man/man1/warren-gui.1.gz; do
    mode_is "$f" 644 root:root
  done
else
  check "no GUI files without a warren-gui binary" test ! -e /etc/xdg/autostart/warren-gui.desktop
fi

v="$(/usr/bin/warren --socket "$out/none.sock" version 2>&1 || true)"
if echo "$v" | grep -q '^warren [0-9]' && echo "$v" | grep -q 'warrend not reachable'; then
  ok "warren version: $(echo "$v" | head -n1)"
else
  fail "warren version said: $v"
fi
check "warrend --help" /usr/bin/warrend --help
check "warren-coordinator key (in a scratch state dir)" \
  sh -c "/usr/bin/warren-coordinator --state-dir '$out/coord' key | grep -q ."

man_flag=()
command -v man >/dev/null 2>&1 || man_flag=(--man=no)
if command -v systemd-analyze >/dev/null 2>&1; then
  if v="$(systemd-analyze verify "${man_flag[@]}" /lib/systemd/system/warrend.service \
           /lib/systemd/system/warren-coordinator.service 2>&1)" && [ -z "$v" ]; then
    ok "systemd-analyze verify on the installed units"
  else
    fail "systemd-analyze verify: $v"
  fi
else
  fail "systemd-analyze is missing (packaging/install-deps.sh installs systemd)"
fi
check "warrend.service enabled (multi-user.target.wants)" \
  test -L /etc/systemd/system/multi-user.target.wants/warrend.service
check "warren-coordinator.service enabled" \
  test -L /etc/systemd/system/multi-user.target.wants/warren-coordinator.service

# The units as installed, started by a real systemd (PID 1 of its own namespaces).
if packaging/test-systemd.sh; then ok "the units run under systemd"; else fail "the units under systemd (packaging/test-systemd.sh)"; fi

echo "test-deb: identity kept across an upgrade and a remove"
# A real upgrade: the same binaries packaged as a newer version, installed over the old one.
v0="$(dpkg-query -W -f='${Version}' warren)"
v1="$v0+upgrade1"
mapfile -t newer < <(packaging/build-deb.sh --profile "$profile" --no-build --fast --out "$out/newer" --version "$v1")
key1="$(/usr/bin/warrend --state-dir /var/lib/warren public-key)"
# The coordinator's key as an admin makes it (`sudo warren-coordinator key`) before the upgrade.
coord_key() { /usr/bin/warren-coordinator --state-dir /var/lib/warren-coordinator key 2>/dev/null || true; }
coord1="$(coord_key)"
dpkg -i "${newer[@]}" > "$log" 2>&1 || { cat "$log"; fail "dpkg -i (upgrade to $v1)"; }
check "upgraded $v0 -> $v1" sh -c "[ \"\$(dpkg-query -W -f='\${Version}' warren)\" = '$v1' ] && [ \"\$(dpkg-query -W -f='\${Version}' warren-coordinator)\" = '$v1' ]"
key2="$(/usr/bin/warrend --state-dir /var/lib/warren public-key)"
if [ -n "$key1" ] && [ "$key1" = "$key2" ]; then ok "same node key after upgrade"; else fail "node key changed: $key1 -> $key2"; fi
coord2="$(coord_key)"
if [ -n "$coord1" ] && [ "$coord1" = "$coord2" ]; then ok "coordinator key kept across the upgrade"; else fail "coordinator key '$coord1' -> '$coord2' on upgrade"; fi
check "no first-install hint on upgrade" sh -c "! grep -q 'usermod\|may use Warren' '$log'"
dpkg -r warren warren-coordinator > "$log" 2>&1 || { cat "$log"; fail "dpkg -r"; }
check "binaries gone after remove" test ! -e /usr/bin/warrend -a ! -e /usr/bin/warren-coordinator -a ! -e /usr/lib/warren/warren-coordinator
check "state kept after remove" test -s /var/lib/warren/node.key
check "coordinator state kept after remove" test -s /var/lib/warren-coordinator/coordinator.key
check "conffile kept after remove" test -e /etc/default/warren

echo "test-deb: dpkg --purge"
dpkg --purge warren warren-coordinator > "$log" 2>&1 || { cat "$log"; fail "dpkg --purge"; }
check "state removed on purge" test ! -e /var/lib/warren -a ! -e /var/lib/warren-coordinator
for f in /lib/systemd/system/warrend.service /lib/systemd/system/warren-coordinator.service \
         /etc/default/warren /etc/default/warren-coordinator /usr/bin/warren \
         /usr/share/man/man1/warren.1.gz /usr/share/doc/warren \
         /etc/systemd/system/multi-user.target.wants/warrend.service \
         /etc/systemd/system/multi-user.target.wants/warren-coordinator.service \
         /etc/systemd/system/warrend.service /etc/systemd/system/warren-coordinator.service \
         /usr/bin/warren-gui /etc/xdg/autostart/warren-gui.desktop \
         /usr/share/applications/warren-gui.desktop; do
  check "$f gone after purge" test ! -e "$f" -a ! -L "$f"
done
if present warren || present warren-coordinator; then fail "dpkg still knows a package"; else ok "dpkg forgot both packages"; fi

if [ "$fails" -gt 0 ]; then echo "test-deb: $fails check(s) failed"; exit 1; fi
echo "test-deb: all checks passed"

#!/usr/bin/env bash
# The installed units under a real systemd (run by test-deb.sh while the packages are installed).
#
# Boots /lib/systemd/systemd as PID 1 of its own mount, PID, network, UTS, IPC and cgroup
# namespaces, on an overlay of / (so it sees the installed packages, and nothing it writes
# reaches the host), to a target of its own that starts nothing. There it starts
# warren-coordinator.service and warrend.service as installed, with all their hardening, and
# checks that they run as meant: the coordinator as a dynamic unprivileged user keeping its
# key, warrend with exactly its four capabilities and no new privileges, its TUN device, its
# socket (group warren, 0666: warrend checks each caller), `warren up` against the coordinator and `warren create`,
# a restart that keeps the identity, Restart=on-failure after a kill.
# Kills the namespace and removes the cgroups it made even when a check fails.
#   packaging/test-systemd.sh          (as root, packages installed)
set -euo pipefail

fails=0
ok() { echo "  ok: $*"; }
fail() { echo "  FAIL: $*"; fails=$((fails + 1)); }

[ -x /lib/systemd/systemd ] || { echo "test-systemd: FAIL: no /lib/systemd/systemd"; exit 1; }

work="$(mktemp -d /tmp/warren-systemd.XXXXXX)"
# The cgroups a booting systemd makes (below this script's own cgroup in each hierarchy).
systemd_cgroups() {
  find /sys/fs/cgroup -maxdepth 8 -type d \( -name init.scope -o -name system.slice \
    -o -name user.slice -o -name machine.slice \) 2>/dev/null | sort
}
had_cgroups="$(systemd_cgroups)"
upid=""
sd=""

cleanup() {
  if [ -n "$sd" ]; then kill -9 "$sd" 2>/dev/null || true; fi
  if [ -n "$upid" ]; then wait "$upid" 2>/dev/null || true; fi
  # systemd made cgroups in the shared hierarchies; take away those that were not there before
  # (rmdir only removes empty ones, never a cgroup with processes).
  local d
  for d in $(comm -13 <(echo "$had_cgroups") <(systemd_cgroups)); do
    for _ in 1 2 3 4 5 6 7 8 9 10; do
      find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null || true
      [ -d "$d" ] || break
      sleep 0.2
    done
  done
  umount -l "$work/m" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

cat > "$work/boot" <<'EOF'
#!/bin/bash
# Runs in the new namespaces: an overlay root with fresh /proc, /dev, /run; then systemd.
set -e
m="$1/m"
mkdir -p "$m" && mount -t tmpfs tmpfs "$m"
mkdir -p "$m/upper" "$m/work" "$m/root"
mount -t overlay overlay -o "lowerdir=/,upperdir=$m/upper,workdir=$m/work" "$m/root"
r="$m/root"
mount -t proc proc "$r/proc"
mount --rbind /sys "$r/sys"
mount -t tmpfs -o mode=755 tmpfs "$r/dev"
mkdir -p "$r/dev/net" "$r/dev/pts" "$r/dev/shm"
for d in null zero full random urandom tty net/tun; do
  touch "$r/dev/$d"; mount --bind "/dev/$d" "$r/dev/$d"
done
# What PrivateDevices= copies into a unit's own /dev: a pts instance with its ptmx, shm.
mount -t devpts -o newinstance,ptmxmode=0666,mode=620 devpts "$r/dev/pts"
ln -s pts/ptmx "$r/dev/ptmx"
mount -t tmpfs -o mode=1777 tmpfs "$r/dev/shm"
mount -t tmpfs tmpfs "$r/run"
mount -t tmpfs tmpfs "$r/tmp"
mkdir -p "$r/etc/systemd/system"
printf '[Unit]\nDescription=Warren unit test boot\n' > "$r/etc/systemd/system/warren-test.target"
echo warren-systemd-test > "$r/etc/hostname"
cd "$r"
mkdir -p oldroot
pivot_root . oldroot
umount -l /oldroot
exec env container=warren-test /lib/systemd/systemd --system --unit=warren-test.target \
  --log-target=console --show-status=no
EOF
chmod +x "$work/boot"

echo "test-systemd: booting systemd in namespaces"
unshare --mount --pid --fork --net --uts --ipc --cgroup --propagation private \
  "$work/boot" "$work" > "$work/console.log" 2>&1 &
upid=$!
in_ns() { nsenter -t "$sd" -a "$@"; }
deadline=$((SECONDS + 30))
state=""
while [ $SECONDS -lt $deadline ]; do
  sd="$(pgrep -P "$upid" 2>/dev/null | head -n1 || true)"
  if [ -n "$sd" ] && [ "$(cat /proc/"$sd"/comm 2>/dev/null)" = systemd ]; then
    state="$(in_ns systemctl is-system-running 2>/dev/null || true)"
    case "$state" in running|degraded) break ;; esac
  fi
  sleep 0.2
done
case "$state" in
  running|degraded) ok "systemd $(in_ns systemctl --version | head -n1 | cut -d' ' -f2) is PID 1 of the test namespaces ($state)" ;;
  *) echo "test-systemd: systemd did not boot (state '$state'):"; cat "$work/console.log"; exit 1 ;;
esac
in_ns ip link set lo up
# The journal, so that a failing unit's `systemctl status` shows why.
in_ns systemctl start systemd-journald.service >/dev/null 2>&1 || true

wait_active() { # UNIT
  for _ in $(seq 1 150); do
    [ "$(in_ns systemctl is-active "$1" 2>/dev/null)" = active ] && return 0
    sleep 0.2
  done
  return 1
}
unit_log() { in_ns systemctl status --no-pager -l "$1" 2>&1 | tail -n 20 || true; }
main_pid() { in_ns systemctl show -p MainPID --value "$1"; }

# The coordinator: a dynamic user, its key kept in its state directory. An admin who asks for
# the key before the first start (`sudo warren-coordinator key`, as the coordinator guide says) makes it in
# /var/lib/warren-coordinator as root; the service must still start and use that key.
key0="$(in_ns /usr/bin/warren-coordinator key 2>/dev/null || true)"
in_ns systemctl start warren-coordinator.service || true
if wait_active warren-coordinator.service; then
  ok "warren-coordinator.service active"
else
  fail "warren-coordinator.service did not start: $(unit_log warren-coordinator.service)"
fi
# PIDs from systemctl are the namespace's: read its /proc.
status_of() { in_ns cat /proc/"$1"/status 2>/dev/null || true; }
# Only once the service has written its key: `key` run as root before that would make one
# the service's user cannot read.
ckey=""
for _ in $(seq 1 150); do
  if in_ns test -s /var/lib/private/warren-coordinator/coordinator.key; then
    ckey="$(in_ns /usr/bin/warren-coordinator --state-dir /var/lib/private/warren-coordinator key 2>/dev/null || true)"
    break
  fi
  sleep 0.2
done
if [ -n "$ckey" ] && [ "$ckey" = "$key0" ]; then
  ok "coordinator key in /var/lib/private/warren-coordinator, the one \`key\` printed before the first start"
else
  fail "coordinator key '$ckey', printed before the start: '$key0'"
fi

# warrend: root with only its capabilities, its TUN, its socket.
in_ns systemctl start warrend.service || true
if wait_active warrend.service; then ok "warrend.service active"; else fail "warrend.service did not start: $(unit_log warrend.service)"; fi
sock=/run/warren/warrend.sock
for _ in $(seq 1 150); do in_ns test -S "$sock" && break; sleep 0.2; done
wpid="$(main_pid warrend.service)"
caps="$(status_of "$wpid" | awk '/^CapEff:/ {print $2}')"
# NET_ADMIN (12), NET_RAW (13), NET_BIND_SERVICE (10), CHOWN (0).
want="$(printf '%016x' $(( (1 << 12) | (1 << 13) | (1 << 10) | 1 )))"
if [ "$caps" = "$want" ]; then ok "warrend's effective capabilities are exactly $want"; else fail "warrend CapEff $caps, want $want"; fi
nnp="$(status_of "$wpid" | awk '/^NoNewPrivs:/ {print $2}')"
if [ "$nnp" = 1 ]; then ok "warrend has NoNewPrivs"; else fail "warrend NoNewPrivs=$nnp"; fi
if in_ns ip link show warren0 >/dev/null 2>&1; then ok "warrend made its TUN (warren0) under DevicePolicy=closed"; else fail "no warren0: $(unit_log warrend.service)"; fi
perm="$(in_ns stat -c '%a %G' "$sock" 2>/dev/null || true)"
if [ "$perm" = "666 warren" ]; then ok "API socket 0666 group warren (warrend checks who connects)"; else fail "API socket is '$perm'"; fi
# This host's key, from the "self" object of `warren status --json`.
self_key() { sed -n '/"self": {/,/}/ s/.*"public_key": *"\([^"]*\)".*/\1/p' | head -n1; }
key1="$(in_ns /usr/bin/warren status --json 2>/dev/null | self_key)"

if [ -n "$ckey" ] && out="$(in_ns /usr/bin/warren up --coordinator 127.0.0.1:7443 --coordinator-key "$ckey" --name unit-test 2>&1)"; then
  ok "warren up against the coordinator: $(echo "$out" | head -n1)"
else
  fail "warren up: ${out:-no coordinator key}; $(unit_log warren-coordinator.service)"
fi
if out="$(in_ns /usr/bin/warren create unit-net --password unit-pw 2>&1)"; then
  ok "warren create (the coordinator wrote its database): $(echo "$out" | head -n1)"
else
  fail "warren create: $out"
fi

# Game discovery: warrend runs nft under the unit's hardening (CAP_NET_ADMIN, AF_NETLINK).
games=""
for _ in $(seq 1 50); do
  games="$(in_ns nft list tables 2>/dev/null || true)"
  echo "$games" | grep -q warren_games_warren0 && break
  sleep 0.2
done
if echo "$games" | grep -q warren_games_warren0; then ok "warrend put its game discovery rules in place (nft under the unit)"; else fail "no game discovery table: $games; $(unit_log warrend.service)"; fi

# Read now that it has answered: right after the fork the unit's process is still root.
cpid="$(main_pid warren-coordinator.service)"
cuid="$(status_of "$cpid" | awk '/^Uid:/ {print $2}')"
if [ -n "$cuid" ] && [ "$cuid" != 0 ]; then ok "coordinator runs as uid $cuid (DynamicUser)"; else fail "coordinator's uid is '$cuid'"; fi

in_ns systemctl restart warrend.service || true
wait_active warrend.service || true
for _ in $(seq 1 150); do in_ns /usr/bin/warren status >/dev/null 2>&1 && break; sleep 0.2; done
st="$(in_ns /usr/bin/warren status --json 2>/dev/null || true)"
key2="$(echo "$st" | self_key)"
if [ -n "$key1" ] && [ "$key1" = "$key2" ]; then ok "same identity after systemctl restart"; else fail "identity $key1 -> $key2"; fi
# The networks come back with the coordinator connection, a moment after the API answers.
for _ in $(seq 1 150); do
  echo "$st" | grep -q '"unit-net"' && break
  sleep 0.2
  st="$(in_ns /usr/bin/warren status --json 2>/dev/null || true)"
done
if echo "$st" | grep -q '"unit-net"'; then ok "network kept across the restart"; else fail "network not in status 30 s after restart: $st"; fi

old="$(main_pid warrend.service)"
in_ns kill -9 "$old" 2>/dev/null || true
restarted=""
for _ in $(seq 1 150); do
  new="$(main_pid warrend.service)"
  if [ -n "$new" ] && [ "$new" != 0 ] && [ "$new" != "$old" ] && \
     [ "$(in_ns systemctl is-active warrend.service)" = active ]; then restarted=1; break; fi
  sleep 0.2
done
if [ -n "$restarted" ]; then ok "Restart=on-failure brought warrend back after kill -9"; else fail "warrend not restarted: $(unit_log warrend.service)"; fi

in_ns systemctl stop warrend.service warren-coordinator.service || true
if in_ns ip link show warren0 >/dev/null 2>&1; then fail "warren0 still there after stop"; else ok "warren0 gone after systemctl stop"; fi

if [ "$fails" -gt 0 ]; then echo "test-systemd: $fails check(s) failed"; exit 1; fi
echo "test-systemd: all checks passed"

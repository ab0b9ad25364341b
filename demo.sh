#!/usr/bin/env bash
# Two hosts in two network namespaces, joined by a veth "wire", each running warrend with the
# other as a static peer. Prints a ping and a TCP transfer through the encrypted overlay.
# Usage: sudo ./demo.sh        (everything it creates is removed when it exits)
set -euo pipefail
cd "$(dirname "$0")"
[ "$(id -u)" = 0 ] || { echo "run as root: sudo $0" >&2; exit 1; }
./packaging/install-deps.sh
export PATH="$HOME/.cargo/bin:$PATH"
cargo build --release -q -p warrend -p warren-cli
BIN=$PWD/target/release

A=warren-demo-a B=warren-demo-b
WORK=$(mktemp -d /tmp/warren-demo.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  ip netns del $A 2>/dev/null || true
  ip netns del $B 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

ip netns add $A && ip netns add $B
ip link add wd-a netns $A type veth peer name wd-b netns $B
ip -n $A addr add 10.99.0.1/24 dev wd-a && ip -n $A link set wd-a up && ip -n $A link set lo up
ip -n $B addr add 10.99.0.2/24 dev wd-b && ip -n $B link set wd-b up && ip -n $B link set lo up

KA=$("$BIN/warrend" --state-dir "$WORK/a" public-key)
KB=$("$BIN/warrend" --state-dir "$WORK/b" public-key)
cat > "$WORK/a.toml" <<CONF
[interface]
name = "alice"
address = "100.64.99.1"
[[peer]]
name = "bob"
public_key = "$KB"
allowed_ips = ["100.64.99.2/32"]
endpoint = "10.99.0.2:41820"
CONF
cat > "$WORK/b.toml" <<CONF
[interface]
name = "bob"
address = "100.64.99.2"
[[peer]]
name = "alice"
public_key = "$KA"
allowed_ips = ["100.64.99.1/32"]
endpoint = "10.99.0.1:41820"
CONF
for h in a b; do
  ns=$A; [ $h = b ] && ns=$B
  RUST_LOG=warn ip netns exec $ns "$BIN/warrend" --state-dir "$WORK/$h" --socket "$WORK/$h.sock" \
    --config "$WORK/$h.toml" --port 41820 --tun warren0 2>"$WORK/$h.log" &
  PIDS+=($!)
done
for _ in $(seq 50); do
  [ -S "$WORK/a.sock" ] && [ -S "$WORK/b.sock" ] && break; sleep 0.1
done

echo "== ping alice -> bob over the overlay"
ip netns exec $A ping -c 4 -i 0.2 100.64.99.2
echo
echo "== 5 s TCP transfer alice -> bob (iperf3)"
ip netns exec $B iperf3 -s -1 -B 100.64.99.2 >/dev/null 2>&1 &
PIDS+=($!)
sleep 0.5
ip netns exec $A iperf3 -c 100.64.99.2 -t 5 -f g | grep -E "sender|receiver"
echo
echo "== warren status (alice)"
"$BIN/warren" --socket "$WORK/a.sock" status

#!/usr/bin/env bash
# Data-plane benchmark: raw veth vs Warren vs boringtun-cli vs wireguard-go.
#
# Two network namespaces joined by one veth pair; every contestant is brought
# up on its own (one at a time), measured with iperf3 (TCP both ways, UDP at a
# high offered rate, small UDP datagrams) and ping (idle, and while a TCP
# transfer saturates the same path), and torn down again. All traffic stays
# inside the two namespaces created here.
#
# Columns (issue 23 added the last five plus the loaded-RTT pair):
#   TCP A→B / B→A       iperf3 TCP Gbit/s received, after OMIT s warm-up
#   UDP rx / loss       iperf3 UDP at UDP_RATE with UDP_LEN-byte datagrams
#   RTT p50 / p99       idle ping, PING_COUNT replies
#   loaded p50 / p99    ping A->B every LOADED_PING_INTERVAL s while an iperf3
#                       TCP A->B transfer runs through the same tunnel (pings
#                       start after the OMIT warm-up and stop 1 s before the
#                       transfer ends, so every one of them sees a full queue)
#   small kpps / loss   iperf3 UDP A->B with SMALL_LEN-byte datagrams offered at
#                       SMALL_RATE (0 = as fast as the iperf3 sender can): the
#                       thousands of datagrams per second the receiver got and
#                       the loss %. With SMALL_RATE=0 the offered load exceeds
#                       most tunnels, so loss there measures overload; set
#                       SMALL_RATE below a tunnel's capacity to check its loss
#   small kpps / loss retried  while the last run lost 1 % or more, the same
#                       test again offering SMALL_RETRY times the rate the last
#                       run received (at most SMALL_RETRIES times): the last
#                       run's figures, the rate the tunnel sustains with little loss
#   daemon CPU %        utime+stime of both tunnel processes during TCP A->B
#                       over the wall time (100 = one core)
#   tunnel CPU/Gbps     that CPU time divided by the A->B Gbit/s: cores kept
#                       busy per Gbit/s (= CPU seconds per Gbit). "-" for raw
#                       veth, which has no tunnel process
#   total CPU/Gbps      the same with the iperf3 client and server added (all
#                       processes in the two namespaces; kernel work done in
#                       their context is in their stime, softirq work done in
#                       ksoftirqd is not counted). For raw veth it is iperf3 alone
#
# Usage:  sudo bench/dataplane.sh
#
# Environment knobs (defaults in brackets):
#   DURATION=8          seconds per iperf3 run
#   OMIT=1              seconds of TCP warm-up left out of the result (iperf3 -O)
#   UDP_RATE=3G         offered UDP rate (iperf3 -b)
#   UDP_LEN=1300        UDP payload bytes (iperf3 -l); must fit MTU 1420 - 28
#   UDP_WINDOW=4M       iperf3 socket buffer for the UDP test (-w); without it the
#                       iperf3 receiver's default buffer overflows on 2 cores and
#                       the loss column measures iperf3 rather than the tunnel
#   PING_COUNT=200      pings for the RTT percentiles
#   PING_INTERVAL=0.01  seconds between pings
#   LOADED_PING_INTERVAL=0.01  seconds between pings of the loaded-RTT test
#   SMALL_LEN=128       payload bytes of the small-packet test
#   SMALL_RATE=0        offered rate of the small-packet test (iperf3 -b; 0 = unlimited)
#   SMALL_RETRY=0.9     fraction of the last received rate offered in the next
#                       small-packet run while the last lost >= 1 %; 0 = no retries
#   SMALL_RETRIES=4     small-packet retries at most
#   SKIP_RAW=1          skip the raw veth baseline
#   SKIP_WARREN=1       skip Warren
#   SKIP_BORINGTUN=1    skip boringtun-cli
#   SKIP_WGGO=1         skip wireguard-go
#   SKIP_LOADED=1       skip the loaded-RTT test (columns show "-")
#   SKIP_SMALL=1        skip the small-packet test (columns show "-")
#   NO_BUILD=1          do not run `cargo build --release` for warrend / warren
#   WARREN_ARGS=""      extra warrend flags, e.g. "--no-offload"
#   BORINGTUN_ARGS=""   extra boringtun-cli flags, e.g. "--threads 2"
#   OUT_DIR=bench/out   where the markdown table is written
#   KEEP_TMP=1          keep the temp dir (daemon logs, iperf3 JSON, ping output)
set -Eeuo pipefail
export LC_ALL=C

DURATION=${DURATION:-8}
OMIT=${OMIT:-1}
UDP_RATE=${UDP_RATE:-3G}
UDP_LEN=${UDP_LEN:-1300}
UDP_WINDOW=${UDP_WINDOW:-4M}
PING_COUNT=${PING_COUNT:-200}
PING_INTERVAL=${PING_INTERVAL:-0.01}
LOADED_PING_INTERVAL=${LOADED_PING_INTERVAL:-0.01}
SMALL_LEN=${SMALL_LEN:-128}
SMALL_RATE=${SMALL_RATE:-0}
SMALL_RETRY=${SMALL_RETRY:-0.9}
SMALL_RETRIES=${SMALL_RETRIES:-4}
SKIP_LOADED=${SKIP_LOADED:-0}
SKIP_SMALL=${SKIP_SMALL:-0}
SKIP_RAW=${SKIP_RAW:-0}
SKIP_WARREN=${SKIP_WARREN:-0}
SKIP_BORINGTUN=${SKIP_BORINGTUN:-0}
SKIP_WGGO=${SKIP_WGGO:-0}
NO_BUILD=${NO_BUILD:-0}
WARREN_ARGS=${WARREN_ARGS:-}
BORINGTUN_ARGS=${BORINGTUN_ARGS:-}

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/.." && pwd)
OUT_DIR=${OUT_DIR:-$REPO_ROOT/bench/out}

# Names. Namespaces are fixed (a lock keeps two runs apart, and leftovers of a
# killed run are removed at start); the veth lives only inside the namespaces.
NS_A=wbench-a
NS_B=wbench-b
VETH=wbench-veth
UL_A=10.77.0.1
UL_B=10.77.0.2
TUN_MTU=1420
IPERF_PORT=5201
# TUN names must differ between the namespaces: userspace WireGuard keeps its
# UAPI socket in /var/run/wireguard/<ifname>.sock, which all namespaces share.
WR_IF_A=wbench-wr-a; WR_IF_B=wbench-wr-b; WR_OV_A=100.64.77.1; WR_OV_B=100.64.77.2; WR_PORT=51820
BT_IF_A=wbench-bt-a; BT_IF_B=wbench-bt-b; BT_OV_A=10.78.0.1;   BT_OV_B=10.78.0.2;   BT_PORT=51821
WG_IF_A=wbench-wg-a; WG_IF_B=wbench-wg-b; WG_OV_A=10.79.0.1;   WG_OV_B=10.79.0.2;   WG_PORT=51822
LOCK_FILE=/run/wbench-dataplane.lock

log()  { printf '[bench] %s\n' "$*" >&2; }
warn() { printf '[bench] WARNING: %s\n' "$*" >&2; }
die()  { printf '[bench] ERROR: %s\n' "$*" >&2; exit 1; }

[[ $(id -u) -eq 0 ]] || die "must run as root (sudo $0)"
for v in DURATION OMIT UDP_LEN PING_COUNT SMALL_LEN; do
    [[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a whole number, got '${!v}'"
done
# The loaded pings run from OMIT s after the transfer starts until 1 s before it ends.
[[ $SKIP_LOADED == 1 ]] || ((DURATION >= 3)) || die "the loaded-RTT test needs DURATION >= 3"
[[ $SMALL_RETRY =~ ^(0|0?\.[0-9]+|1)$ ]] || die "SMALL_RETRY must be a fraction from 0 to 1, got '$SMALL_RETRY'"
[[ $SMALL_RETRIES =~ ^[0-9]+$ ]] || die "SMALL_RETRIES must be a number, got '$SMALL_RETRIES'"

TMP=$(mktemp -d /tmp/wbench.XXXXXX)
DAEMON_PIDS=()   # tunnel processes of the contestant being measured
OTHER_PIDS=()    # iperf3 servers etc.
CHILD_PIDS=()    # the measuring command being waited for
BG_PIDS=()       # measuring commands running beside the waited one (loaded ping)
UAPI_SOCKS=()

kill_pids() {
    local p
    for p in "$@"; do kill "$p" 2>/dev/null || true; done
    for p in "$@"; do
        for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
}

stop_contestant() {
    kill_pids ${CHILD_PIDS[@]+"${CHILD_PIDS[@]}"}
    CHILD_PIDS=()
    kill_pids ${BG_PIDS[@]+"${BG_PIDS[@]}"}
    BG_PIDS=()
    kill_pids ${DAEMON_PIDS[@]+"${DAEMON_PIDS[@]}"} ${OTHER_PIDS[@]+"${OTHER_PIDS[@]}"}
    DAEMON_PIDS=(); OTHER_PIDS=()
    local s
    for s in ${UAPI_SOCKS[@]+"${UAPI_SOCKS[@]}"}; do rm -f "$s"; done
    UAPI_SOCKS=()
}

delete_namespaces() {
    local ns
    for ns in "$NS_A" "$NS_B"; do
        if ip netns list | awk '{print $1}' | grep -qx "$ns"; then
            # Anything still running in there would keep the namespace alive.
            local pids
            pids=$(ip netns pids "$ns" 2>/dev/null || true)
            # shellcheck disable=SC2086  # one pid per word
            [[ -n $pids ]] && kill_pids $pids
            ip netns del "$ns" 2>/dev/null || true
        fi
    done
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    stop_contestant
    delete_namespaces
    if [[ ${KEEP_TMP:-0} == 1 ]]; then log "kept $TMP"; else rm -rf "$TMP"; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

exec 9>"$LOCK_FILE"
flock -n 9 || die "another bench/dataplane.sh run holds $LOCK_FILE"

# ---------------------------------------------------------------- prerequisites

ensure_packages() {
    local need=() cmd pkg
    for pair in iperf3:iperf3 wg:wireguard-tools ip:iproute2 ping:iputils-ping \
                pgrep:procps python3:python3 flock:util-linux; do
        cmd=${pair%%:*}; pkg=${pair#*:}
        command -v "$cmd" >/dev/null 2>&1 || need+=("$pkg")
    done
    local want_wggo=0
    if [[ $SKIP_WGGO != 1 ]] && ! command -v wireguard-go >/dev/null 2>&1; then want_wggo=1; fi
    if ((${#need[@]} == 0 && want_wggo == 0)); then return; fi
    log "installing apt packages: ${need[*]} $( ((want_wggo)) && echo wireguard-go)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq || warn "apt-get update failed"
    if ((${#need[@]})); then
        apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null \
            || die "apt-get install ${need[*]} failed"
    fi
    if ((want_wggo)); then
        apt-get install -y -qq --no-install-recommends wireguard-go >/dev/null \
            || warn "wireguard-go is not installable here; that contestant will be skipped"
    fi
}

# Run a command as the user who invoked sudo (so target/ and ~/.cargo stay
# theirs), or as root when run as root directly.
as_invoker() {
    if [[ -n ${SUDO_USER:-} && $SUDO_USER != root ]]; then
        local home
        home=$(getent passwd "$SUDO_USER" | cut -d: -f6)
        sudo -u "$SUDO_USER" -H env "PATH=$home/.cargo/bin:$PATH" "$@"
    else
        env "PATH=$HOME/.cargo/bin:/root/.cargo/bin:$PATH" "$@"
    fi
}

find_boringtun() {
    local c home=""
    [[ -n ${SUDO_USER:-} ]] && home=$(getent passwd "$SUDO_USER" | cut -d: -f6)
    for c in "$(command -v boringtun-cli 2>/dev/null || true)" \
             ${home:+"$home/.cargo/bin/boringtun-cli"} \
             "$HOME/.cargo/bin/boringtun-cli" /root/.cargo/bin/boringtun-cli; do
        [[ -n $c && -x $c ]] && { echo "$c"; return 0; }
    done
    return 1
}

ensure_packages

BORINGTUN=""
if [[ $SKIP_BORINGTUN != 1 ]]; then
    if ! BORINGTUN=$(find_boringtun); then
        log "boringtun-cli not found; running 'cargo install boringtun-cli --locked' (takes a few minutes)"
        as_invoker cargo install boringtun-cli --locked >&2 || warn "cargo install boringtun-cli failed"
        BORINGTUN=$(find_boringtun) || BORINGTUN=""
    fi
    [[ -n $BORINGTUN ]] || warn "boringtun-cli unavailable; skipping it"
fi

WGGO=""
if [[ $SKIP_WGGO != 1 ]]; then
    WGGO=$(command -v wireguard-go 2>/dev/null || true)
    [[ -n $WGGO ]] || warn "wireguard-go unavailable; skipping it"
fi

WARREND=${WARREND:-$REPO_ROOT/target/release/warrend}
WARREN_CLI=$REPO_ROOT/target/release/warren
if [[ $SKIP_WARREN != 1 ]]; then
    if [[ $NO_BUILD != 1 ]]; then
        log "building warrend and warren (cargo build --release)"
        (cd "$REPO_ROOT" && as_invoker cargo build --release -p warrend -p warren-cli >&2) \
            || die "cargo build --release -p warrend -p warren-cli failed"
    fi
    [[ -x $WARREND ]] || die "$WARREND not found (build it or set SKIP_WARREN=1)"
fi

# ---------------------------------------------------------------- topology

log "creating namespaces $NS_A / $NS_B joined by veth $VETH"
delete_namespaces   # leftovers of a run that was killed with SIGKILL
ip netns add "$NS_A"
ip netns add "$NS_B"
ip -n "$NS_A" link add "$VETH" type veth peer name "$VETH" netns "$NS_B"
ip -n "$NS_A" addr add "$UL_A/24" dev "$VETH"
ip -n "$NS_B" addr add "$UL_B/24" dev "$VETH"
for ns in "$NS_A" "$NS_B"; do
    ip -n "$ns" link set lo up
    ip -n "$ns" link set "$VETH" up
done
mkdir -p /var/run/wireguard

nsa() { ip netns exec "$NS_A" "$@"; }
nsb() { ip netns exec "$NS_B" "$@"; }

# wait_ping DST SECONDS (from namespace A)
wait_ping() {
    local deadline=$((SECONDS + $2))
    while ((SECONDS < deadline)); do
        nsa ping -c 1 -W 1 -q "$1" >/dev/null 2>&1 && return 0
        sleep 0.2
    done
    return 1
}

daemons_alive() {
    local p
    for p in "${DAEMON_PIDS[@]}"; do kill -0 "$p" 2>/dev/null || return 1; done
}

# Sum of utime+stime (clock ticks) of the given processes (all their threads).
proc_ticks() {
    local total=0 p s f
    for p in "$@"; do
        [[ -r /proc/$p/stat ]] || continue
        s=$(<"/proc/$p/stat")
        read -ra f <<<"${s##*) }"    # f[0] is field 3 (state)
        total=$((total + f[11] + f[12]))
    done
    echo "$total"
}
CLK_TCK=$(getconf CLK_TCK)

# utime+stime (clock ticks) of the children this shell has reaped so far. The
# iperf3 client (reaped by timeout, which this shell reaps) and server end up
# here, so a delta around iperf_run is their CPU time: a /proc/PID/stat
# sample would miss it, as both have exited by the time the run is over.
reaped_child_ticks() {
    local s f
    s=$(<"/proc/$$/stat")
    read -ra f <<<"${s##*) }"    # f[13], f[14]: cutime, cstime
    echo $((f[13] + f[14]))
}

# ---------------------------------------------------------------- measurements

# run_waited CMD...: runs CMD in the background and waits for it, so that a
# signal to this script is acted on at once rather than after CMD ends.
run_waited() {
    "$@" &
    local p=$! rc=0
    CHILD_PIDS=("$p")
    wait "$p" || rc=$?
    CHILD_PIDS=()
    return "$rc"
}

# iperf_run NAME DST ARGS... -> JSON in $TMP/NAME.json; returns iperf3's status.
iperf_run() {
    local name=$1 dst=$2; shift 2
    nsb iperf3 -s -1 -p "$IPERF_PORT" >"$TMP/$name.server.log" 2>&1 &
    local srv=$!
    OTHER_PIDS+=("$srv")
    local deadline=$((SECONDS + 5))
    until nsb ss -Hltn "sport = :$IPERF_PORT" 2>/dev/null | grep -q .; do
        ((SECONDS < deadline)) || { warn "iperf3 server did not start"; return 1; }
        sleep 0.1
    done
    local rc=0
    run_waited ip netns exec "$NS_A" timeout $((DURATION + OMIT + 30)) \
        iperf3 -c "$dst" -p "$IPERF_PORT" -J --connect-timeout 3000 -t "$DURATION" "$@" \
        >"$TMP/$name.json" 2>"$TMP/$name.err" || rc=$?
    # Let the server (-1) exit by itself: killed, its CPU time would be
    # lost to the total CPU/Gbps column.
    for _ in $(seq 30); do kill -0 "$srv" 2>/dev/null || break; sleep 0.1; done
    kill_pids "$srv"
    OTHER_PIDS=()
    return "$rc"
}

# Prints Gbit/s received in a TCP test, or "fail".
tcp_gbps() {
    python3 - "$1" <<'EOF' 2>/dev/null || echo fail
import json, sys
d = json.load(open(sys.argv[1]))
if d.get("error"):
    raise SystemExit(1)
print("%.2f" % (d["end"]["sum_received"]["bits_per_second"] / 1e9))
EOF
}

# Prints "<rx Gbit/s> <loss %>" for a UDP test, or "fail fail".
udp_stats() {
    python3 - "$1" "$UDP_LEN" <<'EOF' 2>/dev/null || echo "fail fail"
import json, sys
d = json.load(open(sys.argv[1]))
if d.get("error"):
    raise SystemExit(1)
end = d["end"]
s = end.get("sum_received") or end["sum"]
if "sum_received" in end:
    rx = s["bits_per_second"] / 1e9      # receiver's own count
else:  # older iperf3: datagrams that arrived x payload
    rx = (s["packets"] - s["lost_packets"]) * int(sys.argv[2]) * 8 / s["seconds"] / 1e9
print("%.2f %.1f" % (rx, s["lost_percent"]))
EOF
}

# Prints "<p50> <p99> <replies>/<sent>" (ms) from ping output, or "fail fail fail".
ping_stats() {
    python3 - "$1" <<'EOF' 2>/dev/null || echo "fail fail fail"
import math, re, sys
text = open(sys.argv[1]).read()
t = sorted(float(m) for m in re.findall(r"time[=<]([0-9.]+) ms", text))
if not t:
    raise SystemExit(1)
def pct(p):  # nearest-rank percentile
    return t[max(0, math.ceil(p / 100 * len(t)) - 1)]
sent = re.search(r"([0-9]+) packets transmitted", text)
print("%.3f %.3f %d/%s" % (pct(50), pct(99), len(t), sent.group(1) if sent else "?"))
EOF
}

# Prints "<kpps received> <loss %> <kpps sent>" for a UDP test with $2-byte
# payloads, or "fail fail fail". Received datagrams are the receiver's byte
# count over the payload size: its "packets" field is the highest sequence
# number seen, which counts the lost ones too.
small_stats() {
    python3 - "$1" "$2" <<'EOF' 2>/dev/null || echo "fail fail fail"
import json, sys
d = json.load(open(sys.argv[1]))
if d.get("error"):
    raise SystemExit(1)
end, size = d["end"], int(sys.argv[2])
rx = end["sum_received"]
tx = end.get("sum_sent") or end["sum"]
print("%.1f %.1f %.1f" % (rx["bytes"] / size / rx["seconds"] / 1e3, rx["lost_percent"],
                          tx["bytes"] / size / tx["seconds"] / 1e3))
EOF
}

declare -A R   # R[contestant,metric]
CONTESTANTS=()

# measure NAME DST: runs every test against DST (an address in namespace B)
# with DAEMON_PIDS being the tunnel processes (empty for raw veth).
measure() {
    local name=$1 dst=$2 tag
    tag=$(echo "$name" | tr -c 'a-zA-Z0-9\n' '_')
    CONTESTANTS+=("$name")

    log "[$name] ping x$PING_COUNT"
    run_waited ip netns exec "$NS_A" timeout 120 ping -c "$PING_COUNT" -i "$PING_INTERVAL" -W 1 "$dst" \
        >"$TMP/$tag.ping" 2>&1 || true
    read -r "R[$name,p50]" "R[$name,p99]" _ < <(ping_stats "$TMP/$tag.ping")

    log "[$name] TCP A->B ${DURATION}s"
    local t0 t1 c0 c1 k0 k1
    t0=$(date +%s.%N); c0=$(proc_ticks ${DAEMON_PIDS[@]+"${DAEMON_PIDS[@]}"}); k0=$(reaped_child_ticks)
    iperf_run "$tag.tcp_ab" "$dst" -O "$OMIT" || warn "[$name] iperf3 TCP A->B failed: $(tail -c 300 "$TMP/$tag.tcp_ab.err" 2>/dev/null)"
    t1=$(date +%s.%N); c1=$(proc_ticks ${DAEMON_PIDS[@]+"${DAEMON_PIDS[@]}"}); k1=$(reaped_child_ticks)
    R[$name,tcp_ab]=$(tcp_gbps "$TMP/$tag.tcp_ab.json")
    # CPU per Gbit/s: CPU time over the whole run (warm-up and iperf3 start
    # included, a few % of it) against the rate measured after the warm-up.
    read -r "R[$name,cpu]" "R[$name,cpu_gbps]" "R[$name,cpu_all_gbps]" < <(
        python3 - "$((c1 - c0))" "$((k1 - k0))" "$CLK_TCK" "$t0" "$t1" "${R[$name,tcp_ab]}" "${#DAEMON_PIDS[@]}" <<'EOF' 2>/dev/null || echo "fail fail fail"
import sys
daemon, iperf, tck, t0, t1 = (float(x) for x in sys.argv[1:6])
gbps, ndaemons = sys.argv[6], int(sys.argv[7])
wall = t1 - t0
d_cores, all_cores = daemon / tck / wall, (daemon + iperf) / tck / wall
per = lambda cores: "%.2f" % (cores / float(gbps)) if gbps != "fail" and float(gbps) > 0 else "fail"
print("%.0f" % (d_cores * 100) if ndaemons else "-", per(d_cores) if ndaemons else "-", per(all_cores))
EOF
    )

    log "[$name] TCP B->A ${DURATION}s"
    iperf_run "$tag.tcp_ba" "$dst" -O "$OMIT" -R || warn "[$name] iperf3 TCP B->A failed: $(tail -c 300 "$TMP/$tag.tcp_ba.err" 2>/dev/null)"
    R[$name,tcp_ba]=$(tcp_gbps "$TMP/$tag.tcp_ba.json")

    log "[$name] UDP A->B ${DURATION}s at $UDP_RATE, ${UDP_LEN} B"
    iperf_run "$tag.udp" "$dst" -u -b "$UDP_RATE" -l "$UDP_LEN" ${UDP_WINDOW:+-w "$UDP_WINDOW"} || warn "[$name] iperf3 UDP failed: $(tail -c 300 "$TMP/$tag.udp.err" 2>/dev/null)"
    read -r "R[$name,udp_rx]" "R[$name,udp_loss]" < <(udp_stats "$TMP/$tag.udp.json")

    measure_loaded "$name" "$tag" "$dst"
    measure_small "$name" "$tag" "$dst"

    if ((${#DAEMON_PIDS[@]})) && ! daemons_alive; then
        warn "[$name] a tunnel process exited during the measurements"
        R[$name,note]="daemon exited"
    fi
    log "[$name] TCP ${R[$name,tcp_ab]} / ${R[$name,tcp_ba]} Gbit/s, UDP ${R[$name,udp_rx]} Gbit/s (${R[$name,udp_loss]}% loss), RTT p50 ${R[$name,p50]} p99 ${R[$name,p99]} ms, loaded ${R[$name,lp50]} / ${R[$name,lp99]} ms, ${SMALL_LEN} B ${R[$name,small_kpps]} kpps (${R[$name,small_loss]}% loss), CPU ${R[$name,cpu]}% = ${R[$name,cpu_gbps]} (all ${R[$name,cpu_all_gbps]}) cores per Gbit/s"
}

# measure_loaded NAME TAG DST: ping while iperf3 TCP A->B fills the tunnel.
# Pings go A->B behind the bulk data and their replies come back with the
# ACKs, so they wait in whatever queues the tunnel keeps in both directions.
measure_loaded() {
    local name=$1 tag=$2 dst=$3
    R[$name,lp50]="-"; R[$name,lp99]="-"
    [[ $SKIP_LOADED == 1 ]] && return
    log "[$name] loaded RTT: TCP A->B ${DURATION}s, ping every ${LOADED_PING_INTERVAL}s meanwhile"
    # Starts after the warm-up (plus 0.5 s for the iperf3 server to come up)
    # and ends 1 s before the transfer does, so no ping sees an idle path.
    (sleep "$OMIT.5"; exec ip netns exec "$NS_A" ping -i "$LOADED_PING_INTERVAL" -w $((DURATION - 1)) -W 1 "$dst" \
        >"$TMP/$tag.loaded.ping" 2>&1) &
    BG_PIDS=("$!")
    iperf_run "$tag.loaded" "$dst" -O "$OMIT" || warn "[$name] iperf3 TCP for the loaded RTT failed: $(tail -c 300 "$TMP/$tag.loaded.err" 2>/dev/null)"
    wait "${BG_PIDS[0]}" 2>/dev/null || true
    BG_PIDS=()
    local replies
    read -r "R[$name,lp50]" "R[$name,lp99]" replies < <(ping_stats "$TMP/$tag.loaded.ping")
    R[$name,loaded_info]="loaded RTT: ${replies} ping replies beside $(tcp_gbps "$TMP/$tag.loaded.json") Gbit/s TCP"
}

# measure_small NAME TAG DST: small UDP datagrams, the per-packet cost.
measure_small() {
    local name=$1 tag=$2 dst=$3
    R[$name,small_kpps]="-"; R[$name,small_loss]="-"; R[$name,small2_kpps]="-"; R[$name,small2_loss]="-"
    [[ $SKIP_SMALL == 1 ]] && return
    log "[$name] UDP A->B ${DURATION}s, ${SMALL_LEN} B datagrams at ${SMALL_RATE} (0 = unlimited)"
    iperf_run "$tag.small" "$dst" -u -b "$SMALL_RATE" -l "$SMALL_LEN" ${UDP_WINDOW:+-w "$UDP_WINDOW"} \
        || warn "[$name] iperf3 small UDP failed: $(tail -c 300 "$TMP/$tag.small.err" 2>/dev/null)"
    local sent
    read -r "R[$name,small_kpps]" "R[$name,small_loss]" sent < <(small_stats "$TMP/$tag.small.json" "$SMALL_LEN")
    R[$name,small_info]="${SMALL_LEN} B UDP: ${sent} kpps sent"
    # Runs below the previous one's received rate show what the tunnel delivers
    # without dropping, which an overloaded run cannot: each retry offers
    # SMALL_RETRY x what the last run received, until one loses < 1 %.
    local rate retry kpps=${R[$name,small_kpps]} loss=${R[$name,small_loss]}
    for ((retry = 1; retry <= SMALL_RETRIES; retry++)); do
        rate=$(python3 - "$kpps" "$loss" "$SMALL_RETRY" "$SMALL_LEN" <<'EOF' 2>/dev/null
import sys
kpps, loss, frac, size = float(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
if frac > 0 and loss >= 1 and kpps > 0:
    print(int(kpps * 1e3 * frac * size * 8))
EOF
        ) || rate=""
        [[ -n $rate ]] || return 0
        log "[$name] UDP A->B ${DURATION}s, ${SMALL_LEN} B datagrams at ${SMALL_RETRY} x the received rate ($rate bit/s), retry $retry"
        iperf_run "$tag.small2" "$dst" -u -b "$rate" -l "$SMALL_LEN" ${UDP_WINDOW:+-w "$UDP_WINDOW"} \
            || warn "[$name] iperf3 small UDP retry failed: $(tail -c 300 "$TMP/$tag.small2.err" 2>/dev/null)"
        read -r "R[$name,small2_kpps]" "R[$name,small2_loss]" sent < <(small_stats "$TMP/$tag.small2.json" "$SMALL_LEN")
        R[$name,small_info]+=", then ${sent} kpps sent (${R[$name,small2_loss]} % lost)"
        kpps=${R[$name,small2_kpps]} loss=${R[$name,small2_loss]}
    done
}

mark_failed() {
    local name=$1 why=$2 m
    CONTESTANTS+=("$name")
    for m in tcp_ab tcp_ba udp_rx udp_loss p50 p99 lp50 lp99 small_kpps small_loss small2_kpps small2_loss cpu cpu_gbps cpu_all_gbps; do
        R[$name,$m]=fail
    done
    R[$name,note]=$why
    warn "[$name] $why"
}

dump_logs() {
    local f
    for f in "$@"; do
        [[ -s $f ]] || continue
        printf "[bench] --- last lines of %s ---\n" "${f#"$TMP"/}" >&2
        tail -n 20 "$f" >&2
    done
}

# ---------------------------------------------------------------- contestants

run_raw() {
    measure "raw veth" "$UL_B"
}

run_warren() {
    local name="Warren" d=$TMP/warren
    mkdir -p "$d/a" "$d/b"
    local pub_a pub_b
    pub_a=$("$WARREND" --state-dir "$d/a/state" public-key 2>"$d/a/keygen.err") \
        || { dump_logs "$d/a/keygen.err"; mark_failed "$name" "warrend public-key failed"; return; }
    pub_b=$("$WARREND" --state-dir "$d/b/state" public-key 2>"$d/b/keygen.err") \
        || { dump_logs "$d/b/keygen.err"; mark_failed "$name" "warrend public-key failed"; return; }
    cat >"$d/a/config.toml" <<EOF
[interface]
address = "$WR_OV_A"
mtu = $TUN_MTU

[[peer]]
name = "b"
public_key = "$pub_b"
allowed_ips = ["$WR_OV_B/32"]
endpoint = "$UL_B:$WR_PORT"
persistent_keepalive = 25
EOF
    cat >"$d/b/config.toml" <<EOF
[interface]
address = "$WR_OV_B"
mtu = $TUN_MTU

[[peer]]
name = "a"
public_key = "$pub_a"
allowed_ips = ["$WR_OV_A/32"]
endpoint = "$UL_A:$WR_PORT"
persistent_keepalive = 25
EOF
    local side ns ifn
    for side in a b; do
        if [[ $side == a ]]; then ns=$NS_A; ifn=$WR_IF_A; else ns=$NS_B; ifn=$WR_IF_B; fi
        # shellcheck disable=SC2086  # WARREN_ARGS is a list of flags
        ip netns exec "$ns" env RUST_LOG="${RUST_LOG:-warn}" "$WARREND" \
            --state-dir "$d/$side/state" --socket "$d/$side/warrend.sock" \
            --port "$WR_PORT" --tun "$ifn" --config "$d/$side/config.toml" $WARREN_ARGS \
            >"$d/$side/warrend.log" 2>&1 &
        DAEMON_PIDS+=($!)
    done
    local deadline=$((SECONDS + 10))
    until ip -n "$NS_A" link show "$WR_IF_A" >/dev/null 2>&1 \
          && ip -n "$NS_B" link show "$WR_IF_B" >/dev/null 2>&1; do
        if ! daemons_alive; then
            dump_logs "$d/a/warrend.log" "$d/b/warrend.log"
            stop_contestant; mark_failed "$name" "warrend exited at start"; return
        fi
        if ((SECONDS >= deadline)); then
            dump_logs "$d/a/warrend.log" "$d/b/warrend.log"
            stop_contestant; mark_failed "$name" "TUN device did not appear within 10 s"; return
        fi
        sleep 0.1
    done
    if ! wait_ping "$WR_OV_B" 10; then
        [[ -x $WARREN_CLI ]] && { nsa "$WARREN_CLI" --socket "$d/a/warrend.sock" status --json >&2 || true; }
        dump_logs "$d/a/warrend.log" "$d/b/warrend.log"
        stop_contestant; mark_failed "$name" "no ping reply over the tunnel within 10 s"; return
    fi
    measure "$name" "$WR_OV_B"
    if [[ -n ${R[$name,note]:-} ]]; then dump_logs "$d/a/warrend.log" "$d/b/warrend.log"; fi
    # Where packets were lost over all the tests: warrend's drop counters, the kernel's UDP
    # receive-buffer overflows and the TUN devices' drops, per namespace.
    local dropped
    for side in a b; do
        if [[ $side == a ]]; then ns=$NS_A; ifn=$WR_IF_A; else ns=$NS_B; ifn=$WR_IF_B; fi
        dropped=$(ip netns exec "$ns" "$WARREN_CLI" --socket "$d/$side/warrend.sock" status --json \
            2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin).get("dropped"))' \
            2>/dev/null) || dropped="?"
        log "$name $side: warrend dropped $dropped; UDP $(ip netns exec "$ns" awk \
            '/^Udp:/ && !h {h=1; split($0, k); next} /^Udp:/ {for (i=2;i<=NF;i++) if (k[i] ~ /Errors/) printf "%s=%s ", k[i], $i}' \
            /proc/net/snmp); $ifn $(ip -n "$ns" -s link show "$ifn" | awk '/TX:/ {getline; print "tx dropped=" $4}')"
    done
    # Record which offloads warrend ended up with (from its local API).
    if [[ -x $WARREN_CLI ]]; then
        R[$name,info]=$(nsa "$WARREN_CLI" --socket "$d/a/warrend.sock" status --json 2>/dev/null \
            | python3 -c '
import json, sys
o = json.load(sys.stdin).get("offload") or {}
print("offload " + ", ".join("%s=%s" % (k, str(v).lower()) for k, v in o.items()))
' 2>/dev/null) || true
    fi
    stop_contestant
}

# wg_userspace NAME KIND IF_A IF_B OV_A OV_B PORT: boringtun-cli or wireguard-go,
# configured with wg(8) over the UAPI socket.
wg_userspace() {
    local name=$1 kind=$2 if_a=$3 if_b=$4 ov_a=$5 ov_b=$6 port=$7
    local d=$TMP/$kind
    mkdir -p "$d"
    local side ns ifn
    for side in a b; do
        if [[ $side == a ]]; then ns=$NS_A; ifn=$if_a; else ns=$NS_B; ifn=$if_b; fi
        rm -f "/var/run/wireguard/$ifn.sock"
        UAPI_SOCKS+=("/var/run/wireguard/$ifn.sock")
        if [[ $kind == boringtun ]]; then
            # shellcheck disable=SC2086
            ip netns exec "$ns" env WG_LOG_LEVEL=error "$BORINGTUN" --foreground \
                --disable-drop-privileges $BORINGTUN_ARGS "$ifn" >"$d/$side.log" 2>&1 &
        else
            ip netns exec "$ns" env WG_PROCESS_FOREGROUND=1 LOG_LEVEL=error "$WGGO" "$ifn" \
                >"$d/$side.log" 2>&1 &
        fi
        DAEMON_PIDS+=($!)
    done
    local deadline=$((SECONDS + 10))
    until [[ -S /var/run/wireguard/$if_a.sock && -S /var/run/wireguard/$if_b.sock ]] \
          && ip -n "$NS_A" link show "$if_a" >/dev/null 2>&1 \
          && ip -n "$NS_B" link show "$if_b" >/dev/null 2>&1; do
        if ! daemons_alive; then
            dump_logs "$d/a.log" "$d/b.log"
            stop_contestant; mark_failed "$name" "$kind exited at start"; return
        fi
        if ((SECONDS >= deadline)); then
            dump_logs "$d/a.log" "$d/b.log"
            stop_contestant; mark_failed "$name" "interface or UAPI socket did not appear within 10 s"; return
        fi
        sleep 0.1
    done
    (umask 077; wg genkey >"$d/a.key"; wg genkey >"$d/b.key")
    local pub_a pub_b
    pub_a=$(wg pubkey <"$d/a.key"); pub_b=$(wg pubkey <"$d/b.key")
    if ! nsa wg set "$if_a" private-key "$d/a.key" listen-port "$port" \
            peer "$pub_b" allowed-ips "$ov_b/32" endpoint "$UL_B:$port" \
       || ! nsb wg set "$if_b" private-key "$d/b.key" listen-port "$port" \
            peer "$pub_a" allowed-ips "$ov_a/32" endpoint "$UL_A:$port"; then
        dump_logs "$d/a.log" "$d/b.log"
        stop_contestant; mark_failed "$name" "wg set failed"; return
    fi
    ip -n "$NS_A" addr add "$ov_a/24" dev "$if_a"
    ip -n "$NS_B" addr add "$ov_b/24" dev "$if_b"
    ip -n "$NS_A" link set "$if_a" mtu "$TUN_MTU" up
    ip -n "$NS_B" link set "$if_b" mtu "$TUN_MTU" up
    if ! wait_ping "$ov_b" 10; then
        dump_logs "$d/a.log" "$d/b.log"
        stop_contestant; mark_failed "$name" "no ping reply over the tunnel within 10 s"; return
    fi
    measure "$name" "$ov_b"
    if [[ -n ${R[$name,note]:-} ]]; then dump_logs "$d/a.log" "$d/b.log"; fi
    stop_contestant
}

SKIPPED=()
if [[ $SKIP_RAW == 1 ]]; then SKIPPED+=("raw veth (SKIP_RAW=1)"); else run_raw; fi
if [[ $SKIP_WARREN == 1 ]]; then SKIPPED+=("Warren (SKIP_WARREN=1)"); else run_warren; fi
if [[ $SKIP_BORINGTUN == 1 ]]; then SKIPPED+=("boringtun-cli (SKIP_BORINGTUN=1)")
elif [[ -z $BORINGTUN ]]; then SKIPPED+=("boringtun-cli (not installed)")
else wg_userspace "boringtun-cli" boringtun "$BT_IF_A" "$BT_IF_B" "$BT_OV_A" "$BT_OV_B" "$BT_PORT"; fi
if [[ $SKIP_WGGO == 1 ]]; then SKIPPED+=("wireguard-go (SKIP_WGGO=1)")
elif [[ -z $WGGO ]]; then SKIPPED+=("wireguard-go (not installed)")
else wg_userspace "wireguard-go" wggo "$WG_IF_A" "$WG_IF_B" "$WG_OV_A" "$WG_OV_B" "$WG_PORT"; fi

# ---------------------------------------------------------------- report

HEAD=("contestant" "TCP A→B Gbit/s" "TCP B→A Gbit/s" "UDP rx Gbit/s" "UDP loss %" "RTT p50 ms" "RTT p99 ms"
      "loaded p50 ms" "loaded p99 ms" "${SMALL_LEN} B kpps" "${SMALL_LEN} B loss %" "${SMALL_LEN} B kpps retried" "loss % retried"
      "daemon CPU %" "tunnel CPU/Gbps" "total CPU/Gbps")
row() {
    local n=$1
    echo "$n|${R[$n,tcp_ab]}|${R[$n,tcp_ba]}|${R[$n,udp_rx]}|${R[$n,udp_loss]}|${R[$n,p50]}|${R[$n,p99]}|${R[$n,lp50]}|${R[$n,lp99]}|${R[$n,small_kpps]}|${R[$n,small_loss]}|${R[$n,small2_kpps]}|${R[$n,small2_loss]}|${R[$n,cpu]}|${R[$n,cpu_gbps]}|${R[$n,cpu_all_gbps]}"
}

# ratio NUM_CONTESTANT DEN_CONTESTANT METRIC
ratio() {
    python3 - "${R[$1,$3]:-}" "${R[$2,$3]:-}" <<'EOF' 2>/dev/null || echo "n/a"
import sys
a, b = float(sys.argv[1]), float(sys.argv[2])
print("%.2f" % (a / b))
EOF
}

TABLE=$(
    IFS='|'; echo "${HEAD[*]}"
    for c in "${CONTESTANTS[@]}"; do row "$c"; done
)
RATIOS=""
have() { local c; for c in "${CONTESTANTS[@]}"; do [[ $c == "$1" ]] && return 0; done; return 1; }
for other in "boringtun-cli" "wireguard-go"; do
    if have Warren && have "$other"; then
        RATIOS+="Warren/$other: TCP A→B $(ratio Warren "$other" tcp_ab)x, TCP B→A $(ratio Warren "$other" tcp_ba)x, RTT p50 $(ratio Warren "$other" p50)x, loaded RTT p99 $(ratio Warren "$other" lp99)x, ${SMALL_LEN} B kpps $(ratio Warren "$other" small_kpps)x, tunnel CPU/Gbps $(ratio Warren "$other" cpu_gbps)x (lower is better for RTT and CPU)"$'\n'
    fi
done

# Issue 23's targets for Warren, judged against boringtun-cli of the same run.
TARGETS=""
if have Warren; then
    TARGETS=$(python3 - "$SMALL_LEN" "${R[Warren,tcp_ab]}" "${R[Warren,p50]}" "${R[Warren,p99]}" \
        "${R[Warren,lp99]}" "${R[Warren,small_kpps]}" "${R[Warren,small_loss]}" \
        "${R[Warren,small2_kpps]}" "${R[Warren,small2_loss]}" \
        "${R[boringtun-cli,tcp_ab]:-}" "${R[boringtun-cli,p50]:-}" "${R[boringtun-cli,small_kpps]:-}" <<'EOF' 2>/dev/null || true
import sys
size = sys.argv[1]
def num(s):
    try:
        return float(s)
    except ValueError:
        return None
w_tcp, w_p50, w_p99, w_lp99, w_kpps, w_loss, w_kpps2, w_loss2, b_tcp, b_p50, b_kpps = (num(x) for x in sys.argv[2:])
# Warren's rate counts only from a run that lost < 1 %; boringtun-cli's is the
# most it delivered, lossy or not, which can only make the target harder.
if w_loss is not None and w_loss >= 1:
    w_kpps, w_loss = w_kpps2, w_loss2
def judge(what, ok, detail):
    state = "not measured" if ok is None else ("met" if ok else "NOT met")
    print("target %s: %s (%s)" % (what, state, detail))
both = lambda *xs: None not in xs
judge("TCP >= 8x boringtun-cli", w_tcp / b_tcp >= 8 if both(w_tcp, b_tcp) and b_tcp else None,
      "%.2fx" % (w_tcp / b_tcp) if both(w_tcp, b_tcp) and b_tcp else "no boringtun-cli figure")
judge("RTT p50 <= boringtun-cli's", w_p50 <= b_p50 if both(w_p50, b_p50) else None,
      "%s vs %s ms" % (w_p50, b_p50))
judge("RTT p99 <= 2x p50", w_p99 <= 2 * w_p50 if both(w_p99, w_p50) else None,
      "%s vs 2 x %s ms" % (w_p99, w_p50))
judge("loaded RTT p99 <= 2 ms", w_lp99 <= 2 if w_lp99 is not None else None, "%s ms" % w_lp99)
ok = w_kpps / b_kpps >= 3 and w_loss < 1 if both(w_kpps, b_kpps, w_loss) and b_kpps else None
judge("%s B UDP kpps >= 3x boringtun-cli with < 1 %% loss" % size, ok,
      "%.2fx, %s %% loss" % (w_kpps / b_kpps, w_loss) if ok is not None else "no figure")
EOF
    )
fi

# format_table text|md: reads "a|b|c" lines (first one is the header).
format_table() {
    python3 -c '
import sys
mode = sys.argv[1]
rows = [l.rstrip("\n").split("|") for l in sys.stdin if l.strip()]
if mode == "md":
    print("| " + " | ".join(rows[0]) + " |")
    print("|" + "|".join(["---"] + ["---:"] * (len(rows[0]) - 1)) + "|")
    for r in rows[1:]:
        print("| " + " | ".join(r) + " |")
else:
    w = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    fmt = lambda r: "  ".join((c.ljust(w[i]) if i == 0 else c.rjust(w[i])) for i, c in enumerate(r))
    print(fmt(rows[0]))
    print("  ".join("-" * x for x in w))
    for r in rows[1:]:
        print(fmt(r))
' "$1"
}

CPU_MODEL=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
GIT_REV=$(git -C "$REPO_ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
if ! git -C "$REPO_ROOT" diff --quiet HEAD -- 2>/dev/null; then GIT_REV+="+dirty"; fi
PARAMS="duration ${DURATION}s (TCP omit ${OMIT}s), UDP ${UDP_RATE} offered with ${UDP_LEN} B payloads (iperf3 -w ${UDP_WINDOW:-default}), ${PING_COUNT} pings every ${PING_INTERVAL}s, loaded pings every ${LOADED_PING_INTERVAL}s, ${SMALL_LEN} B UDP offered at ${SMALL_RATE} (0 = unlimited; then at ${SMALL_RETRY} x the last received rate while loss >= 1 %, up to ${SMALL_RETRIES} times), tunnel MTU ${TUN_MTU}"
if [[ -n $WARREN_ARGS ]]; then PARAMS+=", warrend ${WARREN_ARGS}"; fi
if [[ -n $BORINGTUN_ARGS ]]; then PARAMS+=", boringtun-cli ${BORINGTUN_ARGS}"; fi
HOST="$(nproc) cores ($CPU_MODEL), kernel $(uname -r), commit $GIT_REV"

echo
echo "Data plane: two network namespaces over one veth; $PARAMS"
echo "Host: $HOST"
echo
printf '%s\n' "$TABLE" | format_table text
echo
print_notes() {   # print_notes PREFIX
    if [[ -n $RATIOS ]]; then printf '%s' "$RATIOS" | sed "s/^/$1/"; fi
    local c s
    for c in "${CONTESTANTS[@]}"; do
        if [[ -n ${R[$c,note]:-} ]]; then echo "${1}note: $c: ${R[$c,note]}"; fi
        if [[ -n ${R[$c,info]:-} ]]; then echo "${1}$c: ${R[$c,info]}"; fi
    done
    for c in "${CONTESTANTS[@]}"; do
        if [[ -n ${R[$c,loaded_info]:-} ]]; then echo "${1}$c: ${R[$c,loaded_info]}"; fi
        if [[ -n ${R[$c,small_info]:-} ]]; then echo "${1}$c: ${R[$c,small_info]}"; fi
    done
    if [[ -n $TARGETS ]]; then printf '%s\n' "$TARGETS" | sed "s/^/$1/"; fi
    echo "${1}targets: Warren against boringtun-cli of this run; the ${SMALL_LEN} B one takes Warren's rate from a run with < 1 % loss and boringtun-cli's highest received rate"
    for s in ${SKIPPED[@]+"${SKIPPED[@]}"}; do echo "${1}skipped: $s"; done
    echo "${1}daemon CPU % = utime+stime of both tunnel processes during TCP A→B / wall time (100 = one core)"
    echo "${1}tunnel CPU/Gbps = that as cores over the A→B Gbit/s (CPU seconds per Gbit); total CPU/Gbps adds the iperf3 client and server (per-process /proc times, not /proc/stat, so other work on the host is left out; softirq work in ksoftirqd is not counted)"
}
print_notes ""

mkdir -p "$OUT_DIR"
MD=$OUT_DIR/dataplane-$(date +%Y%m%d-%H%M%S).md
{
    echo "## Data-plane benchmark ($(date -u '+%Y-%m-%d %H:%M UTC'))"
    echo
    echo "Two network namespaces over one veth; $PARAMS."
    echo "Host: $HOST."
    echo
    printf '%s\n' "$TABLE" | format_table md
    echo
    print_notes "- "
} >"$MD"
if [[ -n ${SUDO_USER:-} && $SUDO_USER != root ]]; then chown -R "$SUDO_USER": "$OUT_DIR" 2>/dev/null || true; fi
echo "markdown written to $MD"

# Non-zero exit when a contestant that was run could not be measured.
for c in "${CONTESTANTS[@]}"; do
    for m in tcp_ab tcp_ba udp_rx p50; do
        if [[ ${R[$c,$m]} == fail ]]; then exit 1; fi
    done
done

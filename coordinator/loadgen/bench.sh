#!/bin/sh
# The coordinator-at-scale baseline (issue 22): a release build of warren-coordinator and
# warren-loadgen, then one table per scenario. Each scenario has time limits, so the script
# always ends; a scenario that fails still prints its table (what failed, and how).
# Not for CI: it runs for several minutes and wants both cores.
#
#   coordinator/loadgen/bench.sh            # all scenarios
#   coordinator/loadgen/bench.sh 150-1 restart   # some of them (names below)
set -u
cd "$(dirname "$0")/../.."
nice -n 10 cargo build --release -p warren-coordinator -p warren-loadgen || exit 1
bin=target/release/warren-loadgen
limit=${LIMIT:-120}

run() {
    name=$1
    shift
    echo
    echo "## $name: $*"
    # The hard stop is a safety net: the load generator's own limits end it well before.
    timeout -s KILL $((limit * 3 + 60)) "$bin" --time-limit "$limit" "$@"
    echo "(exit $?: 0 complete, 2 incomplete)"
}

scenarios=${*:-"150-1 150-1-password 1000-10 1000-10-password 2000-1 10000-100 10000-100-password restart restart-10000"}
uname -a
nproc
grep -m1 'model name' /proc/cpuinfo
for s in $scenarios; do
    case $s in
    150-1) run "$s" --hosts 150 --networks 1 --transport mixed ;;
    150-1-password) run "$s" --hosts 150 --networks 1 --transport mixed --join password ;;
    1000-10) run "$s" --hosts 1000 --networks 10 --transport mixed ;;
    1000-10-password) run "$s" --hosts 1000 --networks 10 --transport mixed --join password ;;
    2000-1) run "$s" --hosts 2000 --networks 1 --transport mixed ;;
    10000-100) run "$s" --hosts 10000 --networks 100 --transport mixed ;;
    10000-100-ramp) run "$s" --hosts 10000 --networks 100 --transport mixed --ramp 60 ;;
    10000-100-password) run "$s" --hosts 10000 --networks 100 --transport mixed --join password ;;
    restart) run "$s" --hosts 1000 --networks 10 --transport mixed --restart ;;
    restart-10000) run "$s" --hosts 10000 --networks 100 --transport mixed --restart ;;
    *) echo "unknown scenario $s" >&2 ;;
    esac
done

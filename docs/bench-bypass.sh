#!/bin/sh
# Sustained XDP-bypass benchmark (docs/performance.md, "XDP bypass").
#
#   cargo build --release -p flowscope-cli --bins
#   sudo docs/bench-bypass.sh [PCAP] [LOOPS] [RUNS] [CONFIGS]
#
# In two network namespaces made here (names carry this shell's pid; both
# are deleted on exit, also on failure or Ctrl-C), joined by a veth pair
# (MTU 65000, IPv6 off, no addresses: only the replayed frames cross it),
# `flow-replay --speed max --loop LOOPS` sends PCAP remapped into
# 198.18.0.0/15 and 2001:2::/48 from one side, and
# `flow-summary --iface … --workers 2 -f ndjson` captures on the other,
# under /usr/bin/time, once per configuration and RUNS times each:
#   none           no bypass
#   tls            --bypass tls --bypass-mode generic
#   bytes:N        --bypass bytes:N --bypass-mode generic
# CONFIGS is a space-separated list (default "none tls bytes:65536").
# Nothing is sent on any other interface.
#
# One line per run, then one line per configuration with the medians:
#   sent, sender frames/s, userspace packets (and per second of the replay),
#   frames dropped in XDP, kernel (ring) drops, capture user+sys CPU seconds.
# Environment: BIN (default target/release), WORKERS (default 2).
set -eu

# The corpus as the tests find it: $FLOWSCOPE_CORPUS, else ../shared/corpus
# beside the repository.
CORPUS=${FLOWSCOPE_CORPUS:-$(cd "$(dirname "$0")/.." && pwd)/../shared/corpus}
PCAP=${1:-$CORPUS/pcaps/ndpi__reddit.pcap}
LOOPS=${2:-2000}
RUNS=${3:-3}
CONFIGS=${4:-"none tls bytes:65536"}
BIN=${BIN:-target/release}
WORKERS=${WORKERS:-2}

[ "$(id -u)" = 0 ] || { echo "bench-bypass: needs root (namespaces, XDP)" >&2; exit 2; }
[ -x "$BIN/flow-replay" ] && [ -x "$BIN/flow-summary" ] ||
    { echo "bench-bypass: build first: cargo build --release -p flowscope-cli --bins" >&2; exit 2; }
[ -r "$PCAP" ] || { echo "bench-bypass: cannot read $PCAP" >&2; exit 2; }

TAG=fbb$$
TX=${TAG}tx RX=${TAG}rx A=${TAG}a B=${TAG}b
WORK=$(mktemp -d "/tmp/bench-bypass.$$.XXXX")
CAP_PID=

cleanup() {
    if [ -n "$CAP_PID" ]; then
        kill "$CAP_PID" 2>/dev/null || true
        wait 2>/dev/null || true
    fi
    ip netns del "$TX" 2>/dev/null || true
    ip netns del "$RX" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ip netns add "$TX"
ip netns add "$RX"
ip link add "$A" type veth peer name "$B"
for pair in "$TX $A" "$RX $B"; do
    set -- $pair
    ip link set "$2" netns "$1"
    for k in all default "$2"; do
        ip netns exec "$1" sysctl -qw "net.ipv6.conf.$k.disable_ipv6=1"
    done
    ip -n "$1" link set "$2" mtu 65000 up
done

NO_TIMEOUTS="--tcp-timeout 1e9 --syn-timeout 1e9 --closed-timeout 1e9 --udp-timeout 1e9 \
--icmp-timeout 1e9 --other-timeout 1e9"

# One run: prints "config run sent tx_pps tx_s user_pkts user_pps xdp kdrops user_s sys_s".
run_one() {
    cfg=$1 n=$2
    case $cfg in
        none) extra= ;;
        *) extra="--bypass $cfg --bypass-mode generic" ;;
    esac
    err=$WORK/err
    : >"$err"
    # shellcheck disable=SC2086
    ip netns exec "$RX" /usr/bin/time -f "cpu %U %S" -o "$WORK/time" \
        "$BIN/flow-summary" --iface "$B" --workers "$WORKERS" --progress never \
        -f ndjson -o /dev/null $NO_TIMEOUTS $extra 2>"$err" &
    tpid=$!
    i=0
    until grep -q "capturing on" "$err" 2>/dev/null; do
        i=$((i + 1))
        [ $i -lt 200 ] || { cat "$err" >&2; exit 1; }
        sleep 0.05
    done
    # /usr/bin/time ignores SIGINT; the capture is its only child.
    CAP_PID=$(pgrep -P "$tpid") || { echo "bench-bypass: capture not found" >&2; exit 1; }
    ip netns exec "$TX" "$BIN/flow-replay" -q --iface "$A" --speed max --loop "$LOOPS" \
        --remap-ipv4 198.18.0.0/15 --remap-ipv6 2001:2::/48 \
        --report-json "$WORK/rep.json" "$PCAP"
    sleep 1
    kill -INT "$CAP_PID"
    wait "$tpid" || { cat "$err" >&2; exit 1; }
    CAP_PID=
    sent=$(sed -n 's/.*"packets_sent": \([0-9]*\).*/\1/p' "$WORK/rep.json")
    tx_s=$(sed -n 's/.*"elapsed_s": \([0-9.e-]*\).*/\1/p' "$WORK/rep.json")
    total=$(grep "^flow-summary: total " "$err")
    kv() { echo "$total" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
    user=$(kv packets)
    xdp=$(kv bypassed_packets)
    kd=$(kv kernel_drops)
    set -- $(sed -n 's/^cpu //p' "$WORK/time")
    awk -v c="$cfg" -v n="$n" -v s="$sent" -v t="$tx_s" -v u="$user" -v x="${xdp:-0}" \
        -v k="${kd:-0}" -v us="$1" -v sy="$2" 'BEGIN {
        printf "%s %d %d %.0f %.3f %d %.0f %d %d %.2f %.2f\n",
            c, n, s, s / t, t, u, u / t, x, k, us, sy }'
}

median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

echo "# $(basename "$PCAP") x $LOOPS loops, $WORKERS workers, $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# config run sent tx_pps tx_s user_pkts user_pps xdp_dropped kernel_drops user_s sys_s"
for cfg in $CONFIGS; do
    for n in $(seq 1 "$RUNS"); do
        # Not in a pipeline: a failure exits this shell, whose trap stops
        # the capture and removes the namespaces.
        run_one "$cfg" "$n" >"$WORK/line"
        cat "$WORK/line" >>"$WORK/runs"
        cat "$WORK/line"
    done
done
for cfg in $CONFIGS; do
    m() { awk -v c="$cfg" -v f="$1" '$1 == c { print $f }' "$WORK/runs" | median; }
    printf 'SUMMARY %-12s sent %s  sender %s frames/s  userspace %s pkts (%s pkts/s)  xdp_dropped %s  kernel_drops %s  cpu user %s s sys %s s  (medians of %s)\n' \
        "$cfg" "$(m 3)" "$(m 4)" "$(m 6)" "$(m 7)" "$(m 8)" "$(m 9)" "$(m 10)" "$(m 11)" "$RUNS"
done

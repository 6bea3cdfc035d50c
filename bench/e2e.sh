#!/usr/bin/env bash
# e2e.sh: end-to-end TCP throughput between two network namespaces, through
# faradayd on both ends (with --workers 1, then --workers 2: a TUN queue and a
# UDP socket per worker), through Debian's wireguard-go on
# both ends, and over the bare veth with no tunnel (the ceiling), all in one
# run on the same topology (the diagram is at the top of tests/interop/lib.sh):
#
#   iperf3 -c (ns A) --[ IF_A ]== UDP over veth ==[ IF_B ]--> iperf3 -s (ns B)
#
# Usage (root):  bench/e2e.sh [FARADAYD]     default build/control/faradayd
# Environment:   BENCH_SECONDS (10)  seconds per iperf3 run
#                BENCH_STREAMS (1)   parallel TCP streams (iperf3 -P)
#                WIREGUARD_GO        path (default: from PATH)
#
# Prints a table in Gbit/s, each daemon's resident set (VmRSS of side A and B,
# read half-way through the run, under load), and the ratios faradayd /
# wireguard-go and 2 workers / 1 worker. If an
# implementation does not come up or carry traffic, it says why and still
# prints the other figures; the exit status is then 1 (logs are kept).
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../tests/interop/lib.sh
. "$here/../tests/interop/lib.sh"

secs=${BENCH_SECONDS:-10}
streams=${BENCH_STREAMS:-1}
if [ $# -ge 1 ] && [ -n "$1" ]; then FARADAYD=$1; fi
WG_LOG_LEVEL=error # no logging cost on either side's hot path

host_check
work_init
echo "=== e2e: iperf3 TCP, ${secs} s, -P $streams, ns A -> ns B (run $RUN_ID, logs in $WORK)"
topology_up

# measure LABEL DST: one iperf3 run from A to DST; prints Gbit/s.
measure() {
	local label=$1 dst=$2 rate
	iperf_server B
	step "iperf3 $label: -c $dst -t $secs -P $streams" >&2
	rate=$(iperf_gbit A "$dst" "$secs" -P "$streams")
	iperf_server_stop B
	echo "$rate"
}

# rss_kib SIDE: that side's daemon's VmRSS in KiB, or "?".
rss_kib() {
	local v="PID_$1" status
	status="/proc/${!v:-0}/status"
	if [ -r "$status" ]; then
		awk '/^VmRSS:/ { print $2; found = 1 } END { if (!found) print "?" }' "$status"
	else
		echo "?"
	fi
}

# tunnel_rate KEY IMPL [FARADAYD_ARGS]: both ends run IMPL; prints Gbit/s
# through the tunnel or dies with the reason, and leaves both daemons' RSS,
# sampled half-way through the run, in $WORK/rss-KEY. Run in a subshell, so a
# failure ends only this figure.
tunnel_rate() {
	local key=$1
	IMPL_A=$2
	IMPL_B=$2
	FARADAYD_ARGS=${3:-}
	STEP="start $key"
	impl_usable "$2" || die "$WHY_NOT"
	{
		tunnel_up 4
		assert_ping A "$OL4_B"
		wait_handshake A 5
	} >&2
	local sampler
	(
		sleep "$(awk -v s="$secs" 'BEGIN { print s / 2 }')"
		echo "$(rss_kib A) $(rss_kib B)" >"$WORK/rss-$key"
	) >/dev/null &
	sampler=$!
	measure "$key" "$OL4_B"
	wait "$sampler" || true
	{
		assert_alive A B
		tunnel_down
	} >&2
}

declare -A rate=() why=()
failed=0

step "raw veth (no tunnel)"
rate[raw]=$(measure "raw veth" "$UL4_B")
log "raw veth: ${rate[raw]} Gbit/s"

# key, implementation, faradayd options
runs=(
	"wireguard-go wireguard-go"
	"faradayd-w1 faradayd --workers 1"
	"faradayd-w2 faradayd --workers 2"
)
for run in "${runs[@]}"; do
	read -r impl what args <<<"$run"
	echo "--- $impl <-> $impl"
	mark=$(tracked_count)
	rm -f "$WORK/last_fail" "$WORK/dumped"
	# Not under `if`: errexit must stay live inside the subshell.
	trap - ERR
	set +e
	r=$(
		set -e
		trap "$ERR_TRAP" ERR
		tunnel_rate "$impl" "$what" "$args"
	)
	rc=$?
	set -e
	trap "$ERR_TRAP" ERR
	if [ "$rc" -eq 0 ] && [ -n "$r" ]; then
		rate[$impl]=$r
		log "$impl <-> $impl: $r Gbit/s"
	else
		failed=1
		why[$impl]=$(cat "$WORK/last_fail" 2>/dev/null || echo "exit status $rc")
		echo "    $impl did not produce a figure: ${why[$impl]}"
		kill_tracked_since "$mark"
	fi
done

# row LABEL KEY: one line of the table.
row() {
	local label=$1 key=$2 rss="- -"
	[ -f "$WORK/rss-$key" ] && rss=$(cat "$WORK/rss-$key")
	if [ -n "${rate[$key]:-}" ]; then
		awk -v l="$label" -v r="${rate[$key]}" -v raw="${rate[raw]}" -v rss="$rss" \
			'BEGIN { split(rss, m, " ");
				printf "  %-40s %8.3f   %5.1f%%   %8s %8s\n", l, r, 100 * r / raw, m[1], m[2] }'
	else
		printf '  %-40s %8s   %6s  %s\n' "$label" "-" "-" "(failed: ${why[$key]:-?})"
	fi
}

# ratio LABEL NUM DEN: NUM / DEN of the rates, or n/a.
ratio() {
	if [ -n "${rate[$2]:-}" ] && [ -n "${rate[$3]:-}" ]; then
		awk -v l="$1" -v n="${rate[$2]}" -v d="${rate[$3]}" \
			'BEGIN { if (d > 0) printf "  %s: %.2fx\n", l, n / d }'
	else
		echo "  $1: n/a"
	fi
}

echo
printf '  %-40s %8s   %6s   %8s %8s\n' "iperf3 TCP A->B, ${secs} s, -P $streams" "Gbit/s" \
	"of raw" "RSS A" "RSS B"
printf '  %-40s %8s   %6s   %8s %8s\n' "" "" "" "KiB" "KiB"
row "raw veth (no tunnel)" raw
row "wireguard-go <-> wireguard-go" wireguard-go
row "faradayd --workers 1 <-> same" faradayd-w1
row "faradayd --workers 2 <-> same" faradayd-w2
ratio "faradayd --workers 1 / wireguard-go" faradayd-w1 wireguard-go
ratio "faradayd --workers 2 / wireguard-go" faradayd-w2 wireguard-go
ratio "faradayd 2 workers / 1 worker" faradayd-w2 faradayd-w1
STEP="done"
exit "$failed"

#!/usr/bin/env bash
# e2e.sh: end-to-end TCP throughput between two network namespaces, through
# faradayd on both ends, through Debian's wireguard-go on both ends, and over
# the bare veth with no tunnel (the ceiling), all in one run on the same
# topology (the diagram is at the top of tests/interop/lib.sh):
#
#   iperf3 -c (ns A) --[ IF_A ]== UDP over veth ==[ IF_B ]--> iperf3 -s (ns B)
#
# Usage (root):  bench/e2e.sh [FARADAYD]     default build/control/faradayd
# Environment:   BENCH_SECONDS (10)  seconds per iperf3 run
#                BENCH_STREAMS (1)   parallel TCP streams (iperf3 -P)
#                WIREGUARD_GO        path (default: from PATH)
#
# Prints a table in Gbit/s and the ratio faradayd / wireguard-go. If an
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

# tunnel_rate IMPL: both ends run IMPL; prints Gbit/s through the tunnel or
# dies with the reason. Run in a subshell, so a failure ends only this figure.
tunnel_rate() {
	IMPL_A=$1
	IMPL_B=$1
	STEP="start $1"
	impl_usable "$1" || die "$WHY_NOT"
	{
		tunnel_up 4
		assert_ping A "$OL4_B"
		wait_handshake A 5
	} >&2
	measure "$1 <-> $1" "$OL4_B"
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

for impl in wireguard-go faradayd; do
	echo "--- $impl <-> $impl"
	mark=$(tracked_count)
	rm -f "$WORK/last_fail" "$WORK/dumped"
	# Not under `if`: errexit must stay live inside the subshell.
	trap - ERR
	set +e
	r=$(
		set -e
		trap "$ERR_TRAP" ERR
		tunnel_rate "$impl"
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
	local label=$1 key=$2
	if [ -n "${rate[$key]:-}" ]; then
		awk -v l="$label" -v r="${rate[$key]}" -v raw="${rate[raw]}" \
			'BEGIN { printf "  %-30s %8.3f   %5.1f%%\n", l, r, 100 * r / raw }'
	else
		printf '  %-30s %8s   %6s  %s\n' "$label" "-" "-" "(failed: ${why[$key]:-?})"
	fi
}

echo
printf '  %-30s %8s   %6s\n' "iperf3 TCP A->B, ${secs} s, -P $streams" "Gbit/s" "of raw"
row "raw veth (no tunnel)" raw
row "wireguard-go <-> wireguard-go" wireguard-go
row "faradayd <-> faradayd" faradayd
if [ -n "${rate[faradayd]:-}" ] && [ -n "${rate[wireguard-go]:-}" ]; then
	awk -v f="${rate[faradayd]}" -v w="${rate[wireguard-go]}" \
		'BEGIN { if (w > 0) printf "  faradayd / wireguard-go: %.2fx\n", f / w }'
else
	echo "  faradayd / wireguard-go: n/a"
fi
STEP="done"
exit "$failed"

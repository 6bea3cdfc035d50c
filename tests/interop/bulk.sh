#!/usr/bin/env bash
# Case 2: TCP bulk transfer through the tunnel with iperf3, A -> B and then
# B -> A (-R). Each direction must beat IPERF_FLOOR_MBIT; rates are printed.
# A faradayd that sent must have used the kernel offloads: TSO super-packets
# read from its TUN and UDP GSO; one that received, coalesced TUN writes.
# Usage: IMPL_A=... IMPL_B=... bulk.sh [FARADAYD]   (diagram: lib.sh)
. "$(dirname "$0")/lib.sh"
interop_init "${1:-}"
secs=${IPERF_SECONDS:-3}
# assert_offloads SENDER RECEIVER: after a transfer, the faradayd ends' counters.
assert_offloads() {
	local line
	if [ "$(impl_of "$1")" = faradayd ]; then
		line=$(counters_line "$1")
		log "$1 sent: rx_super=$(stat_of "$line" rx_super) tx_gso_messages=$(stat_of "$line" tx_gso_messages) turns=$(stat_of "$line" turns)"
		[ "$(stat_of "$line" rx_super)" -gt 0 ] || die "$1's TUN handed over no TSO super-packet"
		[ "$(stat_of "$line" tx_gso_messages)" -gt 0 ] || die "$1 sent no UDP GSO message"
	fi
	if [ "$(impl_of "$2")" = faradayd ]; then
		line=$(counters_line "$2")
		log "$2 received: tx_super=$(stat_of "$line" tx_super) rx_gro_super=$(stat_of "$line" rx_gro_super) turns=$(stat_of "$line" turns)"
		[ "$(stat_of "$line" tx_super)" -gt 0 ] || die "$2 wrote no coalesced TUN super-packet"
	fi
}

# The receiving side's TCP counts segments that came out of order
# (TcpExtTCPOFOQueue): nstat's history starts now.
ofo_reset() { ip netns exec "$(ns_of "$1")" nstat -n >/dev/null; }
# assert_in_order SENDER RECEIVER: after a transfer, the segments the receiver
# queued out of order. Between two faradayd (workers taking turns on one
# queue's bursts both ways) fewer than 1 in 1000: a loss under load may leave
# a few, a turn sent out of order would leave thousands. wireguard-go's own
# receive path reorders, so with it the count is only logged.
assert_in_order() {
	local ofo segs
	read -r ofo segs < <(ip netns exec "$(ns_of "$2")" nstat -z TcpExtTCPOFOQueue TcpInSegs |
		awk '{ v[$1] = $2 } END { print v["TcpExtTCPOFOQueue"] + 0, v["TcpInSegs"] + 0 }')
	log "$2 received $segs TCP segments, $ofo of them out of order"
	if [ "$(impl_of "$1")" = faradayd ] && [ "$(impl_of "$2")" = faradayd ] &&
		[ $((ofo * 1000)) -ge "$segs" ]; then
		die "$2 received $ofo of $segs segments out of order from $1"
	fi
}

topology_up
tunnel_up
assert_ping A "$OL4_B"
iperf_server B

step "iperf3 TCP A -> B over the tunnel, $secs s"
ofo_reset B
rate=$(iperf_gbit A "$OL4_B" "$secs")
assert_rate "TCP A($IMPL_A) -> B($IMPL_B)" "$rate"
assert_offloads A B
assert_in_order A B

step "iperf3 TCP B -> A over the tunnel (-R), $secs s"
ofo_reset A
rate=$(iperf_gbit A "$OL4_B" "$secs" -R)
assert_rate "TCP B($IMPL_B) -> A($IMPL_A)" "$rate"
assert_offloads B A
assert_in_order B A

assert_alive A B
assert_ping B "$OL4_A"
pass

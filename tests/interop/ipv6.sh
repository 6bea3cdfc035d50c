#!/usr/bin/env bash
# Case 4: IPv6 underlay (endpoints on fd99::/64) carrying the IPv6 overlay and
# the IPv4 overlay, ping both ways plus a short iperf3 run.
# Usage: IMPL_A=... IMPL_B=... ipv6.sh [FARADAYD]   (diagram: lib.sh)
. "$(dirname "$0")/lib.sh"
interop_init "${1:-}"
topology_up
tunnel_up 6

assert_ping A "$OL6_B"
wait_handshake A 5
wait_handshake B 5
for side in A B; do
	step "side $side's endpoint is on the IPv6 underlay"
	peer=$(other "$side")
	want="[$(ul6_of "$peer")]:$(port_of "$peer")"
	ep=$(peer_endpoint "$side")
	[ "$ep" = "$want" ] || die "side $side has endpoint '$ep', want $want"
done
assert_ping B "$OL6_A"
assert_ping A "$OL4_B"
assert_ping B "$OL4_A"

iperf_server B
step "iperf3 TCP over IPv6 overlay on IPv6 underlay, 2 s"
rate=$(iperf_gbit A "$OL6_B" 2)
assert_rate "TCP v6-in-v6 A -> B" "$rate"
assert_alive A B
pass

#!/usr/bin/env bash
# Case 2: TCP bulk transfer through the tunnel with iperf3, A -> B and then
# B -> A (-R). Each direction must beat IPERF_FLOOR_MBIT; rates are printed.
# Usage: IMPL_A=... IMPL_B=... bulk.sh [FARADAYD]   (diagram: lib.sh)
. "$(dirname "$0")/lib.sh"
interop_init "${1:-}"
secs=${IPERF_SECONDS:-3}
topology_up
tunnel_up
assert_ping A "$OL4_B"
iperf_server B

step "iperf3 TCP A -> B over the tunnel, $secs s"
rate=$(iperf_gbit A "$OL4_B" "$secs")
assert_rate "TCP A($IMPL_A) -> B($IMPL_B)" "$rate"

step "iperf3 TCP B -> A over the tunnel (-R), $secs s"
rate=$(iperf_gbit A "$OL4_B" "$secs" -R)
assert_rate "TCP B($IMPL_B) -> A($IMPL_A)" "$rate"

assert_alive A B
assert_ping B "$OL4_A"
pass

#!/usr/bin/env bash
# Case 5: B roams. First its underlay address changes on the same veth
# (10.99.0.2 -> 10.99.0.3); then it moves to a second veth pair with another
# address (10.99.0.4) and the first pair is deleted. Each time B speaks first
# from the new address, and A must follow: `wg show endpoints` on A shows the
# new address and A's own traffic reaches B there.
#
# For the second move A's underlay sits on a bridge, so both veths reach it:
#
#   ns A: br0 10.99.0.1 --+-- va  ====== vb  (ns B, deleted in phase 2)
#                         +-- va2 ====== vb2 (ns B, 10.99.0.4)
#
# faradayd-dpdk as A owns 10.99.0.1 on a veth of its own whose other end is on
# the bridge (br0 has no address then):
#
#   ns A: faradayd-dpdk on vd0 ====== vd1 --+ br0 +-- va, va2 as above
#
# What is under test is A following B. Debian's wireguard-go (0.0.20220316)
# as B cannot roam on its own here: it pins the source address it last
# received on ("sticky sockets"), and when that address is deleted sendmsg
# fails with ENETUNREACH, on which it does not retry without the pin (it
# only does on EINVAL). Re-setting its listen port makes it rebind and drop
# the pin, so when B is wireguard-go the test does that after each move.
# faradayd as B gets no such help.
#
# Usage: IMPL_A=... IMPL_B=... roaming.sh [FARADAYD]   (diagram: lib.sh)
. "$(dirname "$0")/lib.sh"
interop_init "${1:-}"
topology_up

# unpin_source_on_B: see above; nothing for implementations other than wireguard-go.
unpin_source_on_B() {
	if [ "$IMPL_B" = wireguard-go ]; then
		log "wireguard-go as B: wg set listen-port $PORT_B (same port) to drop its pinned source"
		wg_set B listen-port "$PORT_B"
	fi
}

step "put A's underlay on bridge br0 (so B can later arrive on a second veth)"
ip -n "$NS_A" link add br0 type bridge
ip -n "$NS_A" addr flush dev "$VETH_A"
ip -n "$NS_A" link set "$VETH_A" master br0
if is_dpdk A; then
	ip -n "$NS_A" link add vd0 type veth peer name vd1
	ip -n "$NS_A" link set vd1 master br0
	ip -n "$NS_A" link set vd1 up
	dpdk_port_prepare A vd0
	DPDK_IF_A=vd0
else
	ip -n "$NS_A" addr add "$UL4_A/$UL4_PREFIX" dev br0
	ip -n "$NS_A" addr add "$UL6_A/$UL6_PREFIX" dev br0 nodad
fi
ip -n "$NS_A" link set br0 up
if ! is_dpdk A; then underlay_reachable A "$UL4_B" || die "underlay ping over br0 failed"; fi

tunnel_up 4
assert_ping A "$OL4_B"
wait_handshake A 5

# expect_endpoint_on_A WANT: A's endpoint for B becomes WANT within 3 s.
expect_endpoint_on_A() {
	local want=$1 ep i
	step "A's endpoint for B is now $want"
	for i in $(seq 1 30); do
		ep=$(peer_endpoint A)
		[ "$ep" = "$want" ] && return 0
		sleep 0.1
	done
	die "A still has endpoint '$ep' for B, want $want"
}
expect_endpoint_on_A "$UL4_B:$PORT_B"

step "phase 1: B's underlay address changes 10.99.0.2 -> 10.99.0.3 on the same veth"
# Without promote_secondaries, deleting the primary address takes the new one with it.
in_ns B sysctl -qw "net.ipv4.conf.$VETH_B.promote_secondaries=1"
ip -n "$NS_B" addr add 10.99.0.3/$UL4_PREFIX dev "$VETH_B"
ip -n "$NS_B" addr del "$UL4_B/$UL4_PREFIX" dev "$VETH_B"
step "A keeps the old endpoint until B speaks"
ep=$(peer_endpoint A)
[ "$ep" = "$UL4_B:$PORT_B" ] || die "A changed its endpoint to '$ep' before B sent anything"
unpin_source_on_B
assert_ping B "$OL4_A"
expect_endpoint_on_A "10.99.0.3:$PORT_B"
assert_ping A "$OL4_B"
assert_ping A "$OL6_B"

step "phase 2: B moves to a second veth (vb2, 10.99.0.4); the first veth is deleted"
ip link add va2 netns "$NS_A" type veth peer name vb2 netns "$NS_B"
ip -n "$NS_A" link set va2 master br0
ip -n "$NS_A" link set va2 up
ip -n "$NS_B" addr add 10.99.0.4/$UL4_PREFIX dev vb2
ip -n "$NS_B" link set vb2 up
ip -n "$NS_B" link del "$VETH_B"
if is_dpdk A; then
	in_ns B ethtool -K vb2 tx off >/dev/null # whole checksums, as for vb (lib.sh)
else
	underlay_reachable B "$UL4_A" || die "underlay ping from vb2 to A failed"
fi
unpin_source_on_B
assert_ping B "$OL4_A"
expect_endpoint_on_A "10.99.0.4:$PORT_B"
assert_ping A "$OL4_B"
assert_alive A B
pass

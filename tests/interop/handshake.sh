#!/usr/bin/env bash
# Case 1: a handshake initiated from each side, then IPv4 (and IPv6) overlay
# ping. The responder is given no endpoint for its peer, so only the intended
# side can initiate; the responder must learn the endpoint from the handshake.
# Usage: IMPL_A=... IMPL_B=... handshake.sh [FARADAYD]   (diagram: lib.sh)
. "$(dirname "$0")/lib.sh"
interop_init "${1:-}"
topology_up

# initiated_by SIDE: fresh processes and keys; only SIDE knows an endpoint.
initiated_by() {
	local init=$1 resp
	resp=$(other "$init")
	impl_start A
	impl_start B
	keys_gen
	configure "$init" 4
	configure "$resp" 4 "" none

	assert_no_handshake "before any traffic"

	assert_ping "$init" "$(ol4_of "$resp")"
	step "handshake initiated by side $init ($(impl_of "$init")) completes on both sides"
	wait_handshake "$init" 5
	wait_handshake "$resp" 5

	step "side $resp learned side $init's endpoint from the handshake"
	local want ep
	want="$(ul4_of "$init"):$(port_of "$init")"
	ep=$(peer_endpoint "$resp")
	[ "$ep" = "$want" ] || die "side $resp has endpoint '$ep' for its peer, want $want"

	assert_ping "$resp" "$(ol4_of "$init")"
	assert_ping "$init" "$(ol6_of "$resp")"
	assert_alive A B
	tunnel_down
}

initiated_by A
initiated_by B
pass

#!/usr/bin/env bash
# Case 3: the same preshared key on both sides carries traffic; mismatched
# preshared keys complete no handshake and carry nothing, until `wg set`
# gives both sides the same key.
# Usage: IMPL_A=... IMPL_B=... psk.sh [FARADAYD]   (diagram: lib.sh)
. "$(dirname "$0")/lib.sh"
interop_init "${1:-}"
topology_up

step "matching preshared keys"
psk=$(psk_gen shared)
tunnel_up 4 "$psk" "$psk"
for side in A B; do
	step "side $side shows the preshared key"
	shown=$(wg_show "$side" preshared-keys | awk 'NR == 1 { print $2 }')
	[ "$shown" = "$(cat "$psk")" ] || die "side $side shows preshared key '$shown'"
done
assert_ping A "$OL4_B"
assert_ping B "$OL6_A"
tunnel_down

step "mismatched preshared keys"
psk_a=$(psk_gen a)
psk_b=$(psk_gen b)
tunnel_up 4 "$psk_a" "$psk_b"
assert_no_ping A "$OL4_B"
assert_no_ping B "$OL4_A"
assert_no_handshake "despite mismatched preshared keys"
assert_alive A B

step "wg set gives B the same preshared key as A"
wg_set B peer "$(pub_of A)" preshared-key "$psk_a"
assert_ping A "$OL4_B"
assert_ping B "$OL4_A"
pass

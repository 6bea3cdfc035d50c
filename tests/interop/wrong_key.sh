#!/usr/bin/env bash
# Case 6: A holds a wrong public key for B. Nothing gets through either way
# and neither process falls over; `wg set` replaces the key and traffic flows.
# Usage: IMPL_A=... IMPL_B=... wrong_key.sh [FARADAYD]   (diagram: lib.sh)
. "$(dirname "$0")/lib.sh"
interop_init "${1:-}"
topology_up
tunnel_up 4

step "swap B's public key on A for a wrong one"
wrong=$(wg genkey | wg pubkey)
allowed="$OL4_B/32,$OL6_B/128"
wg_set A peer "$(pub_of B)" remove
wg_set A peer "$wrong" allowed-ips "$allowed" endpoint "$UL4_B:$PORT_B"
[ "$(wg_show A peers)" = "$wrong" ] || die "A's peer list is not just the wrong key: $(wg_show A peers)"

assert_no_ping A "$OL4_B"
assert_no_ping B "$OL4_A"
assert_no_handshake "while A has a wrong public key for B"
assert_alive A B

step "wg set puts B's real public key on A"
wg_set A peer "$wrong" remove
wg_set A peer "$(pub_of B)" allowed-ips "$allowed" endpoint "$UL4_B:$PORT_B"
[ "$(wg_show A peers)" = "$(pub_of B)" ] || die "A's peer list after the fix: $(wg_show A peers)"
assert_ping A "$OL4_B"
assert_ping B "$OL4_A"
assert_alive A B
pass

#!/usr/bin/env bash
# Case 7: what `wg show` / `wg showconf` report on each side after some
# traffic: keys, listen port, peer, endpoint, allowed IPs, a recent latest
# handshake and non-zero transfer both ways.
# Usage: IMPL_A=... IMPL_B=... stats.sh [FARADAYD]   (diagram: lib.sh)
. "$(dirname "$0")/lib.sh"
interop_init "${1:-}"
topology_up
tunnel_up 4
t0=$(date +%s)
assert_ping A "$OL4_B" 5
assert_ping B "$OL6_A" 5

for side in A B; do
	peer=$(other "$side")
	step "wg show on side $side ($(impl_of "$side"))"
	v=$(wg_show "$side" public-key)
	[ "$v" = "$(pub_of "$side")" ] || die "public-key '$v', want $(pub_of "$side")"
	v=$(wg_show "$side" private-key)
	[ "$v" = "$(cat "$WORK/$side.key")" ] || die "private-key does not match the one set"
	v=$(wg_show "$side" listen-port)
	[ "$v" = "$(port_of "$side")" ] || die "listen-port '$v', want $(port_of "$side")"
	v=$(wg_show "$side" peers)
	[ "$v" = "$(pub_of "$peer")" ] || die "peers '$v', want $(pub_of "$peer")"
	v=$(peer_endpoint "$side")
	[ "$v" = "$(ul4_of "$peer"):$(port_of "$peer")" ] || die "endpoint '$v'"
	v=$(wg_show "$side" allowed-ips | cut -f2 | tr ' ' '\n' | sort | tr '\n' ' ')
	want=$(printf '%s\n' "$(ol4_of "$peer")/32" "$(ol6_of "$peer")/128" | sort | tr '\n' ' ')
	[ "$v" = "$want" ] || die "allowed-ips '$v', want '$want'"

	hs=$(latest_handshake "$side")
	now=$(date +%s)
	log "latest handshake $hs (test started $t0, now $now)"
	[ "$hs" -ge $((t0 - 2)) ] && [ "$hs" -le $((now + 2)) ] ||
		die "latest handshake $hs is not between $t0 and $now"

	read -r rx tx < <(transfer "$side")
	log "transfer rx $rx tx $tx bytes"
	[ "$rx" -gt 0 ] && [ "$tx" -gt 0 ] || die "transfer rx=$rx tx=$tx, want both > 0"
	# 10 echo requests or replies each way, at least 84 bytes of IP apiece.
	[ "$rx" -ge 840 ] && [ "$tx" -ge 840 ] || die "transfer rx=$rx tx=$tx is less than the pings sent"

	out=$(wg_show "$side")
	echo "$out" | grep -q 'latest handshake:' || die "'wg show' has no 'latest handshake:' line"
	echo "$out" | grep -q 'transfer:' || die "'wg show' has no 'transfer:' line"
	[ "$(wg_show "$side" dump | wc -l)" -eq 2 ] || die "'wg show dump' is not one interface line and one peer line"

	conf=$(in_ns "$side" wg showconf "$(if_of "$side")")
	echo "$conf" | grep -qx "ListenPort = $(port_of "$side")" || die "showconf lacks ListenPort"
	echo "$conf" | grep -qx "PublicKey = $(pub_of "$peer")" || die "showconf lacks the peer"
done
assert_alive A B
pass

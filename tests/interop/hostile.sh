#!/usr/bin/env bash
# Case 9: hostile input at faradayd's listening port. With the tunnel up and
# pings crossing it both ways, B's namespace sends A's UDP port a few
# thousand datagrams: empty, truncated, oversized (to 64 KB), unknown types,
# nonzero reserved bytes, random bodies of the right type and size (mac1
# fails, unknown index, failing tag), forged messages with a valid mac1, and
# REPLAYS of what B really sent A (an initiation, a response, transport
# data), from B's own address and port, another port, and a third address
# (10.99.0.3 on vb). hostile.py builds and sends them; it learns the real
# messages from an AF_PACKET tap on vb while the tunnel comes up.
#
#   ns A: va 10.99.0.1  <====>  vb 10.99.0.2 (B's implementation, port 51821)
#         faradayd :51820   <-- vb 10.99.0.3 (second address: a stranger)
#
# A must stay up, keep the tunnel working (no ping lost during the blast;
# ping and iperf3 after), keep its endpoint for B (nothing unauthenticated or
# replayed may move it) and count each drop under its reason: its SIGUSR1
# stats line must show what was sent, exactly where nothing legitimate can
# add to a reason, at least that many otherwise.
#
# Only faradayd's counters are checked, so A must be faradayd (skip otherwise).
# Usage: IMPL_A=faradayd IMPL_B=... hostile.sh [FARADAYD]   (diagram: lib.sh)
. "$(dirname "$0")/lib.sh"
[ "${IMPL_A%-dpdk}" = faradayd ] || skip "the drop counters checked here are faradayd's (IMPL_A=$IMPL_A)"
command -v python3 >/dev/null || skip "python3 not installed"
interop_init "${1:-}"
HOSTILE_PY="$INTEROP_DIR/hostile.py"
UL4_THIRD=10.99.0.3

stats_line() { counters_line A; }

# udp_rcvbuf_errors: datagrams the kernel dropped on a full socket buffer in ns A.
udp_rcvbuf_errors() {
	in_ns A cat /proc/net/snmp | awk \
		 '/^Udp:/ { if (!h) { for (i = 1; i <= NF; i++) c[$i] = i; h = 1 } else v = $c["RcvbufErrors"] } END { print v + 0 }'
}

topology_up
step "second address $UL4_THIRD on B's veth (a source A has never heard of)"
ip -n "$NS_B" addr add "$UL4_THIRD/$UL4_PREFIX" dev "$VETH_B"
tunnel_up 4

step "tap B's veth for what B sends A (UDP $PORT_B -> $PORT_A)"
ip netns exec "$NS_B" python3 "$HOSTILE_PY" capture "$VETH_B" "$PORT_B" "$PORT_A" \
	"$WORK/capture.hex" "$WORK/capture.ready" >"$WORK/capture.log" 2>&1 &
CAPTURE_PID=$!
track "$CAPTURE_PID"
for _ in $(seq 1 50); do
	[ -e "$WORK/capture.ready" ] && break
	kill -0 "$CAPTURE_PID" 2>/dev/null || die "capture exited: $(cat "$WORK/capture.log")"
	sleep 0.1
done
[ -e "$WORK/capture.ready" ] || die "capture not ready after 5 s"

# A initiates (B sends a response), then B forgets A and initiates afresh
# (B sends an initiation, then data on the session it started).
assert_ping A "$OL4_B" 2
step "B re-adds A as its peer, so B initiates the next handshake"
wg_set B peer "$(pub_of A)" remove
wg_set B peer "$(pub_of A)" endpoint "$UL4_A:$PORT_A" allowed-ips "$OL4_A/32,$OL6_A/128"
assert_ping B "$OL4_A" 3
sleep 0.2
kill "$CAPTURE_PID"
wait "$CAPTURE_PID" 2>/dev/null || true
log "captured $(wc -l <"$WORK/capture.hex") datagrams from B to A"

step "A's endpoint for B before the blast"
ENDPOINT=$(peer_endpoint A)
[ "$ENDPOINT" = "$UL4_B:$PORT_B" ] || die "A has endpoint '$ENDPOINT' for B, want $UL4_B:$PORT_B"
before=$(stats_line)
log "before: $before"
rcvbuf_before=$(udp_rcvbuf_errors)

step "blast A's port with hostile datagrams while pinging across the tunnel both ways"
ip netns exec "$NS_A" ping -n -q -i 0.01 -c 400 -W 1 "$OL4_B" >"$WORK/ping-A.log" 2>&1 &
PING_A=$!
track "$PING_A"
ip netns exec "$NS_B" ping -n -q -i 0.01 -c 400 -W 1 "$OL4_A" >"$WORK/ping-B.log" 2>&1 &
PING_B=$!
track "$PING_B"
sleep 0.3
t0=$SECONDS
# faradayd-dpdk does not reassemble IP fragments: datagrams longer than the
# veth's MTU are expected among its frame drops (hostile.py).
mtu=0
if is_dpdk A; then mtu=$(ip netns exec "$NS_B" cat "/sys/class/net/$VETH_B/mtu"); fi
ip netns exec "$NS_B" env HOSTILE_UNDERLAY_MTU="$mtu" python3 "$HOSTILE_PY" blast "$UL4_A" "$PORT_A" "$UL4_B" "$PORT_B" \
	"$UL4_THIRD" "$(pub_of A)" "$WORK/capture.hex" >"$WORK/blast.out" 2>"$WORK/blast.err" ||
	die "hostile.py blast failed: $(tail -n 5 "$WORK/blast.err")"
sent=$(awk '$1 == "sent" { print $2 }' "$WORK/blast.out")
log "sent $sent datagrams in about $((SECONDS - t0)) s"
assert_alive A
for side in A B; do
	v="PING_$side"
	wait "${!v}" || true
	summary=$(grep -E 'transmitted' "$WORK/ping-$side.log" || true)
	log "ping from $side during the blast: $summary"
	echo "$summary" | grep -q ' 0% packet loss' ||
		die "ping from $side lost packets during the blast: ${summary:-$(tail -n 2 "$WORK/ping-$side.log")}"
done

step "faradayd on A is alive and kept its endpoint for B"
assert_alive A B
ep=$(peer_endpoint A)
[ "$ep" = "$ENDPOINT" ] || die "A's endpoint for B moved from $ENDPOINT to '$ep'"

step "A counted every hostile datagram under its drop reason"
after=$(stats_line)
log "after:  $after"
lost=$(($(udp_rcvbuf_errors) - rcvbuf_before))
[ "$lost" -eq 0 ] || die "the kernel dropped $lost datagrams on A's full socket buffer; counts below would be short (pace hostile.py)"
delta() { echo $(($(stat_of "$after" "$1") - $(stat_of "$before" "$1"))); }
# On a DPDK underlay, datagrams too long for a frame end among the frame
# drops (truncated, or fragments), not in the core; and the port's own losses
# (its ring or pool overflowing) must be zero, as the kernel's socket buffer's.
frames=0
if is_dpdk A; then
	frames=$(($(delta frame_truncated) + $(delta frame_fragment)))
	for c in rx_missed rx_no_mbuf; do
		[ "$(delta $c)" -eq 0 ] || die "A's DPDK port lost $(delta $c) frames ($c); counts below would be short"
	done
fi
n=$(($(delta rx_datagrams) + frames))
[ "$n" -ge "$sent" ] || die "rx_datagrams (and frames too long) grew by $n, less than the $sent sent"
n=$(($(delta dropped) + frames))
[ "$n" -ge "$sent" ] || die "dropped (and frames too long) grew by $n, less than the $sent sent"
while read -r _ reasons want how; do
	got=0
	for r in ${reasons//+/ }; do got=$((got + $(delta "$r"))); done
	log "$reasons: sent $want, counted $got"
	if [ "$how" = EXACT ]; then
		[ "$got" -eq "$want" ] || die "$reasons grew by $got, want exactly $want (one per datagram sent)"
	else
		[ "$got" -ge "$want" ] || die "$reasons grew by $got, want at least $want"
	fi
done < <(grep '^expect ' "$WORK/blast.out")
[ "$(stat_of "$after" rx_truncated)" -eq 0 ] || die "rx_truncated is not zero"

step "the tunnel still works"
assert_ping A "$OL4_B" 5
assert_ping B "$OL4_A" 5
iperf_server A
gbit=$(iperf_gbit B "$OL4_A" 2)
assert_rate "iperf3 B -> A after the blast" "$gbit"
iperf_server_stop A
ep=$(peer_endpoint A)
[ "$ep" = "$ENDPOINT" ] || die "A's endpoint for B moved from $ENDPOINT to '$ep'"
assert_alive A B
pass

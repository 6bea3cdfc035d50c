#!/usr/bin/env bash
# wg_quick.sh: faradayd as wg-quick's userspace implementation, as an operator
# uses wireguard-go: two network namespaces joined by a veth pair, a stock
# wg-quick configuration in each, `WG_QUICK_USERSPACE_IMPLEMENTATION=faradayd-wg
# wg-quick up` on both sides (faradayd-wg starts `faradayd standalone` in the
# background and returns once it serves), a ping through the tunnel, then
# `wg-quick down`: no interface, UAPI socket or faradayd process is left.
#
# Usage: wg_quick.sh [FARADAYD_WG]   (faradayd beside it)
# Exit: 0 passed, 1 failed, 77 skipped (not root, no netns/TUN, no wg-quick).
# shellcheck source-path=SCRIPTDIR/../lib source=netns.sh
. "$(dirname "$0")/../lib/netns.sh"

FARADAYD_WG=$(realpath "${1:-$REPO_ROOT/build/control/faradayd-wg}")
ns_of() { echo "fq$RUN_ID-$1"; }
if_of() { echo "fq$RUN_ID$1"; }

needs_netns wg wg-quick ping
[ -x "$FARADAYD_WG" ] || die "faradayd-wg not found at '$FARADAYD_WG' (build it, or pass its path)"
work_dir_init wgquick

step "two namespaces on a veth pair, a wg-quick configuration each"
netns_add "$(ns_of a)"
netns_add "$(ns_of b)"
ip link add "va$RUN_ID" netns "$(ns_of a)" type veth peer name "vb$RUN_ID" netns "$(ns_of b)"
in_ns a ip addr add 10.97.0.1/24 dev "va$RUN_ID"
in_ns b ip addr add 10.97.0.2/24 dev "vb$RUN_ID"
in_ns a ip link set "va$RUN_ID" up
in_ns b ip link set "vb$RUN_ID" up
in_ns a ip link set lo up
in_ns b ip link set lo up
for side in a b; do
	(umask 077 && wg genkey >"$WORK/$side.key")
	wg pubkey <"$WORK/$side.key" >"$WORK/$side.pub"
	track_socket "$UAPI_DIR/$(if_of "$side").sock"
done
# conf SIDE N PEER PEER_N: the stock format, nothing faradayd-specific.
conf() {
	cat >"$WORK/$(if_of "$1").conf" <<EOF
[Interface]
PrivateKey = $(cat "$WORK/$1.key")
Address = 10.98.0.$2/24
ListenPort = 51820

[Peer]
PublicKey = $(cat "$WORK/$3.pub")
AllowedIPs = 10.98.0.$4/32
Endpoint = 10.97.0.$4:51820
EOF
	chmod 600 "$WORK/$(if_of "$1").conf"
}
conf a 1 b 2
conf b 2 a 1

# up SIDE: wg-quick up with faradayd-wg, the daemon's log in WORK/SIDE.log.
up() {
	in_ns "$1" env WG_QUICK_USERSPACE_IMPLEMENTATION="$FARADAYD_WG" FARADAYD_LOG_FILE="$WORK/$1.log" \
		wg-quick up "$WORK/$(if_of "$1").conf" >"$WORK/$1.up" 2>&1 ||
		die "wg-quick up on $1 failed: $(tail -n 5 "$WORK/$1.up")"
}
# daemon SIDE: the pid of faradayd serving SIDE's interface, or nothing.
daemon() { pgrep -f "faradayd standalone $(if_of "$1")\$" || true; }

step "wg-quick up on both sides"
up a
up b
for side in a b; do
	[ -S "$UAPI_DIR/$(if_of "$side").sock" ] || die "$side: no UAPI socket after wg-quick up returned"
	[ -n "$(daemon "$side")" ] || die "$side: no faradayd running after wg-quick up"
	while read -r pid; do track "$pid"; done < <(daemon "$side")
	grep -q "Missing WireGuard kernel module" "$WORK/$side.up" || log "$side: wg-quick did not say it fell back to userspace"
done
log "a: $(in_ns a wg show "$(if_of a)" listen-port | head -n 1) listen port, faradayd pid $(daemon a); b: pid $(daemon b)"

step "ping through the tunnel"
wait_until 10 in_ns a ping -q -n -c 1 -W 1 10.98.0.2 >/dev/null 2>&1 || die "a cannot ping b (10.98.0.2) through the tunnel"
in_ns b ping -q -n -c 3 -i 0.2 -W 1 10.98.0.1 >/dev/null || die "b cannot ping a (10.98.0.1)"
hs=$(in_ns a wg show "$(if_of a)" latest-handshakes | awk '{print $2}')
[ "${hs:-0}" -gt 0 ] || die "a shows no handshake with b"
log "ping both ways; a's latest handshake $hs"

step "wg-quick down on both sides: nothing left"
for side in a b; do
	in_ns "$side" wg-quick down "$WORK/$(if_of "$side").conf" >"$WORK/$side.down" 2>&1 ||
		die "wg-quick down on $side failed: $(tail -n 5 "$WORK/$side.down")"
done
for side in a b; do
	wait_until 5 not test -n "$(daemon "$side")" || die "$side: faradayd still runs 5 s after wg-quick down"
	wait_until 3 not test -e "$UAPI_DIR/$(if_of "$side").sock" || die "$side: the UAPI socket is left"
	if in_ns "$side" ip link show "$(if_of "$side")" >/dev/null 2>&1; then die "$side: the interface is left"; fi
	grep -q "interface $(if_of "$side") was deleted, shutting down" "$WORK/$side.log" ||
		die "$side: faradayd's log does not say why it stopped: $(tail -n 3 "$WORK/$side.log")"
done
log "no interface, socket or faradayd left; each log ends with the interface's deletion"
echo "PASS: ${0##*/}"

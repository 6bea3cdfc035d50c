#!/usr/bin/env bash
# Case 8: the process contract. SIGTERM and SIGINT make the daemon exit with
# status 0 and remove its UAPI socket and interface; deleting the interface
# makes it exit too.
# Usage: IMPL_A=... IMPL_B=... lifecycle.sh [FARADAYD]   (diagram: lib.sh)
. "$(dirname "$0")/lib.sh"
interop_init "${1:-}"
topology_up
impl_start A
impl_start B
keys_gen
configure A 4
configure B 4
assert_ping A "$OL4_B"

# stopped_cleanly SIDE HOW: exit status 0, socket gone.
stopped_cleanly() {
	local side=$1 how=$2 sock
	sock="$UAPI_DIR/$(if_of "$side").sock"
	[ "$STOP_STATUS" -eq 0 ] || die "$(impl_of "$side") exited with status $STOP_STATUS after $how"
	[ ! -e "$sock" ] || die "$sock still exists after $how"
	log "$(impl_of "$side") exited 0 and removed $sock after $how"
}

step "SIGTERM to side A"
impl_stop A TERM
stopped_cleanly A SIGTERM
step "SIGINT to side B"
impl_stop B INT
stopped_cleanly B SIGINT

impl_start A
step "delete interface $IF_A under side A's daemon"
ip -n "$NS_A" link del "$IF_A"
impl_wait_exit A 5 || die "$(impl_of A) still running 5 s after its interface was deleted"
log "$(impl_of A) exited with status $STOP_STATUS"
[ ! -S "$UAPI_DIR/$IF_A.sock" ] || die "$UAPI_DIR/$IF_A.sock still exists after the interface was deleted"
pass

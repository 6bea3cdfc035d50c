# shellcheck shell=bash disable=SC2034 # per-side variables are read as ${!v}
# lib.sh: two network namespaces, one veth pair, one WireGuard implementation
# in each. Sourced by the interop tests (tests/interop/*.sh) and bench/e2e.sh.
#
#          netns $NS_A                                   netns $NS_B
#  +-----------------------------+               +-----------------------------+
#  | $IF_A  TUN run by $IMPL_A   |    overlay    | $IF_B  TUN run by $IMPL_B   |
#  |   10.100.0.1/24             | <-----------> |   10.100.0.2/24             |
#  |   fd00:100::1/64            |   (tunnel)    |   fd00:100::2/64            |
#  |        |                    |               |        |                    |
#  |   WireGuard on UDP :51820   |               |   WireGuard on UDP :51821   |
#  |        |                    |               |        |                    |
#  | va  10.99.0.1/24            |   underlay    | vb  10.99.0.2/24            |
#  |     fd99::1/64              |===============|     fd99::2/64              |
#  +-----------------------------+   veth pair   +-----------------------------+
#
# Ping or iperf3 between the overlay addresses crosses both implementations;
# the same between the underlay addresses is the bare veth (no tunnel).
#
# IMPL_A / IMPL_B pick the implementation on each side: "faradayd" (our
# daemon, `faradayd standalone IF`), "faradayd-dpdk" (the same on a DPDK
# underlay: net_af_packet on that side's veth, see below) or "wireguard-go"
# (`wireguard-go -f IF`). All create the TUN device in the namespace they start
# in and serve the cross-platform UAPI at /var/run/wireguard/IF.sock, so wg(8)
# configures any of them. That socket path is global across namespaces, hence
# the per-run interface names below.
#
# faradayd-dpdk owns L2/L3 on its veth end (DPDK_IF_x, default the side's
# veth): the kernel in that namespace has no address there (and IPv6 is off
# on it), and faradayd answers ARP and neighbour solicitations for the side's
# underlay addresses itself. It does not answer pings, so the underlay is
# checked from a kernel side only. The kernel side's veth computes its UDP
# checksums itself (ethtool tx off), as a NIC puts whole checksums on the
# wire: a veth hands the offloaded ones on unfinished, and DPDK 22.11's
# af_packet does not say so, so faradayd-dpdk would drop them as bad UDP.
#
# Inputs (environment, or the first script argument for FARADAYD):
#   IMPL_A, IMPL_B    faradayd | faradayd-dpdk | wireguard-go
#                     (default: faradayd, wireguard-go)
#   FARADAYD          path to faradayd              (default: build/control/faradayd)
#   FARADAYD_ARGS     more options for `faradayd standalone`, e.g. "--workers 2"
#                     (faradayd-dpdk: after its --dpdk-port, -address and -listen-port)
#   WIREGUARD_GO      path to wireguard-go          (default: from PATH)
#   IPERF_FLOOR_MBIT  minimum acceptable iperf3 rate (default: 10)
#   KEEP_LOGS=1       keep the run's work directory after exit
#
# Reporting, waiting, processes, namespaces and the teardown are shared with
# the e2e suite: tests/lib/netns.sh. Exit codes, as meson expects: 0 pass,
# 77 skip, anything else fail. Every failure names the step that was running:
# "FAIL [step]: reason", followed (once per run) by both sides' state.
#
# Nothing here touches addresses outside the namespaces it creates.

set -Eeuo pipefail
# SCRIPTDIR: the checked script's own (tests/*/, scripts/ or bench/).
# shellcheck source-path=SCRIPTDIR/../lib source-path=SCRIPTDIR/../tests/lib source=netns.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/netns.sh"

# --- names and addresses ---------------------------------------------------

NS_A="fdy-a-$RUN_ID"
NS_B="fdy-b-$RUN_ID"
IF_A="wga$RUN_ID"          # at most 3 + 7 digits: under IFNAMSIZ
IF_B="wgb$RUN_ID"
VETH_A=va
VETH_B=vb
PORT_A=51820
PORT_B=51821
UL4_A=10.99.0.1  UL4_B=10.99.0.2  UL4_PREFIX=24
UL6_A=fd99::1    UL6_B=fd99::2    UL6_PREFIX=64
OL4_A=10.100.0.1 OL4_B=10.100.0.2 OL4_PREFIX=24
OL6_A=fd00:100::1 OL6_B=fd00:100::2 OL6_PREFIX=64
TUN_MTU=1420

INTEROP_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

IMPL_A=${IMPL_A:-faradayd}
IMPL_B=${IMPL_B:-wireguard-go}
FARADAYD=${FARADAYD:-$REPO_ROOT/build/control/faradayd}
WIREGUARD_GO=${WIREGUARD_GO:-$(command -v wireguard-go || true)}
IPERF_FLOOR_MBIT=${IPERF_FLOOR_MBIT:-10}
WG_LOG_LEVEL=${WG_LOG_LEVEL:-verbose}

# --- reporting (the rest: tests/lib/netns.sh) ---------------------------------

DIE_DUMPS=1 # die prints dump_state below, once per run

# dump_state: each started side's implementation, `wg show` and log tail.
dump_state() {
	local side ns ifname log
	for side in A B; do
		ns=$(ns_of "$side") ifname=$(if_of "$side") log="$WORK/impl-$side.log"
		[ -e "$log" ] || continue # never started
		echo "=== side $side: $(impl_of "$side") in $ns, interface $ifname"
		if [ -S "$UAPI_DIR/$ifname.sock" ]; then
			ip netns exec "$ns" wg show "$ifname" 2>&1 | sed 's/^/    /' || true
		fi
		if [ -s "$log" ]; then
			echo "    last lines of $log:"
			tail -n 25 "$log" | sed 's/^/    | /'
		fi
	done
}

# --- side accessors ----------------------------------------------------------

other() { if [ "$1" = A ]; then echo B; else echo A; fi; }
ns_of() { local v="NS_$1"; echo "${!v}"; }
if_of() { local v="IF_$1"; echo "${!v}"; }
impl_of() { local v="IMPL_$1"; echo "${!v}"; }
port_of() { local v="PORT_$1"; echo "${!v}"; }
ol4_of() { local v="OL4_$1"; echo "${!v}"; }
ol6_of() { local v="OL6_$1"; echo "${!v}"; }
ul4_of() { local v="UL4_$1"; echo "${!v}"; }
ul6_of() { local v="UL6_$1"; echo "${!v}"; }

# wg_set SIDE ARGS...: `wg set IF ARGS...` on that side.
wg_set() { in_ns "$1" wg set "$(if_of "$1")" "${@:2}"; }

# --- set-up and teardown -----------------------------------------------------

# interop_init [FARADAYD]: check we can run at all and that IMPL_A and
# IMPL_B are usable (else skip or fail), make the work directory, install
# the teardown trap.
interop_init() {
	if [ $# -ge 1 ] && [ -n "$1" ]; then FARADAYD=$1; fi
	host_check
	local impl
	for impl in "$IMPL_A" "$IMPL_B"; do
		case "$impl" in
		wireguard-go | faradayd | faradayd-dpdk) ;;
		*) die "unknown implementation '$impl' (want faradayd, faradayd-dpdk or wireguard-go)" ;;
		esac
		if ! impl_usable "$impl"; then
			# A missing faradayd is a build problem; a missing wireguard-go is the host's.
			if [ "$impl" = wireguard-go ]; then skip "$WHY_NOT"; else die "$WHY_NOT"; fi
		fi
	done
	work_init
	echo "=== ${0##*/}: A=$IMPL_A B=$IMPL_B (run $RUN_ID, logs in $WORK)"
}

# host_check: root, the tools, TUN and namespaces; skip (77) if anything lacks.
host_check() {
	local -a more=()
	if is_dpdk A || is_dpdk B; then more=(ethtool); fi
	needs_netns ip wg ping iperf3 ss timeout realpath "${more[@]}"
}

# impl_usable IMPL: true if IMPL can be started; otherwise sets WHY_NOT.
# Makes FARADAYD absolute (meson passes it relative to the build directory).
impl_usable() {
	case "$1" in
	wireguard-go)
		if [ -z "$WIREGUARD_GO" ] || [ ! -x "$WIREGUARD_GO" ]; then
			WHY_NOT="wireguard-go not installed"
			return 1
		fi ;;
	faradayd | faradayd-dpdk)
		if [ ! -x "$FARADAYD" ]; then
			WHY_NOT="faradayd binary not found at '$FARADAYD' (build it, or pass its path)"
			return 1
		fi
		FARADAYD=$(realpath "$FARADAYD")
		if [ "$1" = faradayd-dpdk ] && grep -q 'has no DPDK' <<<"$("$FARADAYD" standalone --help)"; then
			WHY_NOT="$FARADAYD was built without DPDK"
			return 1
		fi ;;
	esac
}

# is_dpdk SIDE: true if that side runs faradayd on a DPDK underlay.
is_dpdk() { [ "$(impl_of "$1")" = faradayd-dpdk ]; }

# dpdk_if_of SIDE: the interface a faradayd-dpdk side drives (default: its veth).
dpdk_if_of() {
	local v="DPDK_IF_$1" veth="VETH_$1"
	echo "${!v:-${!veth}}"
}

# work_init: the run's work directory (keys, logs, pids) and the teardown
# trap; both sides' UAPI sockets are removed at exit.
work_init() {
	work_dir_init interop
	track_socket "$UAPI_DIR/$IF_A.sock"
	track_socket "$UAPI_DIR/$IF_B.sock"
}

# kill_tracked_since N: kill what was tracked after mark N (e.g. by a subshell
# that failed half-way), and wait until both tunnel interfaces and sockets are gone.
kill_tracked_since() {
	local pid i
	tail -n "+$(($1 + 1))" "$WORK/pids" | while read -r pid; do
		kill -TERM "$pid" 2>/dev/null || true
	done
	for i in $(seq 1 50); do
		if ! ip -n "$NS_A" link show "$IF_A" >/dev/null 2>&1 &&
			! ip -n "$NS_B" link show "$IF_B" >/dev/null 2>&1; then
			break
		fi
		sleep 0.1
	done
	tail -n "+$(($1 + 1))" "$WORK/pids" | while read -r pid; do
		kill -KILL "$pid" 2>/dev/null || true
	done
	ip -n "$NS_A" link del "$IF_A" 2>/dev/null || true
	ip -n "$NS_B" link del "$IF_B" 2>/dev/null || true
	rm -f "$UAPI_DIR/$IF_A.sock" "$UAPI_DIR/$IF_B.sock"
}

# topology_up: both namespaces, the veth pair, v4 and v6 underlay.
topology_up() {
	step "topology: namespaces $NS_A, $NS_B and veth $VETH_A<->$VETH_B"
	netns_add "$NS_A"
	netns_add "$NS_B"
	ip link add "$VETH_A" netns "$NS_A" type veth peer name "$VETH_B" netns "$NS_B"
	local side veth
	for side in A B; do
		if [ "$side" = A ]; then veth=$VETH_A; else veth=$VETH_B; fi
		in_ns "$side" sysctl -qw net.ipv6.conf.all.accept_dad=0
		ip -n "$(ns_of "$side")" link set lo up
		if is_dpdk "$side"; then
			dpdk_port_prepare "$side" "$veth"
			continue
		fi
		if is_dpdk "$(other "$side")"; then
			in_ns "$side" ethtool -K "$veth" tx off >/dev/null
		fi
		ip -n "$(ns_of "$side")" addr add "$(ul4_of "$side")/$UL4_PREFIX" dev "$veth"
		ip -n "$(ns_of "$side")" addr add "$(ul6_of "$side")/$UL6_PREFIX" dev "$veth" nodad
		ip -n "$(ns_of "$side")" link set "$veth" up
	done
	# The underlay must work before anything is blamed on WireGuard (between
	# two kernels: a faradayd-dpdk side answers no ping).
	if ! is_dpdk A && ! is_dpdk B; then
		underlay_reachable A "$UL4_B" || die "underlay v4 ping $UL4_A -> $UL4_B failed for 5 s"
		underlay_reachable A "$UL6_B" || die "underlay v6 ping $UL6_A -> $UL6_B failed for 5 s"
	fi
}

# dpdk_port_prepare SIDE IFACE: IFACE up for faradayd-dpdk, with no address
# and IPv6 off, so that the kernel neither answers for the side's underlay
# addresses nor sends anything of its own there.
dpdk_port_prepare() {
	local ns
	ns=$(ns_of "$1")
	ip -n "$ns" addr flush dev "$2"
	in_ns "$1" sysctl -qw "net.ipv6.conf.$2.disable_ipv6=1"
	ip -n "$ns" link set "$2" up
}

# --- implementations ---------------------------------------------------------

# impl_start SIDE: start that side's implementation in its namespace and wait
# until its TUN exists and its UAPI socket answers.
impl_start() {
	local side=$1 impl ns ifname sock pid i
	impl=$(impl_of "$side") ns=$(ns_of "$side") ifname=$(if_of "$side")
	sock="$UAPI_DIR/$ifname.sock"
	step "start $impl as side $side ($ifname in $ns)"
	rm -f "$sock"
	case "$impl" in
	wireguard-go)
		ip netns exec "$ns" env WG_PROCESS_FOREGROUND=1 LOG_LEVEL="$WG_LOG_LEVEL" \
			"$WIREGUARD_GO" -f "$ifname" >>"$WORK/impl-$side.log" 2>&1 &
		;;
	faradayd)
		local -a extra=()
		read -ra extra <<<"${FARADAYD_ARGS:-}"
		ip netns exec "$ns" "$FARADAYD" standalone "${extra[@]}" "$ifname" \
			>>"$WORK/impl-$side.log" 2>&1 &
		;;
	faradayd-dpdk)
		local -a extra=()
		read -ra extra <<<"${FARADAYD_ARGS:-}"
		ip netns exec "$ns" "$FARADAYD" standalone \
			--dpdk-port "net_af_packet0,iface=$(dpdk_if_of "$side")" \
			--dpdk-address "$(ul4_of "$side")/$UL4_PREFIX" \
			--dpdk-address "$(ul6_of "$side")/$UL6_PREFIX" \
			--dpdk-listen-port "$(port_of "$side")" "${extra[@]}" "$ifname" \
			>>"$WORK/impl-$side.log" 2>&1 &
		;;
	esac
	pid=$!
	track "$pid"
	eval "PID_$side=$pid"
	for i in $(seq 1 100); do
		if ! kill -0 "$pid" 2>/dev/null; then
			local rc=0
			wait "$pid" 2>/dev/null || rc=$?
			die "$impl exited (status $rc) before its UAPI socket $sock appeared"
		fi
		if [ -S "$sock" ] && ip -n "$ns" link show "$ifname" >/dev/null 2>&1 &&
			in_ns "$side" wg show "$ifname" listen-port >/dev/null 2>&1; then
			[ "$impl" = faradayd ] && assert_workers "$side"
			return 0
		fi
		sleep 0.05
	done
	die "$impl did not create $ifname and answer on $sock within 5 s"
}

# assert_workers SIDE: with --workers N (N >= 2) in FARADAYD_ARGS, faradayd must
# say it runs N queue workers (not the fallback that shares one queue's bursts).
assert_workers() {
	local n
	n=$(sed -n 's/.*--workers[ =]\([0-9][0-9]*\).*/\1/p' <<<"${FARADAYD_ARGS:-}")
	[ -n "$n" ] && [ "$n" -ge 2 ] || return 0
	grep -q "$n workers (a TUN queue and a UDP socket each" "$WORK/impl-$1.log" ||
		die "side $1: faradayd did not start $n queue workers ($WORK/impl-$1.log)"
}

# impl_alive SIDE: true if that side's process is still running.
impl_alive() {
	local v="PID_$1"
	[ -n "${!v:-}" ] && kill -0 "${!v}" 2>/dev/null
}

assert_alive() {
	local side
	for side in "$@"; do
		impl_alive "$side" || die "$(impl_of "$side") on side $side is no longer running"
	done
}

# impl_stop SIDE [SIGNAL]: stop that side's process, wait until it and its
# interface are gone. Returns the process's exit status in STOP_STATUS.
impl_stop() {
	local side=$1 sig=${2:-TERM} v="PID_$1" pid i ns ifname
	pid=${!v:-}
	ns=$(ns_of "$side") ifname=$(if_of "$side")
	STOP_STATUS=0
	[ -n "$pid" ] || return 0
	kill "-$sig" "$pid" 2>/dev/null || true
	impl_wait_exit "$side" 5 || die "$(impl_of "$side") on side $side ignored SIG$sig for 5 s"
	for i in $(seq 1 50); do
		ip -n "$ns" link show "$ifname" >/dev/null 2>&1 || return 0
		sleep 0.1
	done
	die "$ifname still exists in $ns after its process exited"
}

# impl_wait_exit SIDE SECONDS: wait for the process to exit; its status goes
# to STOP_STATUS. Fails if it is still running after SECONDS.
impl_wait_exit() {
	local side=$1 secs=$2 v="PID_$1" pid i
	pid=${!v:-}
	for i in $(seq 1 $((secs * 20))); do
		if ! kill -0 "$pid" 2>/dev/null; then
			STOP_STATUS=0
			wait "$pid" 2>/dev/null || STOP_STATUS=$?
			eval "PID_$side="
			return 0
		fi
		sleep 0.05
	done
	return 1
}

# --- keys and configuration --------------------------------------------------

# keys_gen: a fresh key pair per side in $WORK/{A,B}.{key,pub}.
keys_gen() {
	local side
	for side in A B; do
		(umask 077 && wg genkey >"$WORK/$side.key")
		wg pubkey <"$WORK/$side.key" >"$WORK/$side.pub"
	done
}

pub_of() { cat "$WORK/$1.pub"; }

# psk_gen NAME: a preshared key in $WORK/NAME.psk; prints the path.
psk_gen() {
	(umask 077 && wg genpsk >"$WORK/$1.psk")
	echo "$WORK/$1.psk"
}

# configure SIDE [FAMILY [PSKFILE [ENDPOINT]]]: program SIDE with its private key,
# port and the other side as its peer (allowed-ips: the other's overlay
# addresses). FAMILY (4|6, default 4) picks the underlay for the endpoint;
# ENDPOINT=none leaves the endpoint unset so this side can only respond.
# Then addresses the tunnel interface and brings it up.
configure() {
	local side=$1 family=${2:-4} psk=${3:-} endpoint=${4:-} peer ifname
	peer=$(other "$side") ifname=$(if_of "$side")
	local how="IPv$family underlay"
	if [ "$endpoint" = none ]; then how="no endpoint (can only respond)"; fi
	step "configure side $side ($ifname): peer $peer, $how${psk:+, with psk}"
	if [ -z "$endpoint" ]; then
		if [ "$family" = 6 ]; then
			endpoint="[$(ul6_of "$peer")]:$(port_of "$peer")"
		else
			endpoint="$(ul4_of "$peer"):$(port_of "$peer")"
		fi
	fi
	local args=(private-key "$WORK/$side.key" listen-port "$(port_of "$side")"
		peer "$(pub_of "$peer")"
		allowed-ips "$(ol4_of "$peer")/32,$(ol6_of "$peer")/128")
	if [ "$endpoint" != none ]; then args+=(endpoint "$endpoint"); fi
	if [ -n "$psk" ]; then args+=(preshared-key "$psk"); fi
	wg_set "$side" "${args[@]}" || die "wg set on $ifname rejected: ${args[*]}"
	local ns
	ns=$(ns_of "$side")
	ip -n "$ns" addr add "$(ol4_of "$side")/$OL4_PREFIX" dev "$ifname"
	ip -n "$ns" addr add "$(ol6_of "$side")/$OL6_PREFIX" dev "$ifname" nodad
	ip -n "$ns" link set "$ifname" mtu "$TUN_MTU" up
}

# tunnel_up [FAMILY [PSK_A [PSK_B]]]: start both sides and configure them as
# peers of each other (no traffic yet, so no handshake yet).
tunnel_up() {
	local family=${1:-4} psk_a=${2:-} psk_b=${3:-}
	impl_start A
	impl_start B
	keys_gen
	configure A "$family" "$psk_a"
	configure B "$family" "$psk_b"
}

# tunnel_down: stop both sides (their TUNs go with them).
tunnel_down() {
	step "stop both implementations"
	impl_stop A
	impl_stop B
}

# --- observations ------------------------------------------------------------

# latest_handshake SIDE: unix time of the last handshake with the peer (0: none).
latest_handshake() { wg_show "$1" latest-handshakes | awk 'NR == 1 { print $2 }'; }

# assert_no_handshake WHEN: neither side reports a handshake; WHEN ("before any
# traffic", ...) names the step and the failure.
assert_no_handshake() {
	local side
	step "no handshake $1"
	for side in A B; do
		[ "$(latest_handshake "$side")" = 0 ] || die "side $side reports a handshake $1"
	done
}

# peer_endpoint SIDE: the endpoint SIDE currently has for its peer.
peer_endpoint() { wg_show "$1" endpoints | awk 'NR == 1 { print $2 }'; }

# transfer SIDE: "RX TX" bytes for the peer.
transfer() { wg_show "$1" transfer | awk 'NR == 1 { print $2, $3 }'; }

# wait_handshake SIDE [SECONDS]: poll until SIDE reports a handshake.
wait_handshake() {
	local side=$1 secs=${2:-10} i t
	for i in $(seq 1 $((secs * 10))); do
		t=$(latest_handshake "$side")
		if [ -n "$t" ] && [ "$t" != 0 ]; then
			return 0
		fi
		sleep 0.1
	done
	die "side $side ($(impl_of "$side")) reports no handshake after ${secs} s"
}

# assert_ping FROM DST [COUNT]: COUNT echo replies from DST within 10 s.
assert_ping() {
	local side=$1 dst=$2 count=${3:-3} out
	step "ping $dst from side $side"
	if ! out=$(in_ns "$side" ping -n -c "$count" -i 0.2 -W 1 -w 10 "$dst" 2>&1); then
		die "ping $dst from side $side: $(echo "$out" | grep -E 'transmitted|rror|nreachable' | head -n 2 | tr '\n' ' ')"
	fi
	log "$(echo "$out" | grep -E 'transmitted')"
}

# assert_no_ping FROM DST: not one reply from DST in about 3 s.
assert_no_ping() {
	local side=$1 dst=$2 out
	step "expect no reply from $dst to side $side"
	if out=$(in_ns "$side" ping -n -c 10 -i 0.3 -W 1 -w 3 "$dst" 2>&1); then
		die "ping $dst from side $side got replies but must not: $(echo "$out" | grep transmitted)"
	fi
	if echo "$out" | grep -qE ' [1-9][0-9]* received'; then
		die "ping $dst from side $side got replies but must not: $(echo "$out" | grep transmitted)"
	fi
	log "no replies, as expected"
}

# iperf_server SIDE: start an iperf3 server in SIDE's namespace, wait until it listens.
iperf_server() {
	local side=$1 pid i
	# Not through in_ns: a backgrounded function is a subshell, and $! would
	# be that subshell rather than iperf3 (`ip netns exec` execs its command).
	ip netns exec "$(ns_of "$side")" iperf3 -s -p "$IPERF_PORT" >"$WORK/iperf-server-$side.log" 2>&1 &
	pid=$!
	track "$pid"
	eval "IPERF_PID_$side=$pid"
	for i in $(seq 1 50); do
		if listening "$side" "$IPERF_PORT"; then return 0; fi
		kill -0 "$pid" 2>/dev/null || die "iperf3 server in side $side exited: $(tail -n 3 "$WORK/iperf-server-$side.log")"
		sleep 0.1
	done
	die "iperf3 server in side $side not listening after 5 s"
}

iperf_server_stop() {
	local v="IPERF_PID_$1"
	if [ -n "${!v:-}" ]; then
		kill "${!v}" 2>/dev/null || true
		wait "${!v}" 2>/dev/null || true
		eval "IPERF_PID_$1="
	fi
}

# iperf_gbit FROM DST SECONDS [IPERF ARGS...]: run an iperf3 client in FROM's
# namespace against DST (a server must be listening there); prints the
# receiver's rate in Gbit/s. Pass -R for DST -> FROM, -P N for N streams.
iperf_gbit() {
	local side=$1 dst=$2 secs=$3 out mbit
	shift 3
	out="$WORK/iperf-client-$side-$RANDOM.log"
	if ! in_ns "$side" timeout $((secs + 20)) iperf3 -c "$dst" -p "$IPERF_PORT" -t "$secs" \
		-f m --connect-timeout 3000 "$@" >"$out" 2>&1; then
		die "iperf3 -c $dst $* from side $side failed: $(tail -n 3 "$out" | tr '\n' ' ')"
	fi
	mbit=$(iperf_rate "$out")
	[ -n "$mbit" ] || die "no receiver rate in iperf3 output ($out)"
	awk -v m="$mbit" 'BEGIN { printf "%.3f\n", m / 1000 }'
}

# assert_rate LABEL GBIT: fail if GBIT is below IPERF_FLOOR_MBIT.
assert_rate() {
	local label=$1 gbit=$2
	log "$label: $gbit Gbit/s"
	awk -v g="$gbit" -v f="$IPERF_FLOOR_MBIT" 'BEGIN { exit !(g * 1000 >= f) }' ||
		die "$label: $gbit Gbit/s is below the floor of $IPERF_FLOOR_MBIT Mbit/s"
}

# pass: the last line of every successful test.
pass() {
	STEP="done"
	echo "PASS: ${0##*/} A=$IMPL_A B=$IMPL_B (${SECONDS}s)"
	exit 0
}

# counters_line SIDE: make SIDE's faradayd log all its counters (SIGUSR1) and
# print that "stats:" line and the "ports:" line that follows it, as one line.
counters_line() {
	local log="$WORK/impl-$1.log" v="PID_$1" before
	before=$(grep -c ' ports: ' "$log" || true)
	kill -USR1 "${!v}"
	for _ in $(seq 1 50); do
		if [ "$(grep -c ' ports: ' "$log" || true)" -gt "$before" ]; then
			grep -B1 ' ports: ' "$log" | tail -n 2 | tr '\n' ' '
			echo
			return 0
		fi
		sleep 0.1
	done
	die "faradayd on $1 logged no stats line within 5 s of SIGUSR1"
}

# stat_of LINE NAME: the value of NAME=N in a counters line (absent: 0).
stat_of() { echo "$1" | tr ' ' '\n' | awk -F= -v k="$2" '$1 == k { v = $2 } END { print v + 0 }'; }

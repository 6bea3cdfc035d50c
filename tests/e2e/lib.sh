# shellcheck shell=bash
# lib.sh: a Faraday cluster in network namespaces: one farad, N faradayd nodes
# in cluster mode, a bridge for the underlay. Sourced by tests/e2e/cluster.sh,
# tests/e2e/trust.sh and scripts/demo.sh.
#
#                        netns fe<run>-ul ("underlay")
#       +---------------------------------------------------------------+
#       |                           bridge br0                          |
#       +----p-farad----------p-n1------------p-n2-- ... -------p-nK----+
#              |                |               |                 |       veth pairs
#  netns farad |       netns n1 |               |        netns nK |
#  +-----------+-----+ +--------+---------+    ...   +------------+-----+
#  | ul0 10.87.0.250 | | ul0 10.87.0.1    |          | ul0 10.87.0.K    |
#  | farad :7450     | | faradayd cluster |          | faradayd cluster |
#  +-----------------+ | TUN f<run>-n1    |   mesh   | TUN f<run>-nK    |
#                      | 10.88.0.1/32     |<========>| 10.88.0.K/32     |
#                      | containers:      |          | containers:      |
#                      | 10.89.1.0/24     |          | 10.89.K.0/24     |
#                      +------------------+          +------------------+
#
# Underlay 10.87.0.0/24: node K is .K, farad .250 (port 7450). Each node runs
# WireGuard on UDP 51820 and its node-to-node links (mutual TLS) on TCP 7451 of
# its underlay address, and announces its overlay address (/32) and container
# prefix. Every node reaches farad and every other node through br0.
#
# farad and every node authenticate each other with certificates from a test
# CA made with `faradayctl ca init` (WORK/ca); a node's name is its CN. Every
# node gets its own namespace, veth, TUN name and TOML config (WORK/NAME/).
#
# Inputs (environment, or e2e_init's arguments FARADAYD FARADAYCTL FARAD):
#   FARADAYD, FARADAYCTL, FARAD   the binaries (default: build/...)
#   KEEP_LOGS=1                   keep the work directory after a passing run
#   E2E_TAIL=N                    log lines printed per component on failure (20)
#
# Names carry the shell's PID ($RUN_ID), so parallel runs never collide: netns
# fe<run>-NAME, interface f<run>-NAME (global: the UAPI socket directory is
# shared by every namespace), sockets /var/run/wireguard/f<run>-NAME.sock and
# /run/faraday/f<run>-NAME.sock. Nothing outside these is touched. A trap
# tears everything down on exit: processes (nodes before farad), namespaces,
# sockets.
#
# Reporting, waiting, processes, namespaces and that teardown are shared with
# the interop suite: tests/lib/netns.sh. Exit codes, as meson expects: 0 pass,
# 77 skip, anything else fail. Failures name the step that was running:
# "FAIL [step]: reason".
#
# State lives in files under WORK (pid files, per-node directories), not in
# shell variables, so helpers work the same from subshells (the suites run
# each numbered item in one, run_item, so that a failed item does not stop the
# others).

set -Eeuo pipefail
# SCRIPTDIR: the checked script's own (tests/*/, scripts/ or bench/).
# shellcheck source-path=SCRIPTDIR/../lib source-path=SCRIPTDIR/../tests/lib source=netns.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/netns.sh"

# --- names, addresses, timings ------------------------------------------------

UL_NS="fe$RUN_ID-ul"
UL_NET=10.87.0         # underlay: bridge subnet, node K is .K, farad .250
OL_NET=10.88.0         # overlay: node K is .K/32
CT_NET=10.89           # container prefixes: node K announces 10.89.K.0/24
FARAD_IDX=250
FARAD_PORT=7450
CTL_DIR=/run/faraday

# Short timings so the failure model plays out in seconds. farad suggests a
# heartbeat of EXPIRY/3 = 1 s; nodes ping each other every PING_INTERVAL and
# ask farad after SILENCE without an answer.
EXPIRY=3
HEARTBEAT=1
PING_INTERVAL=0.5
SILENCE=2
RECONNECT_MAX=1
# A suite may change these after sourcing this file (before starting farad or
# writing configs). DAEMON_DEFAULTS=1 starts farad without --expiry and writes
# configs without ping-interval and silence, so that both run their built-in
# defaults; the suite then sets EXPIRY, HEARTBEAT, PING_INTERVAL and SILENCE to
# those defaults for its budgets. NODE_CRL, if set, goes into every node config
# written afterwards as `crl` (faradayd re-reads it on SIGHUP).
DAEMON_DEFAULTS=0
NODE_CRL=""
# DPDK_NODE=NAME (environment): that node runs `dataplane = "dpdk"`. Its
# WireGuard goes through a second veth into the bridge, ud0, with no kernel
# address, which faradayd drives with DPDK (net_af_packet, two lcores where
# there are two CPUs) as $UL_NET.(100+K);
# its links and farad connection stay on ul0. Every node's ul0 then computes
# whole UDP checksums (`ethtool -K ul0 tx off`): a veth passes offloaded ones
# on unfinished, and DPDK's af_packet port would drop them as bad.
DPDK_NODE=${DPDK_NODE:-}

FARADAYD=${FARADAYD:-$REPO_ROOT/build/control/faradayd}
FARADAYCTL=${FARADAYCTL:-$REPO_ROOT/build/faradayctl/faradayctl}
FARAD=${FARAD:-$REPO_ROOT/build/farad/farad}

# --- host checks, work directory, teardown ------------------------------------

# e2e_init [FARADAYD [FARADAYCTL [FARAD]]]: check the host and the binaries,
# make the work directory, install the teardown trap.
e2e_init() {
	if [ $# -ge 1 ] && [ -n "$1" ]; then FARADAYD=$1; fi
	if [ $# -ge 2 ] && [ -n "$2" ]; then FARADAYCTL=$2; fi
	if [ $# -ge 3 ] && [ -n "$3" ]; then FARAD=$3; fi
	needs_netns ip wg ping timeout awk realpath
	if [ -n "$DPDK_NODE" ] && ! command -v ethtool >/dev/null; then
		die "DPDK_NODE=$DPDK_NODE needs ethtool (scripts/setup.sh installs it)"
	fi
	# A missing binary is a build problem, not the host's: fail.
	local v
	for v in FARADAYD FARADAYCTL FARAD; do
		[ -x "${!v}" ] || die "$v not found at '${!v}' (build it, or pass its path)"
		printf -v "$v" '%s' "$(realpath "${!v}")"
	done
	"$FARADAYD" cluster --help >/dev/null 2>&1 ||
		die "'$FARADAYD cluster --help' fails: this faradayd has no cluster mode"
	work_dir_init e2e
	: >"$WORK/nodes"
	echo "=== ${0##*/}: run $RUN_ID, work directory $WORK"
}

# stop_last: farad, for teardown: the nodes leave a farad that still listens.
stop_last() { pid_of farad; }

# dump_state: for every component started so far, whether it runs, its
# WireGuard peer count and the last lines of its log. Called when something
# fails, while the processes still run (teardown calls it if nobody did).
dump_state() {
	local name n=${E2E_TAIL:-20} what
	: >"$WORK/dumped"
	for name in farad $(cat "$WORK/nodes"); do
		[ -s "$WORK/$name/log" ] || continue
		if [ "$name" = farad ]; then
			what="farad"
		else
			what="node $name, $(wg_peer_count "$name") WireGuard peers"
			what=${what/, -1 WireGuard peers/, no interface}
		fi
		if proc_alive "$(pid_of "$name")"; then what+=", running"; else what+=", not running"; fi
		echo "=== $what; last $n lines of $WORK/$name/log"
		tail -n "$n" "$WORK/$name/log" | cut -c1-300 | sed 's/^/    | /'
	done
}

# --- accessors --------------------------------------------------------------------

# ns_of NAME, if_of NAME: the namespace and TUN interface of a node (or farad).
ns_of() { echo "fe$RUN_ID-$1"; }
if_of() { echo "f$RUN_ID-$1"; }
idx_of() { cat "$WORK/$1/idx"; }
ul_of() { echo "$UL_NET.$(idx_of "$1")"; }       # underlay address
ol_of() { echo "$OL_NET.$(idx_of "$1")"; }       # overlay address
ct_of() { echo "$CT_NET.$(idx_of "$1").0/24"; }  # container prefix
pid_of() { cat "$WORK/$1/pid" 2>/dev/null || true; }
log_of() { echo "$WORK/$1/log"; }
farad_addr() { echo "$UL_NET.$FARAD_IDX:$FARAD_PORT"; }

# --- topology -----------------------------------------------------------------------

# underlay_up: the underlay namespace with its bridge.
underlay_up() {
	step "underlay: namespace $UL_NS, bridge br0 on $UL_NET.0/24"
	netns_add "$UL_NS"
	ip -n "$UL_NS" link set lo up
	ip -n "$UL_NS" link add br0 type bridge
	ip -n "$UL_NS" link set br0 up
}

# attach NAME IDX: a namespace for NAME with a veth (ul0, $UL_NET.IDX/24)
# into the bridge.
attach() {
	local name=$1 idx=$2 ns
	ns=$(ns_of "$name")
	mkdir -p "$WORK/$name"
	echo "$idx" >"$WORK/$name/idx"
	netns_add "$ns"
	ip link add ul0 netns "$ns" type veth peer name "p-$name" netns "$UL_NS"
	ip -n "$UL_NS" link set "p-$name" master br0 up
	ip -n "$ns" link set lo up
	ip -n "$ns" addr add "$UL_NET.$idx/24" dev ul0
	ip -n "$ns" link set ul0 up
	if [ -n "$DPDK_NODE" ]; then ip netns exec "$ns" ethtool -K ul0 tx off >/dev/null; fi
	if [ "$name" = "$DPDK_NODE" ]; then
		ip link add ud0 netns "$ns" type veth peer name "d-$name" netns "$UL_NS"
		ip -n "$UL_NS" link set "d-$name" master br0 up
		# The kernel keeps off ud0: no IPv6 on it, no ARP answers for ul0's address.
		ip netns exec "$ns" sh -c 'echo 1 >/proc/sys/net/ipv6/conf/ud0/disable_ipv6;
			echo 1 >/proc/sys/net/ipv4/conf/ud0/arp_ignore'
		ip -n "$ns" link set ud0 up
	fi
}

# underlay_cut NAME, underlay_restore NAME: take NAME's veth out of the bridge
# and put it back. Nothing is closed and the link keeps its carrier: from then
# on every frame from or to NAME is dropped silently, as on a cut cable
# further along.
underlay_cut() { ip -n "$UL_NS" link set "p-$1" nomaster; }
underlay_restore() { ip -n "$UL_NS" link set "p-$1" master br0 up; }

# --- certificates -------------------------------------------------------------------

# pki_init: the test CA (WORK/ca), farad's certificate and an empty CRL.
pki_init() {
	step "test CA in $WORK/ca: farad's certificate, empty CRL"
	"$FARADAYCTL" ca init --dir "$WORK/ca" --name "e2e CA $RUN_ID" >/dev/null
	"$FARADAYCTL" cert issue --dir "$WORK/ca" farad >/dev/null
	"$FARADAYCTL" crl --dir "$WORK/ca" >/dev/null
}

# crl_update: rewrite WORK/ca/crl.pem from the CA's index and tell farad (SIGHUP).
crl_update() {
	"$FARADAYCTL" crl --dir "$WORK/ca" >/dev/null
	hup farad
}

# hup NAME...: SIGHUP farad or nodes (each re-reads its TLS files and CRL).
hup() {
	local name pid
	for name in "$@"; do
		pid=$(pid_of "$name")
		if proc_alive "$pid"; then kill -HUP "$pid"; fi
	done
}

# --- farad ----------------------------------------------------------------------------

# farad_setup: farad's namespace on the bridge.
farad_setup() {
	step "farad namespace $(ns_of farad) at $(farad_addr)"
	attach farad "$FARAD_IDX"
}

# farad_start: start farad (expiry $EXPIRY s, or its default if
# DAEMON_DEFAULTS=1; with the CA's CRL) and wait until it listens.
# FARAD_LISTEN_MS: when it was seen listening.
farad_start() {
	local log mark pid expiry=(--expiry "$EXPIRY")
	if [ "$DAEMON_DEFAULTS" = 1 ]; then
		expiry=()
		step "start farad (its defaults: expiry ${EXPIRY}s, heartbeat ${HEARTBEAT}s)"
	else
		step "start farad (expiry ${EXPIRY}s, heartbeat ${HEARTBEAT}s)"
	fi
	log=$(log_of farad)
	touch "$log"
	mark=$(log_mark farad)
	ip netns exec "$(ns_of farad)" "$FARAD" --listen "$(farad_addr)" \
		--ca "$WORK/ca/ca.pem" --cert "$WORK/ca/farad.pem" --key "$WORK/ca/farad.key" \
		--crl "$WORK/ca/crl.pem" "${expiry[@]}" >>"$log" 2>&1 &
	pid=$!
	disown "$pid" # killed on purpose later: no "Killed" notice from bash
	track "$pid"
	echo "$pid" >"$WORK/farad/pid"
	wait_until 5 log_grep farad "$mark" 'farad listening on' >/dev/null ||
		die "farad did not log 'farad listening on' within 5 s: $(tail -n 3 "$log" | tr '\n' ' ')"
	# shellcheck disable=SC2034 # for the caller
	FARAD_LISTEN_MS=$(now_ms)
}

# farad_kill [SIGNAL]: stop farad (default SIGKILL) and wait until it is gone.
farad_kill() {
	local pid
	pid=$(pid_of farad)
	kill "-${1:-KILL}" "$pid" 2>/dev/null || true
	wait_until 5 not proc_alive "$pid" || die "farad (pid $pid) still running 5 s after SIG${1:-KILL}"
	rm -f "$WORK/farad/pid"
}

# --- nodes ----------------------------------------------------------------------------

# node_define NAME IDX [CA_DIR]: a namespace on the bridge, a certificate for
# NAME issued by CA_DIR (default the test CA), and NAME's TOML config.
node_define() {
	local name=$1 idx=$2 ca_dir=${3:-$WORK/ca}
	node_attach "$name" "$idx"
	"$FARADAYCTL" cert issue --dir "$ca_dir" "$name" --out "$WORK/$name/node" >/dev/null
	node_write_config "$name"
}

# node_define_as NAME IDX HOLDER: like node_define (own namespace, TUN,
# addresses, WireGuard key file), but NAME presents a copy of HOLDER's
# certificate and key, so farad sees it as HOLDER.
node_define_as() {
	local name=$1 idx=$2 holder=$3
	node_attach "$name" "$idx"
	cp "$WORK/$holder/node.pem" "$WORK/$holder/node.key" "$WORK/$name/"
	node_write_config "$name"
}

# node_attach NAME IDX: NAME's namespace on the bridge, known to teardown as a node.
node_attach() {
	local name=$1 idx=$2 ifname
	ifname=$(if_of "$name")
	[ "${#ifname}" -le 15 ] || die "interface name $ifname is longer than 15 characters"
	attach "$name" "$idx"
	echo "$name" >>"$WORK/nodes"
	track_socket "$UAPI_DIR/$ifname.sock"
	track_socket "$CTL_DIR/$ifname.sock"
}

# node_write_config NAME: WORK/NAME/config.toml, every key of the contract
# that the test sets (the rest stay at their defaults, e.g. announce: the
# address that routes to farad, control-listen [::]:7451; ping-interval and
# silence too if DAEMON_DEFAULTS=1; crl only if NODE_CRL is set).
node_write_config() {
	local name=$1 d="$WORK/$1" timings crl="# crl: none"
	timings=$(printf 'ping-interval = %s\nsilence = %s' "$PING_INTERVAL" "$SILENCE")
	if [ "$DAEMON_DEFAULTS" = 1 ]; then timings="# ping-interval, silence: faradayd's defaults"; fi
	if [ -n "$NODE_CRL" ]; then crl="crl = \"$NODE_CRL\""; fi
	cat >"$d/config.toml" <<EOF
# faradayd cluster configuration for node $name (written by tests/e2e/lib.sh)
farad = "$(farad_addr)"
farad-name = "farad"
ca = "$WORK/ca/ca.pem"
cert = "$d/node.pem"
key = "$d/node.key"
$crl
private-key = "$d/wg.key"
interface = "$(if_of "$name")"
listen-port = 51820
mtu = 1420
overlay = "$(ol_of "$name")"
container-prefix = "$(ct_of "$name")"
container-state = "$d/containers.json"
control-socket = "$CTL_DIR/$(if_of "$name").sock"
$timings
reconnect-max = $RECONNECT_MAX
log-level = "info"
EOF
	if [ "$name" = "$DPDK_NODE" ]; then
		# Two lcores (a queue pair each) where there are two CPUs.
		local cpus lcores qpairs=1
		mapfile -t cpus < <(python3 -c 'import os; print(*sorted(os.sched_getaffinity(0)), sep="\n")')
		lcores=${cpus[0]}
		if [ "${#cpus[@]}" -ge 2 ]; then lcores="${cpus[0]},${cpus[1]}" qpairs=2; fi
		cat >>"$d/config.toml" <<EOF
dataplane = "dpdk"
dpdk-port = "net_af_packet0,iface=ud0,qpairs=$qpairs"
dpdk-address = ["$UL_NET.$((100 + $(idx_of "$name")))/24"]
dpdk-lcores = "$lcores"
dpdk-idle-sleep = 200
EOF
	fi
}

# node_start NAME [--no-wait]: start `faradayd cluster -c config.toml` in NAME's
# namespace; unless --no-wait, wait until its interface exists and its UAPI
# socket answers (`wg show`).
node_start() {
	local name=$1 wait=${2:-} pid log
	log=$(log_of "$name")
	echo "=== start $(date -u +%H:%M:%S.%3N)" >>"$log"
	ip netns exec "$(ns_of "$name")" "$FARADAYD" cluster -c "$WORK/$name/config.toml" >>"$log" 2>&1 &
	pid=$!
	disown "$pid"
	track "$pid"
	echo "$pid" >"$WORK/$name/pid"
	if [ "$wait" != --no-wait ]; then node_ready "$name"; fi
}

# node_ready NAME: wait (10 s) until NAME's interface exists and its UAPI
# socket answers; fail if the daemon exits meanwhile.
node_ready() {
	local name=$1 pid ifname i
	pid=$(pid_of "$name") ifname=$(if_of "$name")
	for i in $(seq 1 100); do
		proc_alive "$pid" || die "faradayd $name exited during start-up: $(tail -n 3 "$(log_of "$name")" | tr '\n' ' ')"
		if [ -S "$UAPI_DIR/$ifname.sock" ] && in_ns "$name" wg show "$ifname" public-key >/dev/null 2>&1; then
			return 0
		fi
		sleep 0.1
	done
	die "faradayd $name: no interface $ifname answering on $UAPI_DIR/$ifname.sock within 10 s"
}

node_alive() { proc_alive "$(pid_of "$1")"; }

# node_stop NAME [SIGNAL]: signal the node (default SIGTERM) and wait until the
# process is gone (5 s) and, its TUN with it.
node_stop() {
	local name=$1 sig=${2:-TERM} pid
	pid=$(pid_of "$name")
	proc_alive "$pid" || return 0
	kill "-$sig" "$pid"
	wait_until 5 not proc_alive "$pid" || die "faradayd $name ignored SIG$sig for 5 s"
	wait_until 3 not ip -n "$(ns_of "$name")" link show "$(if_of "$name")" >/dev/null 2>&1 ||
		die "interface $(if_of "$name") still exists 3 s after faradayd $name exited"
}

# wait_joined NAME MARK [TIMEOUT]: the node logs "joined farad at" after MARK.
wait_joined() {
	wait_until "${3:-10}" log_grep "$1" "$2" 'joined farad at' >/dev/null
}

# --- WireGuard views ----------------------------------------------------------------

# wg_peer_count NODE: how many peers NODE's interface has.
wg_peer_count() {
	local out
	out=$(wg_show "$1" peers 2>/dev/null) || { echo -1; return 0; }
	if [ -z "$out" ]; then echo 0; else echo "$out" | wc -l; fi
}

# node_pubkey NODE: the interface's public key (`wg show IF public-key`).
node_pubkey() { wg_show "$1" public-key; }

# key_pub NODE: the public key of NODE's private key file.
key_pub() { wg pubkey <"$WORK/$1/wg.key"; }

# wg_has_peer NODE KEY: KEY is one of NODE's peers.
wg_has_peer() { wg_show "$1" peers 2>/dev/null | grep -qxF "$2"; }

# --- pings ----------------------------------------------------------------------------

# ping_ok SRC DST_OVERLAY: one echo reply within 1 s.
ping_ok() { in_ns "$1" ping -q -n -c 1 -W 1 "$2" >/dev/null 2>&1; }

# reach_all TIMEOUT "SRC DST"...: for each pair, ping DST's overlay address
# from SRC until a reply, all pairs in parallel. Fails unless every pair got
# one within TIMEOUT seconds of the call. REACH_WORST_MS: how long the slowest
# pair took, REACH_WORST: which one; REACH_FAILED: the pairs that did not.
reach_all() {
	local timeout_ms start pair src dst dir pids=() i=0
	timeout_ms=$(ms_of "$1")
	shift
	start=$(now_ms)
	dir=$(mktemp -d "$WORK/reach.XXXXXX")
	for pair in "$@"; do
		read -r src dst <<<"$pair"
		(
			trap - ERR
			set +e
			dst_ip=$(ol_of "$dst")
			while true; do
				if ping_ok "$src" "$dst_ip"; then
					echo $(($(now_ms) - start)) >"$dir/$i"
					exit 0
				fi
				[ $(($(now_ms) - start)) -lt "$timeout_ms" ] || exit 1
				sleep 0.1
			done
		) &
		pids+=($!)
		i=$((i + 1))
	done
	local p
	for p in "${pids[@]}"; do wait "$p" || true; done
	REACH_WORST_MS=0 REACH_WORST="" REACH_FAILED=""
	i=0
	for pair in "$@"; do
		if [ -s "$dir/$i" ]; then
			local t
			t=$(cat "$dir/$i")
			if [ "$t" -gt "$REACH_WORST_MS" ] || [ -z "$REACH_WORST" ]; then
				REACH_WORST_MS=$t REACH_WORST=${pair/ /->}
			fi
		else
			REACH_FAILED+="${REACH_FAILED:+, }${pair/ /->}"
		fi
		i=$((i + 1))
	done
	[ -z "$REACH_FAILED" ]
}

# pairs NODE...: every ordered pair "SRC DST" of distinct nodes.
pairs() {
	local a b
	for a in "$@"; do
		for b in "$@"; do
			[ "$a" = "$b" ] || echo "$a $b"
		done
	done
}

# ping_loss SECONDS "SRC DST"...: one `ping -i 0.2` per pair for SECONDS, all
# in parallel; LOSS_TX and LOSS_RX are the totals, LOSS_PAIRS lists pairs that
# lost any.
ping_loss() {
	local secs=$1 pair src dst dir i=0 pids=()
	shift
	dir=$(mktemp -d "$WORK/loss.XXXXXX")
	for pair in "$@"; do
		read -r src dst <<<"$pair"
		in_ns "$src" ping -q -n -i 0.2 -c $((secs * 5)) -W 1 "$(ol_of "$dst")" >"$dir/$i" 2>&1 &
		pids+=($!)
		i=$((i + 1))
	done
	local p
	for p in "${pids[@]}"; do wait "$p" || true; done
	LOSS_TX=0 LOSS_RX=0 LOSS_PAIRS=""
	i=0
	for pair in "$@"; do
		local tx="" rx=""
		read -r tx rx < <(awk '/packets transmitted/ { print $1, $4 }' "$dir/$i") || true
		# No summary (ping could not even start): count every request as lost.
		if [ -z "$tx" ]; then tx=$((secs * 5)) rx=0; fi
		LOSS_TX=$((LOSS_TX + tx)) LOSS_RX=$((LOSS_RX + rx))
		if [ "$rx" -lt "$tx" ] || [ "$tx" -eq 0 ]; then
			LOSS_PAIRS+="${LOSS_PAIRS:+, }${pair/ /->} $rx/$tx"
		fi
		i=$((i + 1))
	done
}

# ping_loss_start SECONDS "SRC DST"...: ping_loss in the background, while the
# caller does something else; ping_loss_wait (from the same shell) waits for
# it and sets LOSS_TX, LOSS_RX and LOSS_PAIRS as ping_loss does.
ping_loss_start() {
	rm -f "$WORK/loss.bg"
	(
		trap - ERR
		set +e
		ping_loss "$@"
		printf '%s %s\n%s\n' "$LOSS_TX" "$LOSS_RX" "$LOSS_PAIRS" >"$WORK/loss.bg"
	) &
	echo $! >"$WORK/loss.bg.pid"
}
ping_loss_running() { proc_alive "$(cat "$WORK/loss.bg.pid")"; }
ping_loss_wait() {
	wait "$(cat "$WORK/loss.bg.pid")" || true
	LOSS_TX=0 LOSS_RX=0 LOSS_PAIRS="no result"
	if [ -s "$WORK/loss.bg" ]; then
		{ read -r LOSS_TX LOSS_RX && read -r LOSS_PAIRS; } <"$WORK/loss.bg" || true
	fi
}

# --- logs -----------------------------------------------------------------------------

# log_mark NAME: the log's current line count, to look only at what follows.
log_mark() {
	local f
	f=$(log_of "$1")
	if [ -e "$f" ]; then wc -l <"$f"; else echo 0; fi
}

# log_since NAME MARK: the log lines after MARK.
log_since() { tail -n "+$(($2 + 1))" "$(log_of "$1")" 2>/dev/null || true; }

# log_grep NAME MARK ERE: the lines after MARK that match; fails if none.
log_grep() { log_since "$1" "$2" | grep -E -- "$3"; }

# stamp_ms LINE: the time of a log line (its first field, as the daemons write
# it: 2025-01-31T12:00:00.123Z) in ms, like now_ms.
stamp_ms() { date -u -d "${1%% *}" +%s%3N; }

# log_line NAME MARK ERE: the line number (in the whole log) of the first
# match after MARK; empty if none.
log_line() {
	log_since "$1" "$2" | grep -n -E -m 1 -- "$3" | cut -d: -f1 | awk -v m="$2" 'NF { print $1 + m }'
}

# removed_peers NAME MARK: the names NAME's daemon removed after MARK (from
# "farad: X is ABSENT; removing peer X" and "peer X removed"), one a line.
removed_peers() {
	log_since "$1" "$2" | sed -nE 's/.*removing peer ([^ ;,]+).*/\1/p; s/.*peer ([^ ;,]+) removed.*/\1/p' | sort -u
}

# --- faradayctl against a node's control socket ------------------------------------

# ctl NODE ARGS...: faradayctl ARGS -i IFNAME for NODE (in its namespace).
ctl() {
	local name=$1 sub=$2
	shift 2
	in_ns "$name" "$FARADAYCTL" "$sub" -i "$(if_of "$name")" "$@"
}

# query_state NODE NAME: what farad says about NAME, asked through NODE
# (PRESENT, ABSENT, UNKNOWN, or empty if the query failed).
query_state() {
	local out
	out=$(ctl "$1" query "$2" 2>/dev/null) || true
	echo "$out" | sed -nE "s/^$2: (PRESENT|ABSENT|UNKNOWN).*/\1/p" | head -n 1
}

# --- iperf3 -----------------------------------------------------------------------------

# iperf_mbit SERVER CLIENT SECONDS: iperf3 TCP from CLIENT to SERVER's overlay
# address; prints the receiver's rate in Mbit/s.
iperf_mbit() {
	local server=$1 client=$2 secs=$3 pid out
	ip netns exec "$(ns_of "$server")" iperf3 -s -1 -p "$IPERF_PORT" >"$WORK/$server/iperf-server.log" 2>&1 &
	pid=$!
	track "$pid"
	wait_until 5 listening "$server" "$IPERF_PORT" || die "iperf3 server in $server not listening after 5 s"
	out="$WORK/$client/iperf-client.log"
	in_ns "$client" timeout $((secs + 20)) iperf3 -c "$(ol_of "$server")" -p "$IPERF_PORT" \
		-t "$secs" -f m --connect-timeout 3000 >"$out" 2>&1 ||
		die "iperf3 $client -> $server failed: $(tail -n 3 "$out" | tr '\n' ' ')"
	kill "$pid" 2>/dev/null || true
	iperf_rate "$out"
}

# --- numbered items -------------------------------------------------------------------

RESULTS=()
FAILED=0

# run_item N TITLE FUNCTION: run FUNCTION in a subshell with errexit and the
# ERR trap, so that die or any failing command ends the item, not the run.
# Prints and records "PASS item N: ..." or "FAIL item N: ..." with the time.
# E2E_LAST=N: skip the items after N; E2E_STOP_ON_FAIL=1: skip every item
# after the first failed one.
run_item() {
	local n=$1 title=$2 fn=$3 start rc line
	if [ "$n" -gt "${E2E_LAST:-99}" ]; then return 0; fi
	if [ "$FAILED" -gt 0 ] && [ "${E2E_STOP_ON_FAIL:-0}" = 1 ]; then
		RESULTS+=("SKIP item $n: $title (an earlier item failed)")
		return 0
	fi
	echo
	echo "=== item $n: $title"
	start=$(now_ms)
	set +e
	trap - ERR
	# shellcheck disable=SC2064
	(
		set -e
		trap "$ERR_TRAP" ERR
		STEP="item $n"
		"$fn"
	)
	rc=$?
	set -e
	# shellcheck disable=SC2064
	trap "$ERR_TRAP" ERR
	if [ "$rc" -eq 0 ]; then
		line="PASS item $n: $title ($(secs $(($(now_ms) - start))) s)"
	else
		line="FAIL item $n: $title ($(secs $(($(now_ms) - start))) s)"
		FAILED=$((FAILED + 1))
		dump_state >&2 || true
	fi
	echo "$line"
	RESULTS+=("$line")
}

# e2e_summary: every item's result line; exits 1 if any failed, else 0.
e2e_summary() {
	local line
	echo
	echo "=== summary (${SECONDS} s)"
	for line in "${RESULTS[@]}"; do echo "$line"; done
	if [ "$FAILED" -gt 0 ]; then
		echo "FAIL: ${0##*/}: $FAILED item(s) failed"
		exit 1
	fi
	echo "PASS: ${0##*/} (${SECONDS} s)"
	exit 0
}

# --- shared checks ------------------------------------------------------------------

# save_marks TAG NODE...: remember each log's length under TAG (a file, so
# that a later item can look back at what happened since).
save_marks() {
	local tag=$1 n
	shift
	for n in "$@"; do log_mark "$n" >"$WORK/$n/mark.$tag"; done
}
mark_of() { cat "$WORK/$2/mark.$1"; }

# assert_no_removal TAG NODE...: no node removed a peer since save_marks TAG.
assert_no_removal() {
	local tag=$1 n removed
	shift
	for n in "$@"; do
		removed=$(removed_peers "$n" "$(mark_of "$tag" "$n")" | tr '\n' ' ')
		[ -z "$removed" ] || die "$n removed peer(s) $removed: $(log_grep "$n" "$(mark_of "$tag" "$n")" 'removing peer|peer [^ ]+ removed' | head -n 3 | tr '\n' ' ')"
	done
}

# assert_peer_counts COUNT NODE...: each node has exactly COUNT WireGuard peers.
assert_peer_counts() {
	local want=$1 n got
	shift
	for n in "$@"; do
		got=$(wg_peer_count "$n")
		[ "$got" = "$want" ] || die "$n has $got WireGuard peers, expected $want"
	done
	log "peer counts: $want on each of $*"
}

# peer_counts NODE...: "n1=4 n2=4 ..."
peer_counts() {
	local n out=""
	for n in "$@"; do out+="$n=$(wg_peer_count "$n") "; done
	echo "${out% }"
}

# wait_each START_MS TIMEOUT "CMD [ARG...]" NODE...: run `CMD ARG... NODE` for
# every node that has not yet passed, every 0.1 s, until it passed for each
# (return 0) or TIMEOUT seconds after START_MS (now_ms) (return 1).
# EACH_MS[NODE]: ms from START_MS to its first pass (unset if it never did);
# EACH_LATE: the nodes that never passed.
wait_each() {
	local start=$1 timeout_ms cmd n left
	timeout_ms=$(ms_of "$2")
	read -r -a cmd <<<"$3"
	shift 3
	declare -gA EACH_MS=()
	EACH_LATE=""
	while true; do
		left=0
		for n in "$@"; do
			[ -z "${EACH_MS[$n]:-}" ] || continue
			if "${cmd[@]}" "$n"; then EACH_MS[$n]=$(($(now_ms) - start)); else left=1; fi
		done
		[ "$left" = 1 ] || return 0
		[ $(($(now_ms) - start)) -lt "$timeout_ms" ] || break
		sleep 0.1
	done
	for n in "$@"; do
		[ -n "${EACH_MS[$n]:-}" ] || EACH_LATE+="${EACH_LATE:+ }$n"
	done
	return 1
}

# each_times NODE...: "n1 2.3 s, n2 2.4 s, ..." from EACH_MS ("-" if never).
each_times() {
	local n out=""
	for n in "$@"; do
		if [ -n "${EACH_MS[$n]:-}" ]; then out+="$n $(secs "${EACH_MS[$n]}") s, "; else out+="$n -, "; fi
	done
	echo "${out%, }"
}

# --- the mesh forms -----------------------------------------------------------------

# mesh_up TIMEOUT NODE...: start the nodes, wait until each joined farad (10 s),
# then every node must ping every other one's overlay address within TIMEOUT
# seconds, and each has the others as WireGuard peers.
mesh_up() {
	local timeout=$1 n pairs_ start
	shift
	step "start $1..${!#}"
	start=$(now_ms)
	for n in "$@"; do
		save_marks start1 "$n"
		node_start "$n" --no-wait
	done
	for n in "$@"; do
		node_ready "$n"
		wait_joined "$n" "$(mark_of start1 "$n")" 10 || die "$n did not log 'joined farad at' within 10 s"
	done
	log "all $# joined farad after $(secs $(($(now_ms) - start))) s"
	for n in "$@"; do
		log "$n: public key $(node_pubkey "$n")"
	done
	mapfile -t pairs_ < <(pairs "$@")
	step "every node pings every other node's overlay address (${#pairs_[@]} pairs)"
	reach_all "$timeout" "${pairs_[@]}" || die "no reply within $timeout s for: $REACH_FAILED ($(peer_counts "$@"))"
	log "all ${#pairs_[@]} pairs answered; the slowest ($REACH_WORST) after $(secs "$REACH_WORST_MS") s"
	assert_peer_counts $(($# - 1)) "$@"
}

# --- two nodes cut off from each other ------------------------------------------------

PROBLEMS=()

# partition_hold A B HOLD TAG: cut A <-> B (a blackhole route on each to the
# other's underlay address; both still reach farad and everyone else) and hold
# it HOLD seconds. Then neither may have removed the other: farad (asked
# through each) says the other is PRESENT, each still has the other as a
# WireGuard peer, and each logged "peer X silent for" and "farad: X is
# PRESENT; keeping peer X" since save_marks TAG. Problems go to PROBLEMS
# instead of ending the item, so that the caller can add its own checks and
# always heal (partition_heal), then problems_die.
partition_hold() {
	local a=$1 b=$2 hold=$3 tag=$4 ka kb start x y s line
	ka=$(node_pubkey "$a") kb=$(node_pubkey "$b")
	step "cut $a <-> $b (blackhole routes to each other's underlay address), hold ${hold} s"
	start=$(now_ms)
	in_ns "$a" ip route add blackhole "$(ul_of "$b")/32"
	in_ns "$b" ip route add blackhole "$(ul_of "$a")/32"
	sleep 1
	if ping_ok "$a" "$(ol_of "$b")"; then PROBLEMS+=("$a still pings $b through the cut"); fi
	while [ $(($(now_ms) - start)) -lt "$(ms_of "$hold")" ]; do sleep 0.2; done
	for x in "$a" "$b"; do
		if [ "$x" = "$a" ]; then y=$b; else y=$a; fi
		s=$(query_state "$x" "$y")
		log "farad asked through $x about $y: ${s:-no answer}"
		[ "$s" = PRESENT ] || PROBLEMS+=("faradayctl query via $x: $y is '${s}', expected PRESENT")
		wg_has_peer "$x" "$(if [ "$x" = "$a" ]; then echo "$kb"; else echo "$ka"; fi)" ||
			PROBLEMS+=("$x dropped $y from wg show")
		if removed_peers "$x" "$(mark_of "$tag" "$x")" | grep -qxF "$y"; then PROBLEMS+=("$x removed $y"); fi
		if ! log_grep "$x" "$(mark_of "$tag" "$x")" "peer $y silent for" >/dev/null; then
			PROBLEMS+=("$x never logged 'peer $y silent for'")
		fi
		line=$(log_grep "$x" "$(mark_of "$tag" "$x")" "farad: $y is PRESENT; keeping peer $y" | head -n 1 || true)
		if [ -n "$line" ]; then
			log "$x: $(echo "$line" | cut -d' ' -f3-)"
		else
			PROBLEMS+=("$x never logged 'farad: $y is PRESENT; keeping peer $y'")
		fi
	done
}

# partition_heal A B TIMEOUT: remove partition_hold's routes; A and B must ping
# each other again within TIMEOUT seconds (else a problem in PROBLEMS).
partition_heal() {
	local a=$1 b=$2 timeout=$3 start
	step "heal the cut; $a and $b ping each other again"
	in_ns "$a" ip route del blackhole "$(ul_of "$b")/32"
	in_ns "$b" ip route del blackhole "$(ul_of "$a")/32"
	start=$(now_ms)
	if reach_all "$timeout" "$a $b" "$b $a"; then
		log "$a <-> $b answer again $(secs $(($(now_ms) - start))) s after the cut healed"
	else
		PROBLEMS+=("$a <-> $b still silent $timeout s after the cut healed: $REACH_FAILED")
	fi
}

# problems_die: print every problem collected in PROBLEMS and die with the first.
problems_die() {
	local p
	[ ${#PROBLEMS[@]} -gt 0 ] || return 0
	for p in "${PROBLEMS[@]}"; do echo "    problem: $p" >&2; done
	die "${PROBLEMS[0]}"
}

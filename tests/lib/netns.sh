# shellcheck shell=bash disable=SC2034 # the suites read what is set here
# netns.sh: what the network-namespace suites share. Sourced first by
# tests/e2e/lib.sh (farad and faradayd nodes on a bridge) and
# tests/interop/lib.sh (two WireGuard implementations on a veth pair), which
# build their topologies on top of it:
#
#   reporting    step, log, skip, die, and an ERR trap (ERR_TRAP) that turns
#                any failing command into die
#   time         now_ms, secs, ms_of, wait_until, not
#   processes    track, tracked_count, proc_alive
#   namespaces   needs_netns (the host check), netns_add, in_ns, wg_show,
#                underlay_reachable, listening, iperf_rate
#   teardown     work_dir_init: the run's work directory WORK and the traps
#   names        RUN_ID (the shell's PID: in every name a run makes, so that
#                parallel runs never collide), REPO_ROOT, UAPI_DIR, IPERF_PORT
#
# Exit codes, as meson expects: 0 pass, 77 skip, anything else fail. Every
# failure names the step that was running: "FAIL [step]: reason".
#
# The suite (its lib.sh) provides:
#   ns_of NAME, if_of NAME   the namespace and WireGuard interface of a node
#                            or side (for in_ns, wg_show)
#   dump_state               prints what helps when the run fails: each
#                            component's state and log tail (default: nothing)
#   stop_last                the pids teardown stops after all others, e.g. a
#                            coordinator the others say goodbye to (default: none)
#   suite_teardown           what teardown undoes first, beyond processes and
#                            namespaces, e.g. a runtime's containers (default: nothing)
#   DIE_DUMPS=1              die itself prints dump_state, once per run
#                            (default 0: the suite dumps where it catches failures)
#
# State lives in files under WORK, not in shell variables, so that helpers
# work the same from subshells: pids (every tracked process), netns (every
# namespace made), sockets (paths to remove), dumped (dump_state ran),
# last_fail (die's last message). Nothing outside these is touched.
#
# teardown runs on exit: if the run failed and nothing printed the state yet,
# dump_state; SIGTERM to every tracked process (stop_last's 0.2 s after the
# others), SIGKILL to any still running 2 s later and to anything left in the
# namespaces; then it deletes the namespaces and sockets, and WORK unless the
# run failed or KEEP_LOGS=1 (then it says where the logs are).

set -Eeuo pipefail

RUN_ID=$$
UAPI_DIR=/var/run/wireguard
IPERF_PORT=5201
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

STEP="init"
WORK=""
DIE_DUMPS=0

# --- reporting ----------------------------------------------------------------

# step NAME: announce what runs next; failures are reported against it.
step() {
	STEP="$*"
	echo "--- $STEP"
}

log() { echo "    $*"; }

skip() {
	echo "SKIP: $*"
	exit 77
}

# die REASON: report a failure of the current step (also to WORK/last_fail)
# and exit 1; with DIE_DUMPS=1, print dump_state first (once per run). From a
# subshell this ends that subshell only.
die() {
	echo "FAIL [$STEP]: $*" >&2
	if [ -n "$WORK" ] && [ -d "$WORK" ]; then
		echo "FAIL [$STEP]: $*" >"$WORK/last_fail"
		if [ "$DIE_DUMPS" = 1 ]; then dump_once >&2; fi
	fi
	exit 1
}

# dump_once: dump_state, unless it ran already in this run.
dump_once() {
	[ ! -e "$WORK/dumped" ] || return 0
	: >"$WORK/dumped"
	dump_state || true
}

dump_state() { :; }

on_err() {
	local rc=$? line=$1 cmd=$2
	die "command failed (exit $rc) at ${BASH_SOURCE[1]##*/}:$line: $cmd"
}
# shellcheck disable=SC2016 # expanded when the trap fires
ERR_TRAP='on_err "$LINENO" "$BASH_COMMAND"'
# shellcheck disable=SC2064 # ERR_TRAP is quoted for later already
trap "$ERR_TRAP" ERR

# --- time -----------------------------------------------------------------------

# now_ms: wall clock in milliseconds.
now_ms() {
	local t=${EPOCHREALTIME/[.,]/}
	echo $((t / 1000))
}

# secs MS: milliseconds as seconds with one decimal ("2.4").
secs() { awk -v m="$1" 'BEGIN { printf "%.1f", m / 1000 }'; }

# ms_of SECONDS: seconds (possibly fractional) as whole milliseconds.
ms_of() { awk -v s="$1" 'BEGIN { printf "%d", s * 1000 }'; }

# wait_until TIMEOUT CMD...: run CMD every 0.1 s until it succeeds (return 0)
# or TIMEOUT seconds passed (return 1). WAITED_MS: how long it took.
wait_until() {
	local timeout_ms start
	timeout_ms=$(ms_of "$1")
	shift
	start=$(now_ms)
	while true; do
		if "$@"; then
			WAITED_MS=$(($(now_ms) - start))
			return 0
		fi
		WAITED_MS=$(($(now_ms) - start))
		[ "$WAITED_MS" -lt "$timeout_ms" ] || return 1
		sleep 0.1
	done
}

# not CMD...: true if CMD fails (for wait_until).
not() { ! "$@"; }

# --- work directory, processes, teardown --------------------------------------

# needs_netns TOOL...: root, the TOOLs, TUN and network namespaces; skip (77)
# if anything lacks.
needs_netns() {
	[ "$(id -u)" -eq 0 ] || skip "needs root (network namespaces, TUN)"
	local tool
	for tool in "$@"; do
		command -v "$tool" >/dev/null || skip "$tool not installed"
	done
	[ -c /dev/net/tun ] || skip "/dev/net/tun missing"
	ip netns add "faraday-probe-$RUN_ID" 2>/dev/null || skip "cannot create network namespaces"
	ip netns del "faraday-probe-$RUN_ID"
}

# work_dir_init KIND: the work directory /tmp/faraday-KIND.RUN_ID.XXXXXX and
# the traps: teardown on exit, status 130 on SIGINT, 143 on SIGTERM.
work_dir_init() {
	WORK=$(mktemp -d "/tmp/faraday-$1.$RUN_ID.XXXXXX")
	: >"$WORK/pids"
	: >"$WORK/netns"
	: >"$WORK/sockets"
	trap teardown EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
}

# track PID: remember a process for teardown.
track() { echo "$1" >>"$WORK/pids"; }

# tracked_count: how many processes are tracked so far (a mark).
tracked_count() { wc -l <"$WORK/pids"; }

# track_socket PATH: remove PATH at teardown.
track_socket() { echo "$1" >>"$WORK/sockets"; }

# proc_alive PID: the process exists and is not a zombie.
proc_alive() {
	local line state
	[ -n "${1:-}" ] || return 1
	read -r line 2>/dev/null </proc/"$1"/stat || return 1
	state=${line##*) }
	state=${state%% *}
	[ "$state" != Z ] && [ "$state" != X ]
}

stop_last() { :; }
suite_teardown() { :; }

# procs_stop: SIGTERM every tracked process, those stop_last names 0.2 s
# after the others; SIGKILL whatever still runs 2 s later.
procs_stop() {
	local pid last any
	last=" $(stop_last) "
	while read -r pid; do
		[[ -n "$pid" && "$last" != *" $pid "* ]] || continue
		if proc_alive "$pid"; then kill -TERM "$pid" 2>/dev/null; fi
	done <"$WORK/pids"
	sleep 0.2
	for pid in $last; do
		if proc_alive "$pid"; then kill -TERM "$pid" 2>/dev/null; fi
	done
	for _ in 1 2 3 4 5 6 7 8 9 10; do
		any=0
		for pid in $(cat "$WORK/pids") $last; do
			if proc_alive "$pid"; then any=1; fi
		done
		[ "$any" = 1 ] || break
		sleep 0.2
	done
	for pid in $(cat "$WORK/pids") $last; do
		if proc_alive "$pid"; then kill -KILL "$pid" 2>/dev/null; fi
	done
}

# teardown: the EXIT trap (see the top of this file).
teardown() {
	local rc=$?
	trap - ERR
	set +e
	[ -n "$WORK" ] && [ -d "$WORK" ] || exit "$rc"
	local pid ns sock
	if [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ]; then dump_once >&2; fi
	suite_teardown
	procs_stop
	# Anything else still inside our namespaces was started by this run too.
	while read -r ns; do
		[ -n "$ns" ] || continue
		for pid in $(ip netns pids "$ns" 2>/dev/null); do
			kill -KILL "$pid" 2>/dev/null
		done
		ip netns del "$ns" 2>/dev/null
	done <"$WORK/netns"
	while read -r sock; do
		[ -z "$sock" ] || rm -f "$sock"
	done <"$WORK/sockets"
	if [ "$rc" -eq 0 ] && [ "${KEEP_LOGS:-0}" != 1 ]; then
		rm -rf "$WORK"
	else
		echo "(logs kept in $WORK)"
	fi
	exit "$rc"
}

# --- namespaces -----------------------------------------------------------------

# netns_add NS: create namespace NS; teardown deletes it.
netns_add() {
	echo "$1" >>"$WORK/netns"
	ip netns add "$1"
}

# in_ns NAME CMD...: run CMD inside NAME's namespace (ns_of NAME).
in_ns() {
	local ns
	ns=$(ns_of "$1")
	shift
	ip netns exec "$ns" "$@"
}

# wg_show NAME [FIELD...]: `wg show IF FIELD...` for NAME's interface (if_of NAME).
wg_show() { in_ns "$1" wg show "$(if_of "$1")" "${@:2}"; }

# underlay_reachable NAME DST: one echo reply from DST within 5 s (a fresh
# link can take a moment to carry traffic, IPv6 especially).
underlay_reachable() {
	wait_until 5 in_ns "$1" ping -q -n -c 1 -W 1 "$2" >/dev/null 2>&1
}

# listening NAME PORT: something listens on TCP PORT in NAME's namespace.
listening() { in_ns "$1" ss -Hltn "sport = :$2" 2>/dev/null | grep -q LISTEN; }

# iperf_rate LOG: the receiver's rate in Mbit/s from an iperf3 -f m client's output.
iperf_rate() {
	awk '/receiver/ { for (i = 1; i <= NF; i++) if ($i == "Mbits/sec") v = $(i - 1) } END { print v }' "$1"
}

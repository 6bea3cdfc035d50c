#!/usr/bin/env bash
# shellcheck disable=SC2317 # the item_N functions run through run_item (lib.sh)
# trust.sh: who may be in the mesh, and how fast the ones that may not are
# dropped, with the daemons' default timings: farad and six `faradayd cluster`
# nodes (n1..n6) in network namespaces on one bridge, plus `thief`, a node of
# its own (namespace, addresses, WireGuard key) that presents a copy of n2's
# certificate. Topology and helpers: lib.sh.
#
#   1. the mesh forms: n1..n6 each ping the other five (30 pairs) within 20 s
#   2. one live holder per name: thief (n2's certificate, another WireGuard
#      key) is refused with NAME_IN_USE, farad logs a security event naming
#      both addresses, nobody ever adds thief's key and n2 loses no ping; once
#      n2 leaves (SIGTERM) thief gets the name within 5 s; once thief leaves
#      and n2 starts again, every node has n2's own key back within 10 s
#   3. n6, joined and linked to five peers, revoked through farad (new CRL,
#      SIGHUP farad only): within 5 s n1..n5 drop n6 on farad's pushed removal
#      ("peer n6 revoked", not an ABSENT answer), n6's five links close, and
#      n1..n5 lose no ping among themselves; n6's handshakes go unanswered; a
#      restarted n6 is refused by farad and added by nobody
#   4. n5 revoked, the new CRL given to n1..n4 only (SIGHUP them, not farad):
#      within 5 s each reloads and closes its link to n5 (revoked), but keeps
#      n5 as a WireGuard peer (farad, with the old CRL, says PRESENT); then
#      farad's SIGHUP drops n5 everywhere within 5 s
#   5. n4 SIGKILLed: every survivor removes it within 15 s (farad says ABSENT
#      once the disconnect grace after the closed connection ran out), nothing
#      else
#   6. n3's underlay cut silently (its veth out of the bridge: no FIN, no RST):
#      n1 and n2 remove n3 only once farad expired it, no earlier than about
#      expiry - 5 s = 25 s and within expiry + silence + 5 s = 40 s of the cut
#   7. n1 and n2 cut off from each other for silence + grace + 5 s = 20 s, both
#      still reaching farad: neither removes the other (PRESENT); then they
#      ping each other again within 10 s
#
# Each item prints PASS or FAIL with its duration and the times it measured; a
# failed item does not stop the later ones (they may fail in its wake: read
# the first failure first). Timings are the daemons' defaults, checked at
# set-up (farad: expiry 30 s, heartbeat 10 s, disconnect grace 10 s; nodes:
# ping-interval 1, silence 5), except reconnect-max 1 on the nodes so that
# retries are quick. Every node has crl = WORK/ca/crl.pem (re-read on SIGHUP).
# About three minutes.
#
# Usage: trust.sh [FARADAYD [FARADAYCTL [FARAD]]]   (or the same as env)
#        E2E_LAST=N trust.sh ...   stop after item N (each item builds on the ones before)
#        E2E_STOP_ON_FAIL=1        stop after the first failed item
# Exit: 0 all passed, 1 any failed, 77 skipped (not root, no netns/TUN).
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

# The daemons' defaults (lib.sh: DAEMON_DEFAULTS); the budgets below use them.
DAEMON_DEFAULTS=1
EXPIRY=30
HEARTBEAT=10
DISCONNECT_GRACE=10
PING_INTERVAL=1
SILENCE=5
RECONNECT_MAX=1

e2e_init "$@"
NODE_CRL="$WORK/ca/crl.pem"

FIRST=(n1 n2 n3 n4 n5 n6)  # the cluster of items 1-2
THIEF_IDX=12

# --- set-up -------------------------------------------------------------------

# num_eq A B: A and B are the same number (1 and 1.0).
num_eq() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 == b + 0) }'; }

# check_node_defaults: faradayd --print-config for n1's config shows the
# timings this script assumes, the CRL and reconnect-max.
check_node_defaults() {
	local cfg key want got
	cfg=$("$FARADAYD" cluster -c "$WORK/n1/config.toml" --print-config)
	for key in ping-interval:"$PING_INTERVAL" silence:"$SILENCE" reconnect-max:"$RECONNECT_MAX" crl:"$NODE_CRL"; do
		want=${key#*:} key=${key%%:*}
		got=$(echo "$cfg" | sed -nE "s/^$key = \"?([^\"]*)\"?\$/\\1/p")
		if [ "$key" = crl ]; then
			[ "$got" = "$want" ] || die "faradayd --print-config: crl is '$got', expected '$want'"
		else
			num_eq "$got" "$want" || die "faradayd --print-config: $key is '$got', this script assumes $want"
		fi
	done
	log "faradayd (n1's config): ping-interval $PING_INTERVAL, silence $SILENCE (defaults), reconnect-max $RECONNECT_MAX, crl $NODE_CRL"
}

# check_farad_defaults: farad's "listening" line shows the expiry (and, if it
# prints one, the disconnect grace) this script assumes.
check_farad_defaults() {
	local line v
	line=$(log_grep farad 0 'farad listening on' | tail -n 1)
	v=$(echo "$line" | sed -nE 's/.*expiry=([0-9.]+)s.*/\1/p')
	num_eq "${v:-none}" "$EXPIRY" || die "farad's default expiry is '${v:-not logged}', this script assumes $EXPIRY s: $line"
	v=$(echo "$line" | sed -nE 's/.*grace=([0-9.]+)s.*/\1/p')
	if [ -n "$v" ]; then
		num_eq "$v" "$DISCONNECT_GRACE" || die "farad's default grace is $v s, this script assumes $DISCONNECT_GRACE s: $line"
	fi
	log "farad: $(echo "$line" | cut -d' ' -f3-)"
}

underlay_up
farad_setup
pki_init
step "nodes n1..n6, thief (n2's certificate, its own WireGuard key): namespaces, certificates, configs"
for k in 1 2 3 4 5 6; do node_define "n$k" "$k"; done
node_define_as thief "$THIEF_IDX" n2
(umask 077 && wg genkey >"$WORK/thief/wg.key") # its key is known up front: it never gets to show it
check_node_defaults
underlay_reachable n1 "$UL_NET.$FARAD_IDX" || die "underlay: n1 cannot ping farad at $UL_NET.$FARAD_IDX"
underlay_reachable thief "$(ul_of n1)" || die "underlay: thief cannot ping n1 at $(ul_of n1)"
farad_start
check_farad_defaults

# --- helpers ----------------------------------------------------------------------

# lacks_key KEY NODE: NODE's interface answers and KEY is not one of its peers.
lacks_key() {
	local peers
	peers=$(wg_show "$2" peers 2>/dev/null) || return 1
	! grep -qxF -- "$1" <<<"$peers"
}

# swapped NEW OLD NODE: NEW is one of NODE's peers and OLD is not.
swapped() {
	local peers
	peers=$(wg_show "$3" peers 2>/dev/null) || return 1
	grep -qxF -- "$1" <<<"$peers" && ! grep -qxF -- "$2" <<<"$peers"
}

# mentions ADDR: stdin names the IPv4 address ADDR (10.87.0.2, not 10.87.0.25).
mentions() { grep -qE "(^|[^0-9.])${1//./\\.}([^0-9]|$)"; }

# first_line NAME MARK ERE: the first log line after MARK that matches, without
# its time stamp and level (empty if none).
first_line() { log_grep "$1" "$2" "$3" 2>/dev/null | head -n 1 | cut -d' ' -f3- || true; }

# loss_problem WHAT: a problem unless the last ping_loss lost nothing.
loss_problem() {
	local lost=$((LOSS_TX - LOSS_RX))
	log "$1: sent $LOSS_TX, received $LOSS_RX, lost $lost${LOSS_PAIRS:+ ($LOSS_PAIRS)}"
	if [ "$LOSS_TX" -eq 0 ] || [ "$lost" -ne 0 ]; then PROBLEMS+=("$1: lost $lost of $LOSS_TX echo requests"); fi
}

# link_state NODE PEER: NODE's link to PEER (faradayctl status --json), or "none".
link_state() {
	ctl "$1" status --json 2>/dev/null |
		python3 -c 'import json,sys; d=json.load(sys.stdin); print(next((p["link"] for p in d["peers"] if p["name"]==sys.argv[1]), "none"))' "$2" 2>/dev/null || echo none
}

# n6_link_closed MARK NODE: n6 logged its link to NODE going down since MARK.
n6_link_closed() { log_grep n6 "$1" "link to $2 down" >/dev/null; }

# farad_departure MARK NAME: farad's first line after MARK that takes NAME out
# of the membership (event=expire, leave, revoke, ...: anything but join and update).
farad_departure() {
	log_since farad "$1" | grep -E "event=[a-z_]+ node=$2( |$)" | grep -vE 'event=(join|update) ' | head -n 1 || true
}

# --- 1. the mesh forms -----------------------------------------------------------

item_1() { mesh_up 20 "${FIRST[@]}"; }

# --- 2. one live holder per name ---------------------------------------------------

# item_2_restore: if item 2 fails half-way, leave what the later items need:
# thief stopped, n2 running.
item_2_restore() {
	local rc=$?
	[ "$rc" -ne 0 ] || return 0
	trap - ERR
	set +e
	if node_alive thief; then kill -TERM "$(pid_of thief)"; fi
	wait_until 5 not node_alive thief
	node_alive n2 || node_start n2 --no-wait
}

item_2() {
	local others=(n1 n3 n4 n5 n6) pairs_=() n k2 kt fm tm line l start
	trap item_2_restore EXIT
	PROBLEMS=()
	k2=$(node_pubkey n2) kt=$(key_pub thief)
	[ "$k2" != "$kt" ] || die "thief's WireGuard key is n2's"
	log "n2's key $k2 at $(ul_of n2); thief's key $kt at $(ul_of thief)"
	for n in "${others[@]}"; do pairs_+=("n2 $n" "$n n2"); done
	fm=$(log_mark farad) tm=$(log_mark thief)
	step "start thief (n2's certificate) during 10 s of pings between n2 and n1, n3..n6 (10 pairs)"
	ping_loss_start 10 "${pairs_[@]}"
	sleep 0.5
	node_start thief
	# Until the pings end, nobody may add thief's key or lose n2's.
	local seen_thief="" lost_n2=""
	while ping_loss_running; do
		for n in "${others[@]}"; do
			if wg_has_peer "$n" "$kt" && [[ " $seen_thief " != *" $n "* ]]; then seen_thief+=" $n"; fi
			if ! wg_has_peer "$n" "$k2" && [[ " $lost_n2 " != *" $n "* ]]; then lost_n2+=" $n"; fi
		done
		sleep 0.2
	done
	ping_loss_wait
	loss_problem "pings between n2 and the others while thief tried"
	[ -z "$seen_thief" ] || PROBLEMS+=("thief's key was a WireGuard peer of:$seen_thief")
	[ -z "$lost_n2" ] || PROBLEMS+=("n2's key was missing at some point from:$lost_n2")
	line=$(first_line thief "$tm" 'farad refused our join: NAME_IN_USE')
	if [ -n "$line" ]; then log "thief: $line"; else
		PROBLEMS+=("thief never logged 'farad refused our join: NAME_IN_USE': $(log_since thief "$tm" | grep -iE 'farad|refused' | tail -n 2 | cut -d' ' -f3- | tr '\n' ' ')")
	fi
	line=""
	while read -r l; do
		if mentions "$(ul_of thief)" <<<"$l" && mentions "$(ul_of n2)" <<<"$l"; then line=$l && break; fi
	done < <(log_grep farad "$fm" 'security: .*n2' || true)
	if [ -n "$line" ]; then log "farad: $(echo "$line" | cut -d' ' -f3-)"; else
		PROBLEMS+=("farad logged no 'security: ... n2' line naming both $(ul_of thief) and $(ul_of n2): $(first_line farad "$fm" 'security')")
	fi
	node_alive n2 || PROBLEMS+=("n2's faradayd is not running any more")
	problems_die

	step "SIGTERM n2: within 5 s thief holds the name (its key replaces n2's at n1, n3..n6)"
	start=$(now_ms)
	node_stop n2 TERM
	wait_each "$start" 5 "swapped $kt $k2" "${others[@]}" ||
		die "5 s after n2's SIGTERM, thief's key has not replaced n2's at: $EACH_LATE ($(peer_counts "${others[@]}"))"
	log "thief's key in place of n2's: $(each_times "${others[@]}") after the SIGTERM"

	step "SIGTERM thief, start n2 again (its own key file): within 10 s every node has n2's key back and all 30 pairs ping"
	node_stop thief TERM
	start=$(now_ms)
	node_start n2
	[ "$(node_pubkey n2)" = "$k2" ] || die "n2 came back with another key: $(node_pubkey n2)"
	wait_each "$start" 10 "swapped $k2 $kt" "${others[@]}" ||
		die "10 s after n2's start, n2's own key is not back at: $EACH_LATE ($(peer_counts "${FIRST[@]}"))"
	log "n2's key back: $(each_times "${others[@]}") after its start"
	local left_ms
	left_ms=$((10000 - ($(now_ms) - start)))
	[ "$left_ms" -gt 0 ] || die "10 s used up before pinging"
	mapfile -t pairs_ < <(pairs "${FIRST[@]}")
	reach_all "$(secs "$left_ms")" "${pairs_[@]}" ||
		die "within 10 s of n2's start, no reply for: $REACH_FAILED ($(peer_counts "${FIRST[@]}"))"
	log "all 30 pairs answer $(secs $(($(now_ms) - start))) s after n2's start"
	assert_peer_counts 5 "${FIRST[@]}"
}

# --- 3. n6 revoked through farad, its links up ------------------------------------------

item_3() {
	local nodes=(n1 n2 n3 n4 n5) pairs_ k6 k1 n m fm m6 start line ifname hs xfer
	PROBLEMS=()
	k6=$(node_pubkey n6) k1=$(node_pubkey n1)
	save_marks item3 "${nodes[@]}" n6
	fm=$(log_mark farad) m6=$(mark_of item3 n6)
	for n in "${nodes[@]}"; do
		[ "$(link_state n6 "$n")" = up ] || die "n6's link to $n is '$(link_state n6 "$n")' before the revocation, expected up"
	done
	log "n6's links to n1..n5 are up"
	step "revoke n6's certificate, write the CRL, SIGHUP farad only, during 8 s of pings among n1..n5 (20 pairs)"
	"$FARADAYCTL" cert revoke --dir "$WORK/ca" n6 >/dev/null
	"$FARADAYCTL" crl --dir "$WORK/ca" >/dev/null
	# The operator's view of the CA: n6 revoked, n1 still valid.
	"$FARADAYCTL" cert list --dir "$WORK/ca" --json | python3 -c '
import json, sys
by = {c["name"]: c for c in json.load(sys.stdin)}
assert by["n6"]["state"] == "revoked" and by["n6"]["revokedAt"], by["n6"]
assert by["n1"]["state"] == "valid" and by["n1"]["revokedAt"] is None, by["n1"]' ||
		die "faradayctl cert list does not show n6 revoked and n1 valid"
	mapfile -t pairs_ < <(pairs "${nodes[@]}")
	ping_loss_start 8 "${pairs_[@]}"
	sleep 0.5
	start=$(now_ms)
	hup farad
	if wait_each "$start" 5 "lacks_key $k6" "${nodes[@]}"; then
		log "n6's key gone from wg show: $(each_times "${nodes[@]}") after farad's SIGHUP"
	else
		PROBLEMS+=("5 s after farad's SIGHUP, n6 is still a peer of: $EACH_LATE")
	fi
	if wait_each "$start" 5 "n6_link_closed $m6" "${nodes[@]}"; then
		log "n6's links closed: $(each_times "${nodes[@]}") after farad's SIGHUP (n6's log: 'link to NODE down')"
	else
		PROBLEMS+=("5 s after farad's SIGHUP, n6 still has links up to: $EACH_LATE")
	fi
	wait_until 1 log_grep farad "$fm" 'event=revoke node=n6' >/dev/null || true
	line=$(first_line farad "$fm" 'event=revoke node=n6')
	if [ -n "$line" ]; then log "farad: $line"; else PROBLEMS+=("farad did not log 'event=revoke node=n6'"); fi
	for n in "${nodes[@]}"; do
		m=$(mark_of item3 "$n")
		line=$(first_line "$n" "$m" 'peer n6 revoked')
		if [ -n "$line" ]; then log "$n: $line"; else PROBLEMS+=("$n did not log 'peer n6 revoked'"); fi
		if log_grep "$n" "$m" 'n6 is ABSENT; removing' >/dev/null; then
			PROBLEMS+=("$n removed n6 on an ABSENT answer, not on farad's revocation")
		fi
	done
	ping_loss_wait
	loss_problem "pings among n1..n5 while n6 was revoked"
	for n in "${nodes[@]}"; do
		[ "$(wg_peer_count "$n")" = 4 ] || PROBLEMS+=("$n has $(wg_peer_count "$n") WireGuard peers, expected 4")
	done
	log "peer counts: $(peer_counts "${nodes[@]}")"

	step "n6 adds n1 back by hand (wg set, keepalive 1 s): no handshake completes in 4 s"
	if node_alive n6; then
		ifname=$(if_of n6)
		in_ns n6 wg set "$ifname" peer "$k1" remove
		in_ns n6 wg set "$ifname" peer "$k1" endpoint "$(ul_of n1):51820" allowed-ips "$(ol_of n1)/32" persistent-keepalive 1
		sleep 4
		hs=$(wg_show n6 latest-handshakes 2>/dev/null | awk -v k="$k1" '$1 == k { print $2 }')
		xfer=$(wg_show n6 transfer 2>/dev/null | awk -v k="$k1" '$1 == k { print "rx " $2 " B, tx " $3 " B" }')
		log "n6's latest handshake with n1: ${hs:-none, the peer is gone again}; transfer ${xfer:-none}"
		[ "${hs:-0}" = 0 ] || PROBLEMS+=("n6 completed a WireGuard handshake with n1 after its revocation")
		# Sent nothing: then the check above proved nothing.
		[ -z "$hs" ] || [ "$(echo "$xfer" | awk '{ print $5 + 0 }')" -gt 0 ] ||
			PROBLEMS+=("n6 sent n1 nothing in 4 s (no handshake initiation to refuse)")
	else
		log "n6's faradayd is not running any more: nothing to hand-craft a handshake with"
	fi

	step "restart n6: farad refuses it (revoked); 3 s later nobody has its key"
	fm=$(log_mark farad)
	node_stop n6 TERM
	node_start n6 --no-wait
	if wait_until 10 log_grep farad "$fm" 'refused .*cn=n6.*revoked' >/dev/null; then
		log "farad: $(first_line farad "$fm" 'refused .*cn=n6.*revoked')"
	else
		PROBLEMS+=("farad logged no 'refused ... cn=n6 ... revoked' within 10 s of n6's restart")
	fi
	sleep 3
	for n in "${nodes[@]}"; do
		if wg_has_peer "$n" "$k6"; then PROBLEMS+=("$n has n6's key again after n6's restart"); fi
	done
	node_stop n6 TERM
	problems_die
}

# --- 4. the CRL reaches the nodes first, then farad ---------------------------------------

# link_revoked MARK_TAG NODE: NODE logged 'TLS files reloaded' and closed its
# link to n5 as revoked since save_marks MARK_TAG.
link_revoked() {
	local m
	m=$(mark_of "$1" "$2")
	log_grep "$2" "$m" 'TLS files reloaded' >/dev/null && log_grep "$2" "$m" 'link to n5 down: .*revoked' >/dev/null
}

item_4() {
	local nodes=(n1 n2 n3 n4) k5 n start fm
	k5=$(node_pubkey n5)
	save_marks item4 "${nodes[@]}"
	fm=$(log_mark farad)
	step "revoke n5's certificate and write the CRL (farad is not told)"
	"$FARADAYCTL" cert revoke --dir "$WORK/ca" n5 >/dev/null
	"$FARADAYCTL" crl --dir "$WORK/ca" >/dev/null
	step "SIGHUP n1..n4: within 5 s each reloads and closes its link to n5 (revoked)"
	start=$(now_ms)
	hup "${nodes[@]}"
	if ! wait_each "$start" 5 "link_revoked item4" "${nodes[@]}"; then
		local why=""
		for n in $EACH_LATE; do
			why+="$n: $(log_since "$n" "$(mark_of item4 "$n")" | grep -E 'TLS|n5' | tail -n 2 | cut -d' ' -f3- | tr '\n' ' ')| "
		done
		die "5 s after SIGHUP, no 'TLS files reloaded' + 'link to n5 down: ...revoked' from: $EACH_LATE ($why)"
	fi
	log "link to n5 closed (revoked): $(each_times "${nodes[@]}") after the SIGHUP"
	for n in "${nodes[@]}"; do
		log "$n: $(first_line "$n" "$(mark_of item4 "$n")" 'link to n5 down: .*revoked')"
	done
	step "n5 stays a WireGuard peer of n1..n4 (farad has not revoked it)"
	for n in "${nodes[@]}"; do
		wg_has_peer "$n" "$k5" || die "$n dropped n5 although farad has not revoked it: $(first_line "$n" "$(mark_of item4 "$n")" 'n5')"
	done
	[ -z "$(farad_departure "$fm" n5)" ] || die "farad took n5 out without a SIGHUP: $(farad_departure "$fm" n5)"
	log "farad about n5 (asked through n1): $(query_state n1 n5) (PRESENT expected: farad still has the old CRL)"
	step "SIGHUP farad: within 5 s n1..n4 drop n5"
	start=$(now_ms)
	hup farad
	wait_each "$start" 5 "lacks_key $k5" "${nodes[@]}" ||
		die "5 s after farad's SIGHUP, n5 is still a peer of: $EACH_LATE"
	log "n5's key gone from wg show: $(each_times "${nodes[@]}") after farad's SIGHUP"
	assert_peer_counts 3 "${nodes[@]}"
	node_stop n5 TERM
}

# --- 5. a node crashes -----------------------------------------------------------------

item_5() {
	local surv=(n1 n2 n3) k4 start n m fm line removed budget=15
	k4=$(node_pubkey n4)
	save_marks item5 "${surv[@]}"
	fm=$(log_mark farad)
	step "SIGKILL n4; within ${budget} s every survivor removes it (after the disconnect grace, ${DISCONNECT_GRACE} s)"
	start=$(now_ms)
	node_stop n4 KILL
	wait_each "$start" "$budget" "lacks_key $k4" "${surv[@]}" ||
		die "${budget} s after the kill, n4 is still a peer of: $EACH_LATE ($(each_times "${surv[@]}"))"
	log "n4 gone from wg show: $(each_times "${surv[@]}") after the kill (budget ${budget} s)"
	line=$(farad_departure "$fm" n4)
	[ -z "$line" ] || log "farad: $(echo "$line" | cut -d' ' -f3-) ($(secs $(($(stamp_ms "$line") - start))) s after the kill)"
	step "each survivor: 'n4 is ABSENT; removing peer n4', nothing else removed"
	for n in "${surv[@]}"; do
		m=$(mark_of item5 "$n")
		line=$(first_line "$n" "$m" 'n4 is ABSENT; removing peer n4')
		[ -n "$line" ] || die "$n removed n4 without logging 'n4 is ABSENT; removing peer n4': $(log_grep "$n" "$m" 'n4' | tail -n 3 | cut -d' ' -f3- | tr '\n' ' ')"
		removed=$(removed_peers "$n" "$m" | tr '\n' ' ')
		[ "$removed" = "n4 " ] || die "$n removed '$removed', expected only n4"
		log "$n: $line"
	done
}

# --- 6. an underlay cut without FIN -----------------------------------------------------

# farad_lastsnd NODE: ms since NODE last sent data on its connection to farad
# (ss: tcpi_last_data_sent), empty if there is none.
farad_lastsnd() {
	in_ns "$1" ss -Htin state established "( dst $UL_NET.$FARAD_IDX and dport = :$FARAD_PORT )" 2>/dev/null |
		grep -oE 'lastsnd:[0-9]+' | head -n 1 | cut -d: -f2
}

# just_sent_to_farad NODE: NODE sent farad something (a heartbeat) within 300 ms.
just_sent_to_farad() {
	local v
	v=$(farad_lastsnd "$1")
	[ -n "$v" ] && [ "$v" -lt 300 ]
}

item_6() {
	local watchers=(n1 n2) k3 start lo hi n m fm line dep t
	PROBLEMS=()
	k3=$(node_pubkey n3)
	hi=$((EXPIRY + SILENCE + 5))
	save_marks item6 "${watchers[@]}"
	fm=$(log_mark farad)
	# farad expires n3 EXPIRY after the last message it got from it, up to one
	# heartbeat before the cut: cut just after one, so that farad's window
	# starts at the cut.
	step "wait for n3's next heartbeat to farad (up to $((HEARTBEAT + 2)) s)"
	if wait_until $((HEARTBEAT + 2)) just_sent_to_farad n3; then
		lo=$((EXPIRY - 5))
		log "n3 sent farad a message $(farad_lastsnd n3) ms ago"
	else
		lo=$((EXPIRY - HEARTBEAT - 2))
		log "saw no message from n3 to farad (last sent $(farad_lastsnd n3) ms ago): lower bound ${lo} s"
	fi
	step "cut n3's underlay (its veth out of the bridge); n1 and n2 must remove n3 ${lo}..${hi} s after the cut"
	start=$(now_ms)
	underlay_cut n3
	if wait_each "$start" "$hi" "lacks_key $k3" "${watchers[@]}"; then
		log "n3 gone from wg show: $(each_times "${watchers[@]}") after the cut (window ${lo}..${hi} s)"
	else
		PROBLEMS+=("${hi} s after the cut, n3 is still a peer of: $EACH_LATE")
	fi
	step "restore n3's underlay"
	underlay_restore n3
	dep=$(farad_departure "$fm" n3)
	if [ -n "$dep" ]; then
		log "farad: $(echo "$dep" | cut -d' ' -f3-) ($(secs $(($(stamp_ms "$dep") - start))) s after the cut)"
	else
		PROBLEMS+=("farad never took n3 out of the membership (no event=... node=n3 line)")
	fi
	for n in "${watchers[@]}"; do
		t=${EACH_MS[$n]:-}
		if [ -n "$t" ] && [ "$t" -lt $((lo * 1000)) ]; then
			PROBLEMS+=("$n removed n3 $(secs "$t") s after the cut, before farad's expiry window (${lo} s)")
		fi
		m=$(mark_of item6 "$n")
		line=$(log_grep "$n" "$m" 'n3 is ABSENT; removing peer n3' | head -n 1 || true)
		if [ -z "$line" ]; then
			[ -z "$t" ] || PROBLEMS+=("$n removed n3 without logging 'n3 is ABSENT; removing peer n3'")
			continue
		fi
		log "$n: $(echo "$line" | cut -d' ' -f3-)"
		if [ -n "$dep" ] && [ "$(stamp_ms "$line")" -lt "$(stamp_ms "$dep")" ]; then
			PROBLEMS+=("$n removed n3 before farad took it out of the membership")
		fi
	done
	problems_die
}

# --- 7. two nodes cut off from each other ---------------------------------------------

item_7() {
	PROBLEMS=()
	save_marks item7 n1 n2
	# Everything is collected, so that the cut heals whatever happens.
	partition_hold n1 n2 $((SILENCE + DISCONNECT_GRACE + 5)) item7
	partition_heal n1 n2 10
	log "after the heal: $(peer_counts n1 n2 n3) WireGuard peers (n3's return after item 6 is not checked)"
	problems_die
}

run_item 1 "the mesh forms (n1..n5, 20 pairs)" item_1
run_item 2 "a second holder of n2's certificate is refused, takes over only once n2 left" item_2
run_item 3 "n6 revoked through farad: dropped everywhere within 5 s, links closed, no loss, cannot rejoin" item_3
run_item 4 "n5 revoked, CRL on the nodes first: links closed, peer kept; then farad drops it" item_4
run_item 5 "n4 SIGKILLed: removed within 15 s after asking farad (ABSENT), nothing else" item_5
run_item 6 "n3's underlay cut without FIN: removed only once farad expired it (25..40 s)" item_6
run_item 7 "n1 and n2 cut off from each other for 20 s: kept (PRESENT), then healed" item_7

e2e_summary

#!/usr/bin/env bash
# demo.sh: the main job, locally. Sets up (scripts/setup.sh), then starts farad
# and three `faradayd cluster` nodes (n1, n2, n3), each in its own network
# namespace on one bridge, with certificates from a throw-away CA. The nodes
# find each other through farad and build a WireGuard mesh; the demo shows
# their peer counts and log lines, pings across every pair, runs iperf3
# between two nodes, prints `faradayctl status` from one node, and tears
# everything down. Root only; about 30 s. Topology and helpers: tests/e2e/lib.sh
# (the end-to-end suite runs the same cluster through the failure model:
# `meson test -C build --suite e2e`).
#
#   DEMO_BUILD=DIR scripts/demo.sh   use the binaries in DIR, skip setup.sh
#   KEEP_LOGS=1 scripts/demo.sh      keep the logs, certificates and configs
set -euo pipefail
cd "$(dirname "$0")/.."
build=${DEMO_BUILD:-build}
if [ -z "${DEMO_BUILD:-}" ]; then
	scripts/setup.sh >/dev/null
fi

# shellcheck source-path=SCRIPTDIR/.. source=tests/e2e/lib.sh
. tests/e2e/lib.sh
e2e_init "$build/control/faradayd" "$build/faradayctl/faradayctl" "$build/farad/farad"
NODES=(n1 n2 n3)

underlay_up
farad_setup
pki_init
step "certificates, namespaces and configs for ${NODES[*]}"
for k in 1 2 3; do node_define "n$k" "$k"; done
log "n1's config ($WORK/n1/config.toml):"
grep -v '^#' "$WORK/n1/config.toml" | sed 's/^/      /'
farad_start

step "start faradayd cluster on ${NODES[*]}"
for n in "${NODES[@]}"; do node_start "$n" --no-wait; done
for n in "${NODES[@]}"; do
	node_ready "$n"
	wait_joined "$n" 0 10 || die "$n did not join farad within 10 s"
done

step "they find each other through farad"
full_mesh() {
	local n
	for n in "${NODES[@]}"; do [ "$(wg_peer_count "$n")" = 2 ] || return 1; done
}
wait_until 10 full_mesh || die "peer counts after 10 s: $(for n in "${NODES[@]}"; do printf '%s=%s ' "$n" "$(wg_peer_count "$n")"; done)"
for n in "${NODES[@]}"; do
	log "$n ($(ol_of "$n")): $(wg_peer_count "$n") WireGuard peers, public key $(node_pubkey "$n")"
done
log "n1's log:"
{ grep -E 'public key|joined farad at|peer [^ ]+ (added|updated)' "$(log_of n1)" || true; } |
	cut -d' ' -f1,3- | cut -c1-150 | sed 's/^/      /'
log "farad's log:"
{ grep -E 'listening|event=' "$(log_of farad)" || true; } |
	cut -d' ' -f1,3- | cut -c1-150 | sed 's/^/      /'

step "ping across every pair, through the mesh"
ok=0
mapfile -t all_pairs < <(pairs "${NODES[@]}")
for pair in "${all_pairs[@]}"; do
	read -r src dst <<<"$pair"
	if out=$(in_ns "$src" ping -n -c 3 -i 0.2 -W 1 -w 5 "$(ol_of "$dst")" 2>&1); then ok=$((ok + 1)); fi
	log "$src -> $dst ($(ol_of "$dst")): $(echo "$out" | grep -E 'transmitted' || echo 'no summary')"
done
[ "$ok" -eq ${#all_pairs[@]} ] || die "only $ok of ${#all_pairs[@]} pairs answered"

step "iperf3 TCP through the mesh, n1 -> n3, 5 s"
mbit=""
if command -v iperf3 >/dev/null; then
	mbit=$(iperf_mbit n3 n1 5)
	log "n1 -> n3: $mbit Mbit/s"
else
	log "iperf3 not installed (scripts/setup.sh installs it): skipped"
fi

step "faradayctl status -i $(if_of n1)   (n1's view, through its control socket)"
ctl n1 status | sed 's/^/      /' || log "faradayctl status failed"

step "faradayctl query -i $(if_of n1) n2   (what farad says about n2, asked through n1)"
ctl n1 query n2 | sed 's/^/      /' || log "faradayctl query failed"

step "wg show $(if_of n2)   (n2, through the WireGuard UAPI socket)"
wg_show n2 | sed 's/^/      /'

step "tear down"
for n in "${NODES[@]}"; do node_stop "$n" TERM; done
farad_kill TERM
echo
echo "faraday demo: farad + ${#NODES[@]} faradayd nodes, $ok/${#all_pairs[@]} pairs answered${mbit:+, iperf3 n1 -> n3 $mbit Mbit/s (TCP, one stream)}"

#!/usr/bin/env bash
# demo.sh: the main job, locally. Sets up (scripts/setup.sh), then runs two
# faradayd instances in two network namespaces joined by a veth pair, brings a
# WireGuard tunnel up between them, and prints a ping and an iperf3 figure
# through it. Topology and helpers: tests/interop/lib.sh. Root only.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh >/dev/null

export IMPL_A=faradayd IMPL_B=faradayd
. tests/interop/lib.sh
interop_init "$PWD/build/control/faradayd"
topology_up
tunnel_up 4

step "ping through the tunnel (side A -> side B, overlay $OL4_B)"
in_ns A ping -c 5 -i 0.2 -W 2 "$OL4_B" | sed 's/^/    /'
step "wg show on side A"
wg_show A | sed 's/^/    /'
step "iperf3 TCP through the tunnel, 5 s"
iperf_server B
rate=$(iperf_gbit A "$OL4_B" 5)
iperf_server_stop B
echo
echo "faradayd <-> faradayd over veth: ${rate} Gbit/s (iperf3 TCP, one stream)"

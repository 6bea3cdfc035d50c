#!/usr/bin/env bash
# peers_rss.sh: the memory an idle interface with many configured peers holds,
# faradayd beside Debian's wireguard-go in the same run. Each runs standalone in
# its own namespace (the interop topology, tests/interop/lib.sh); both get the
# same N peers through `wg setconf` (random keys, one /24 and one endpoint
# each), then sit idle; the figure is the process's resident set (VmRSS, and
# its peak VmHWM) before and after.
#
# Usage (root):  bench/peers_rss.sh [FARADAYD]     default build/control/faradayd
# Environment:   BENCH_PEERS (1000)   peers configured on each side
#                BENCH_IDLE (3)       seconds idle before reading the RSS
#
# Target (issue 10): faradayd with 1,000 peers idles under 64 MiB.
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../tests/interop/lib.sh
. "$here/../tests/interop/lib.sh"

peers=${BENCH_PEERS:-1000}
idle=${BENCH_IDLE:-3}
if [ $# -ge 1 ] && [ -n "$1" ]; then FARADAYD=$1; fi
IMPL_A=faradayd
IMPL_B=wireguard-go
WG_LOG_LEVEL=error

host_check
impl_usable faradayd || die "$WHY_NOT"
impl_usable wireguard-go || die "$WHY_NOT"
work_init
echo "=== peers_rss: $peers peers, ${idle} s idle (run $RUN_ID, logs in $WORK)"
topology_up

# rss_kib SIDE FIELD: VmRSS or VmHWM of that side's process, in KiB.
rss_kib() {
	local v="PID_$1"
	awk -v f="$2:" '$1 == f { print $2 }' "/proc/${!v}/status"
}

# peers_conf FILE: a setconf file with a private key and $peers peers.
peers_conf() {
	python3 - "$peers" >"$1" <<'EOF'
import base64, os, subprocess, sys
n = int(sys.argv[1])
key = subprocess.run(["wg", "genkey"], capture_output=True, text=True, check=True).stdout.strip()
print(f"[Interface]\nPrivateKey = {key}")
for i in range(n):
    pub = base64.b64encode(os.urandom(32)).decode()
    print(f"[Peer]\nPublicKey = {pub}\nAllowedIPs = 10.{i // 250}.{i % 250}.0/24\n"
          f"Endpoint = 192.0.2.{i % 250 + 1}:{20000 + i}")
EOF
}

declare -A before=() after=() peak=()
for side in A B; do
	impl_start "$side"
	before[$side]=$(rss_kib "$side" VmRSS)
	peers_conf "$WORK/peers-$side.conf"
	step "setconf $peers peers on side $side ($(impl_of "$side"))"
	in_ns "$side" wg setconf "$(if_of "$side")" "$WORK/peers-$side.conf" ||
		die "wg setconf with $peers peers failed on $(impl_of "$side")"
	got=$(wg_show "$side" peers | wc -l)
	[ "$got" -eq "$peers" ] || die "$(impl_of "$side") reports $got peers, want $peers"
	sleep "$idle"
	assert_alive "$side"
	after[$side]=$(rss_kib "$side" VmRSS)
	peak[$side]=$(rss_kib "$side" VmHWM)
done

echo
printf '  %-14s %12s %14s %12s\n' "idle, $peers peers" "RSS empty" "RSS with peers" "peak"
for side in A B; do
	awk -v l="$(impl_of "$side")" -v b="${before[$side]}" -v a="${after[$side]}" \
		-v p="${peak[$side]}" \
		'BEGIN { printf "  %-14s %8.1f MiB %10.1f MiB %8.1f MiB\n", l, b / 1024, a / 1024, p / 1024 }'
done
awk -v f="${after[A]}" -v w="${after[B]}" \
	'BEGIN { printf "  faradayd / wireguard-go (with peers): %.2fx; target: faradayd < 64 MiB: %s\n",
		f / w, (f < 64 * 1024 ? "met" : "MISSED") }'
STEP="done"

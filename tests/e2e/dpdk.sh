#!/usr/bin/env bash
# dpdk.sh: two `faradayd standalone` on DPDK underlays over a veth pair.
#
#   netns fd<run>-a                                   netns fd<run>-b
#   +--------------------------------+               +--------------------------------+
#   | faradayd standalone fd<run>a   |               | faradayd standalone fd<run>b   |
#   |   --dpdk-port net_af_packet0,  |    veth       |   --dpdk-port net_af_packet0,  |
#   |     iface=ul0 (10.86.0.1/24)   |<=============>|     iface=ul0 (10.86.0.2/24)   |
#   |   TUN (net_tun) 10.85.0.1/24   |               |   TAP (net_tap) 10.85.0.2/24   |
#   +--------------------------------+               +--------------------------------+
#
# The veth ends carry no address: each daemon owns L2/L3 on its end (ARP and
# UDP are its own). Keys and peers are set with wg(8) through the UAPI. Shows:
# the daemons start, `wg show` works, ARP resolves each other, the handshake
# completes and ping crosses both ways, iperf3 TCP runs through the tunnel, and
# SIGTERM stops both cleanly; b runs on hugepages (scripts/hugepages.sh); a
# third daemon serves a vhost-user socket (made, refused to a second owner,
# removed at exit); and two more, joined by memif, carry packets from a
# virtio-user process attached to their vhost-user sockets (bench/dpdk_memif.sh,
# with build/bench/dpdk_memif_gen, GEN); and, first, that bad DPDK settings are refused
# with the reason before anything starts. Root only (exit 77 otherwise).
#
#   tests/e2e/dpdk.sh build/control/faradayd
set -euo pipefail
FARADAYD=$(realpath "${1:-build/control/faradayd}")
[ "$(id -u)" -eq 0 ] || { echo "dpdk.sh: needs root"; exit 77; }
# The help in a variable: grep -q stops reading at the match, and with pipefail
# the writer's SIGPIPE would read as "no DPDK".
help=$("$FARADAYD" standalone --help)
grep -q -- '--dpdk-port' <<<"$help" || { echo "dpdk.sh: no DPDK option"; exit 77; }

REPO=$(cd "$(dirname "$0")/../.." && pwd)
RUN=$$
reserved=0
A="fd${RUN}-a" B="fd${RUN}-b"
WORK=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  sleep 0.5
  # Anything left in the namespaces (a daemon stuck in start-up, iperf3) goes.
  for ns in "$A" "$B"; do
    ip netns pids "$ns" 2>/dev/null | xargs -r kill -KILL 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  ip netns del "$A" 2>/dev/null || true
  ip netns del "$B" 2>/dev/null || true
  rm -f /var/run/wireguard/fd"${RUN}"[abv].sock
  rm -rf "$WORK"
  if [ "$reserved" -gt 0 ]; then "$REPO/scripts/hugepages.sh" release "$reserved" >/dev/null; fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM
fail() {
  echo "dpdk.sh: FAIL: $*"
  for f in "$WORK"/*.log; do echo "--- $f"; tail -n 20 "$f"; done
  exit 1
}

echo "== bad settings: refused at start with the reason, exit status 2"
refused() { # WANT ARGS...: faradayd must exit 2 and say WANT
  local out rc=0
  # In a time limit: a setting wrongly taken would start a daemon that never ends.
  out=$(timeout 10 "$FARADAYD" standalone "fd${RUN}x" --dpdk-port net_null0 "${@:2}" 2>&1) || rc=$?
  [ "$rc" -eq 2 ] || fail "faradayd ${*:2}: exit status $rc, want 2 ($out)"
  grep -qF -- "$1" <<<"$out" || fail "faradayd ${*:2}: no \"$1\" in: $out"
}
refused "one address per family" --dpdk-address 10.86.0.1/24 --dpdk-address 10.86.0.9/24
refused "a family --dpdk-address has" --dpdk-address 10.86.0.1/24 --dpdk-gateway fd86::1
refused "one gateway per family" --dpdk-address 10.86.0.1/24 --dpdk-gateway 10.86.0.7 \
  --dpdk-gateway 10.86.0.8
refused "not on the link" --dpdk-address 10.86.0.1/24 --dpdk-gateway 10.87.0.1
refused "own address" --dpdk-address fd86::1/64 --dpdk-gateway fd86::1
refused "subnet's own or broadcast" --dpdk-address 10.86.0.255/24
refused "a host prefix has no neighbours" --dpdk-address 10.86.0.1/24 --dpdk-address fd86::1/128
refused "not a host's address (" --dpdk-address 127.0.0.1/8
refused "not a host's address on that link" --dpdk-address 10.86.0.1/24 --dpdk-gateway 10.86.0.255
refused "ADDRESS/PREFIX" --dpdk-address 10.86.0.1
refused "--dpdk-idle-sleep" --dpdk-address 10.86.0.1/24 --dpdk-idle-sleep 200000
refused "only with --dpdk-inner vhost" --dpdk-address 10.86.0.1/24 --dpdk-vhost-socket /tmp/x.sock
refused "want an absolute path" --dpdk-address 10.86.0.1/24 --dpdk-inner vhost \
  --dpdk-vhost-socket relative.sock
refused "a queue pair per lcore, at most 64" --dpdk-address 10.86.0.1/24 --dpdk-inner vhost \
  --dpdk-lcores 0-64
refused "--dpdk-lcores: DPDK lcores" --dpdk-address 10.86.0.1/24 --dpdk-lcores 0-99999999999
[ ! -e "/var/run/wireguard/fd${RUN}x.sock" ] || fail "a refused start left its UAPI socket"

echo "== a vhost-user socket as the inner side: made at start, one owner, gone at exit"
# A queue pair per lcore: two where there are two CPUs.
mapfile -t cpus < <(python3 -c 'import os; print(*sorted(os.sched_getaffinity(0)), sep="\n")')
vhost_lcores=${cpus[0]} pairs="1 queue pair;"
[ "${#cpus[@]}" -ge 2 ] && vhost_lcores="${cpus[0]},${cpus[1]}" pairs="2 queue pairs;"
VHOST="$WORK/vhost/fd${RUN}v.sock"
"$FARADAYD" standalone "fd${RUN}v" --dpdk-port "net_null0,no-rx=1" --dpdk-address 10.86.0.1/24 \
  --dpdk-inner vhost --dpdk-vhost-socket "$VHOST" --dpdk-idle-sleep 1000 \
  --dpdk-lcores "$vhost_lcores" >"$WORK/vhost.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do grep -q " up (vhost-user socket" "$WORK/vhost.log" && break; sleep 0.1; done
grep -q "up (vhost-user socket $VHOST)" "$WORK/vhost.log" || fail "no start-up line for the vhost-user side"
grep -qF "a vhost-user socket with $pairs" "$WORK/vhost.log" ||
  fail "the vhost-user socket has not a queue pair per lcore ($vhost_lcores)"
[ -S "$VHOST" ] || fail "no vhost-user socket at $VHOST"
# A second daemon on the same socket is a setup failure (status 1), not a bad setting.
rc=0
out=$(timeout 10 "$FARADAYD" standalone "fd${RUN}x" --dpdk-port net_null0 --dpdk-address 10.86.0.1/24 \
  --dpdk-inner vhost --dpdk-vhost-socket "$VHOST" 2>&1) || rc=$?
[ "$rc" -eq 1 ] && grep -q "in use by another faradayd" <<<"$out" ||
  fail "a second daemon on $VHOST: status $rc, want 1 and 'in use': $out"
kill "${pids[-1]}"
wait "${pids[-1]}" || fail "the vhost-user daemon exited with $?"
unset 'pids[-1]'
[ ! -e "$VHOST" ] || fail "the vhost-user socket outlived its daemon"

ip netns add "$A"
ip netns add "$B"
ip link add ul0 netns "$A" type veth peer name ul0 netns "$B"
for ns in "$A" "$B"; do
  ip -n "$ns" link set lo up
  ip -n "$ns" link set ul0 up
  # The daemon answers for its address; the kernel on this end must not.
  ip netns exec "$ns" sh -c 'echo 1 > /proc/sys/net/ipv6/conf/ul0/disable_ipv6'
done

# a on one lcore, b on two where there are two CPUs (the last two where there
# are more, so a's is its own); all poll all the time, except a with exactly
# two CPUs.
start() { # NS NAME ADDRESS LCORES [MORE OPTIONS]; PORT: the device (net_af_packet0,iface=ul0)
  ip netns exec "$1" "$FARADAYD" standalone "$2" \
    --dpdk-port "${PORT:-net_af_packet0,iface=ul0}" --dpdk-address "$3" --dpdk-lcores "$4" "${@:5}" \
    >"$WORK/$2.log" 2>&1 &
  pids+=($!)
}
# b takes its memory from hugepages that scripts/hugepages.sh reserves for it
# (64 pages of 2 MiB for --dpdk-memory 128) and gives back at exit.
# A machine that has none to give (no 2 MiB pool, a read-only /sys) runs b on
# ordinary memory and says so.
HUGEPAGES=/sys/kernel/mm/hugepages/hugepages-2048kB
b_memory=(--dpdk-hugepages --dpdk-memory 128)
if [ ! -w "$HUGEPAGES/nr_hugepages" ]; then
  echo "dpdk.sh: SKIP the hugepage part: no 2 MiB hugepage pool this script may change"
  b_memory=()
else
  "$REPO/scripts/hugepages.sh" reserve 64 || fail "scripts/hugepages.sh could not reserve 64 pages"
  reserved=64
  free_before=$(cat "$HUGEPAGES/free_hugepages")
fi
# b runs two lcores where there are two CPUs: a queue pair each on both ports
# (af_packet's qpairs, the TAP's queues). An lcore that finds its own queues
# empty takes turns on the other's, so one tunnel's bursts (on one queue)
# use both.
b_lcores=${cpus[${#cpus[@]} - 1]} b_port=net_af_packet0,iface=ul0
if [ "${#cpus[@]}" -ge 2 ]; then
  b_lcores="${cpus[${#cpus[@]} - 2]},${cpus[${#cpus[@]} - 1]}"
  b_port=net_af_packet0,iface=ul0,qpairs=2
fi
# With two CPUs, a's lcore shares b's first: a waits when idle, so both run.
a_idle=()
if [ "${#cpus[@]}" -eq 2 ]; then a_idle=(--dpdk-idle-sleep 100); fi
start "$A" "fd${RUN}a" 10.86.0.1/24 "${cpus[0]}" --dpdk-inner tun "${a_idle[@]}"
PORT=$b_port start "$B" "fd${RUN}b" 10.86.0.2/24 "$b_lcores" "${b_memory[@]}"
# The start-up line comes once the interface, the ports and the UAPI are up.
for name in "fd${RUN}a" "fd${RUN}b"; do
  for _ in $(seq 100); do grep -q "DPDK underlay net_af_packet0" "$WORK/$name.log" && break; sleep 0.1; done
  grep -q "DPDK underlay net_af_packet0" "$WORK/$name.log" || fail "$name did not start"
done
if [ "${#cpus[@]}" -ge 2 ]; then
  grep -q "2 lcores (a queue pair each; an idle lcore takes turns on the busy ones' queues)" \
    "$WORK/fd${RUN}b.log" || fail "b's start-up line does not say its lcores take turns"
fi
if [ "$reserved" -gt 0 ]; then
  in_use=$((free_before - $(cat "$HUGEPAGES/free_hugepages")))
  echo "b took $in_use hugepages"
  [ "$in_use" -gt 0 ] || fail "b runs with --dpdk-hugepages but took no hugepage"
fi

wg genkey >"$WORK/a.key"
wg genkey >"$WORK/b.key"
ip netns exec "$A" wg set "fd${RUN}a" private-key "$WORK/a.key" \
  peer "$(wg pubkey <"$WORK/b.key")" endpoint 10.86.0.2:51820 allowed-ips 10.85.0.2/32
ip netns exec "$B" wg set "fd${RUN}b" private-key "$WORK/b.key" \
  peer "$(wg pubkey <"$WORK/a.key")" endpoint 10.86.0.1:51820 allowed-ips 10.85.0.1/32
ip -n "$A" addr add 10.85.0.1/24 dev "fd${RUN}a"
ip -n "$B" addr add 10.85.0.2/24 dev "fd${RUN}b"
ip -n "$A" link set "fd${RUN}a" up
ip -n "$B" link set "fd${RUN}b" up

# The UDP port is --dpdk-listen-port's: wg(8) may read it, not change it.
[ "$(ip netns exec "$A" wg show "fd${RUN}a" listen-port)" = 51820 ] || fail "wg show listen-port"
if ip netns exec "$A" wg set "fd${RUN}a" listen-port 1234 2>/dev/null; then
  fail "a listen-port change was accepted"
fi

echo "== ping a -> b and b -> a through the tunnel"
ip netns exec "$A" ping -c 3 -i 0.2 -W 5 -q 10.85.0.2 >"$WORK/ping-ab.log" 2>&1 || fail "ping a -> b"
ip netns exec "$B" ping -c 3 -i 0.2 -W 5 -q 10.85.0.1 >"$WORK/ping-ba.log" 2>&1 || fail "ping b -> a"
ip netns exec "$A" wg show "fd${RUN}a" latest-handshakes | awk '{ exit !($2 > 0) }' \
  || fail "wg show: no handshake"

echo "== iperf3 TCP a -> b"
ip netns exec "$B" iperf3 -s -1 -B 10.85.0.2 >"$WORK/iperf-server.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do ip netns exec "$B" ss -ltn | grep -q ':5201 ' && break; sleep 0.1; done
ip netns exec "$A" iperf3 -c 10.85.0.2 -t 3 -J >"$WORK/iperf.json" 2>"$WORK/iperf.log" || fail "iperf3"
python3 - "$WORK/iperf.json" <<'PY' || fail "iperf3 moved nothing"
import json, sys
r = json.load(open(sys.argv[1]))
bps = r["end"]["sum_received"]["bits_per_second"]
print(f"iperf3 through faradayd on DPDK (af_packet; a: one lcore, b: one per CPU up to two): {bps / 1e9:.2f} Gbit/s")
sys.exit(0 if bps > 0 else 1)
PY

if [ "${#cpus[@]}" -ge 2 ]; then
  echo "== b's two lcores: 32 UDP flows from b to a spread over the TAP's queues"
  # inner_queue_rx: what that lcore's TAP queue received, whichever lcore
  # read it (an idle lcore takes turns on the other's queue).
  packets() { # WHICH: "underlay" (lcore 0) or "lcore 1 underlay"
    { grep "ports: dpdk $1 " "$WORK/fd${RUN}b.log" || true; } | tail -n 1 |
      sed -n 's/.* inner_queue_rx=\([0-9]*\) .*/\1/p'
  }
  # SIGUSR1 to b, and wait until its lcore 1 line is written (the last one).
  dump() {
    local lines
    lines=$(grep -c "ports: dpdk lcore 1 " "$WORK/fd${RUN}b.log" || true)
    kill -USR1 "${pids[1]}"
    for _ in $(seq 50); do
      [ "$(grep -c "ports: dpdk lcore 1 " "$WORK/fd${RUN}b.log" || true)" -gt "$lines" ] && return 0
      sleep 0.1
    done
    fail "b wrote no 'ports: dpdk lcore 1' line within 5 s of SIGUSR1"
  }
  dump
  before=("$(packets underlay)" "$(packets "lcore 1 underlay")")
  ip netns exec "$B" python3 - <<'PY'
import socket
for port in range(40000, 40032):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("10.85.0.2", port))
    s.sendto(b"spread", ("10.85.0.1", 9))
    s.close()
PY
  sleep 0.5
  dump
  after=("$(packets underlay)" "$(packets "lcore 1 underlay")")
  echo "b's TAP queues 0 and 1 received: ${before[*]} before, ${after[*]} after"
  [ "$((after[0] - before[0] + after[1] - before[1]))" -ge 32 ] ||
    fail "b's lcores took fewer than the 32 packets from the TAP"
  [ "$((after[0] - before[0]))" -gt 0 ] && [ "$((after[1] - before[1]))" -gt 0 ] ||
    fail "the 32 flows did not spread over b's two TAP queues"
  ! grep "ports: dpdk" "$WORK/fd${RUN}b.log" | grep -q "news_lost=[1-9]" || fail "b lost neighbour news"
  # How many bursts each lcore took from the other's queues after iperf3's one
  # tunnel and the flows above (said, not asserted: it depends on which lcore
  # the machine gave a CPU when).
  last_two=$(grep "ports: dpdk" "$WORK/fd${RUN}b.log" | tail -n 2)
  [[ $last_two == *turns_taken=*turns_taken=* ]] ||
    fail "b's ports: lines do not count the lcores' turns on each other's queues"
  echo "b, lcore 0 then 1: $(grep -o "turns_taken=[0-9]*" <<<"$last_two" | paste -sd' ')"
fi

echo "== SIGTERM"
kill -USR1 "${pids[0]}"
sleep 0.3
grep "ports: dpdk" "$WORK/fd${RUN}a.log" || true; grep -q "ports: dpdk.* learnt=[1-9]" "$WORK/fd${RUN}a.log" || fail "a learnt no neighbour (ARP)"
for pid in "${pids[@]:0:2}"; do kill "$pid"; done
for pid in "${pids[@]:0:2}"; do wait "$pid" || fail "a daemon exited with $?"; done
pids=("${pids[@]:2}")
grep -q "stopped" "$WORK/fd${RUN}a.log" || fail "a did not log its stop"

echo "== two daemons over memif, packets from a virtio-user process (bench/dpdk_memif.sh 1 1)"
GEN=${GEN:-$(dirname "$FARADAYD")/../bench/dpdk_memif_gen}
[ -x "$GEN" ] || fail "no $GEN (meson builds it with DPDK)"
FARADAYD="$FARADAYD" GEN="$GEN" "$REPO/bench/dpdk_memif.sh" 1 1 >"$WORK/memif.out" 2>&1 ||
  fail "dpdk_memif.sh failed: $(grep -v VHOST_CONFIG "$WORK/memif.out" | tail -n 5)"
grep '^best of' "$WORK/memif.out"
# Every packet sent after the warm-up arrived (received in time, or late),
# and a second moved thousands.
python3 - "$WORK/memif.out" <<'PY' || fail "packets lost or too few through memif and vhost-user"
import re, sys
for line in open(sys.argv[1]):
    if line.startswith("best of"):
        v = dict(re.findall(r"(\w+)=([0-9.]+)", line))
        sent, got = int(v["sent"]), int(v["received"]) + int(v["late"])
        if got != sent or got < 10000:
            sys.exit(1)
PY
echo "dpdk.sh: OK"

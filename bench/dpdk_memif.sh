#!/usr/bin/env bash
# dpdk_memif.sh: two faradayd on DPDK, one lcore each, joined by net_memif (a
# shared-memory underlay between two processes), with the traffic made and
# counted by a third process, build/bench/dpdk_memif_gen, a DPDK application
# attached to each daemon's vhost-user socket (--dpdk-inner vhost):
#
#   dpdk_memif_gen --virtio-user--> faradayd A ==memif==> faradayd B --virtio-user--> dpdk_memif_gen
#                  (A's socket)     lcore CPU0            lcore CPU1  (B's socket)
#
# Every packet crosses A's WireGuard encapsulation, the underlay (Ethernet,
# IPv4, UDP, A's ARP for B), and B's decapsulation. For 64 and 1420-byte inner
# packets, ROUNDS rounds (default 3) of SECONDS each (default 3); prints each
# round's line and the best of each size. No hugepages, no NIC; root (the UAPI
# sockets live in /var/run/wireguard).
#
# On a 2-vCPU machine the generator shares a CPU with A's lcore (GEN_CPU picks
# another), so the figure is a floor for two dedicated lcores. Three pollers on
# two CPUs hand the CPU over once per scheduler slice (milliseconds), which
# holds everything to about 32 k packets a second: the daemons therefore run
# with --dpdk-idle-sleep IDLE_US (default 20), so a daemon whose queues are
# empty lets the generator run, and the generator yields when it has 1024
# packets in flight (its virtio rings' size) and nothing came back.
#
#   [IDLE_US=20] [GEN_CPU=N] bench/dpdk_memif.sh [SECONDS [ROUNDS]]
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER=${1:-3}
ROUNDS=${2:-3}
FARADAYD=${FARADAYD:-build/control/faradayd}
GEN=${GEN:-build/bench/dpdk_memif_gen}
IDLE_US=${IDLE_US:-20}
[ "$(id -u)" -eq 0 ] || { echo "dpdk_memif.sh: run as root" >&2; exit 1; }
for f in "$FARADAYD" "$GEN"; do
  [ -x "$f" ] || { echo "dpdk_memif.sh: $f not built (meson with libdpdk-dev)" >&2; exit 1; }
done

WORK=$(mktemp -d)
RUN=$$
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -f /var/run/wireguard/fm"${RUN}"[ab].sock
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
fail() {
  echo "dpdk_memif.sh: $*" >&2
  for f in "$WORK"/*.log; do echo "--- $f" >&2; grep -v '^VHOST_CONFIG' "$f" | tail -n 15 >&2; done
  exit 1
}

mapfile -t cpus < <(python3 -c 'import os; print(*sorted(os.sched_getaffinity(0)), sep="\n")')
cpu_a=${cpus[0]} cpu_b=${cpus[${#cpus[@]} - 1]}
GEN_CPU=${GEN_CPU:-$cpu_a}
start() { # SIDE ROLE ADDRESS CPU
  "$FARADAYD" standalone "fm${RUN}$1" \
    --dpdk-port "net_memif0,role=$2,id=0,socket=$WORK/memif.sock" --dpdk-address "$3" \
    --dpdk-lcores "$4" --dpdk-inner vhost --dpdk-vhost-socket "$WORK/$1.vhost" \
    --dpdk-idle-sleep "$IDLE_US" >"$WORK/$1.log" 2>&1 &
  pids+=($!)
}
start a server 10.91.0.1/24 "$cpu_a"
# The memif server up first (its socket is abstract), then the client.
for _ in $(seq 100); do grep -q " up (vhost-user socket" "$WORK/a.log" && break; sleep 0.1; done
start b client 10.91.0.2/24 "$cpu_b"
for side in a b; do
  for _ in $(seq 100); do grep -q " up (vhost-user socket" "$WORK/$side.log" && break; sleep 0.1; done
  grep -q " up (vhost-user socket" "$WORK/$side.log" || fail "faradayd $side did not start"
done

for side in a b; do wg genkey >"$WORK/$side.key"; wg pubkey <"$WORK/$side.key" >"$WORK/$side.pub"; done
wg set "fm${RUN}a" private-key "$WORK/a.key" listen-port 51820 \
  peer "$(cat "$WORK/b.pub")" endpoint 10.91.0.2:51820 allowed-ips 192.168.77.2/32 ||
  fail "wg set on A refused"
wg set "fm${RUN}b" private-key "$WORK/b.key" listen-port 51820 \
  peer "$(cat "$WORK/a.pub")" endpoint 10.91.0.1:51820 allowed-ips 192.168.77.1/32 ||
  fail "wg set on B refused"

echo "load average: $(cut -d' ' -f1-3 /proc/loadavg); faradayd A on CPU $cpu_a, B on CPU $cpu_b," \
  "the generator on CPU $GEN_CPU; the daemons wait ${IDLE_US} us when idle"
for size in 1420 64; do
  best=""
  for round in $(seq "$ROUNDS"); do
    line=$("$GEN" "$WORK/a.vhost" "$WORK/b.vhost" "$size" "$SECONDS_PER" "$GEN_CPU" \
      2>"$WORK/gen.log" | grep '^size=') || fail "the generator failed: $(tail -n 3 "$WORK/gen.log")"
    echo "round $round: $line"
    gbit=$(sed 's/.* gbit=\([0-9.]*\).*/\1/' <<<"$line")
    if [ -z "$best" ] || awk -v a="$gbit" -v b="$best" 'BEGIN { exit !(a > b) }'; then
      best=$gbit best_line=$line
    fi
  done
  echo "best of $ROUNDS, $size B: $best_line"
done
kill -USR1 "${pids[0]}" "${pids[1]}"
sleep 0.3
for side in a b; do
  echo "faradayd $side: $(grep ' stats: ' "$WORK/$side.log" | tail -n 1 | sed 's/.* stats: //')"
  echo "  $(grep ' ports: ' "$WORK/$side.log" | tail -n 1 | sed 's/.* ports: //')"
done
kill "${pids[@]}"
for pid in "${pids[@]}"; do wait "$pid" || fail "a faradayd exited with status $? at SIGTERM"; done
pids=()

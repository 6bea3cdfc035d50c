#!/usr/bin/env bash
# hugepages.sh: reserves and releases 2 MiB hugepages for `faradayd standalone
# --dpdk-hugepages` (whose EAL runs --in-memory: no hugetlbfs mount is needed).
#
#   scripts/hugepages.sh reserve N   add N pages to the kernel's pool; fails, and
#                                    gives back what it got, if the kernel cannot
#                                    find N free ones (memory too fragmented)
#   scripts/hugepages.sh release N   take N pages out of the pool again (pages
#                                    still in use go when their user exits)
#   scripts/hugepages.sh status      the pool: total and free
#
# Reserving adds to the pool and releasing subtracts from it, under a lock
# (/run/lock/faraday-hugepages.lock), so several users of this script (two test
# scripts at once) each take and give back their own share.
# faradayd with --dpdk-memory M takes M/2 pages (default 256 MiB: 128 pages).
# Root only.
set -euo pipefail

POOL=/sys/kernel/mm/hugepages/hugepages-2048kB
usage() {
  echo "usage: $0 reserve N | release N | status" >&2
  exit 2
}
[ $# -ge 1 ] || usage
[ -d "$POOL" ] || { echo "hugepages.sh: this kernel has no 2 MiB hugepages ($POOL)" >&2; exit 1; }
total() { cat "$POOL/nr_hugepages"; }
free() { cat "$POOL/free_hugepages"; }

case "$1" in
status)
  echo "2 MiB hugepages: $(total) in the pool, $(free) free"
  ;;
reserve | release)
  [ $# -eq 2 ] && [[ "$2" =~ ^[0-9]+$ ]] || usage
  [ "$(id -u)" -eq 0 ] || { echo "hugepages.sh: run as root" >&2; exit 1; }
  mkdir -p /run/lock
  exec 9>/run/lock/faraday-hugepages.lock
  flock 9
  before=$(total) free_before=$(free)
  if [ "$1" = release ]; then
    want=$((before > $2 ? before - $2 : 0))
    echo "$want" >"$POOL/nr_hugepages"
    echo "hugepages.sh: released $2 pages: $(total) in the pool, $(free) free"
    exit 0
  fi
  echo $((before + $2)) >"$POOL/nr_hugepages"
  got=$(($(total) - before))
  if [ "$got" -lt "$2" ] || [ "$(free)" -lt $((free_before + $2)) ]; then
    echo "$before" >"$POOL/nr_hugepages"
    echo "hugepages.sh: the kernel found $got of $2 free 2 MiB pages (memory fragmented?);" \
      "gave them back" >&2
    exit 1
  fi
  echo "hugepages.sh: reserved $2 pages: $(total) in the pool, $(free) free"
  ;;
*) usage ;;
esac

#!/usr/bin/env bash
# shellcheck disable=SC2317 # the item_N functions run through run_item (lib.sh)
# containers.sh: containers on the mesh through faraday-cni, invoked as a
# runtime invokes it (CNI_* environment, configuration on stdin): farad and
# two `faradayd cluster` nodes (n1, n2; container prefixes 10.89.1.0/24 and
# 10.89.2.0/24) in network namespaces; each "container" is a network
# namespace of its own. Topology and helpers: lib.sh.
#
#   1. rkt's way (0.1.0 .conf, no cniVersion, CNI_ARGS): ADD a container on n1
#      and one on n2; each gets an address of its node's prefix, its
#      interface and lo only, a default route via the gateway; they ping each
#      other and carry TCP (iperf3) through the mesh; CHECK passes
#   2. the container reaches nothing but the mesh: not its node's overlay or
#      underlay address, not farad, not the other node's underlay; and it
#      cannot send as another address
#   3. DEL, DEL again (both succeed), DEL with the namespace gone; CHECK of a
#      deleted container fails with code 3; ADD of a name the namespace
#      already has fails with code 100 and leaves nothing behind; DEL naming
#      another namespace deletes nothing there; ADD into faradayd's own
#      namespace is refused
#   4. CHECK after the interface was deleted behind the plugin's back says so
#   5. faradayd n2 restarted: its container is attached again (CHECK passes,
#      the ping comes back) and keeps its address; a new ADD does not get it,
#      and takes TCP before it ever sent a frame; a container whose interface
#      was deleted while n2 was down fails CHECK, which says so
#   6. every spec version: ADD, CHECK (0.4.0 on), DEL, VERSION, STATUS and GC
#      (1.1.0) with a .conflist-style configuration, each result in its shape
#   7. 20 containers added and deleted in a loop leave no interface, address,
#      route or allocation behind (on n1; on DPDK_NODE when one is set)
#   8. podman 4.3 with its CNI backend (runc, cgroupfs; configuration, storage
#      and networks all under WORK, an image imported from busybox-static): a
#      container on n1 pings and sends TCP to one on n2 through the mesh,
#      reaches neither underlay, farad nor its host; `podman rm` releases its
#      address; 20 containers started and removed leave no interface, address,
#      route or allocation on the node
#
# With DPDK_NODE=n2 in the environment (meson's e2e-containers, when DPDK is
# built) n2 runs `dataplane = "dpdk"` (lib.sh): a container's packets to the
# other node's then cross both data paths, each way.
#
# Usage: containers.sh [FARADAYD [FARADAYCTL [FARAD [FARADAY_CNI]]]]
#        E2E_LAST=N containers.sh ...   stop after item N
# Exit: 0 all passed, 1 any failed, 77 skipped (not root, no netns/TUN).
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

CNI=${4:-${FARADAY_CNI:-$REPO_ROOT/build/rkt/faraday-cni}}
e2e_init "${@:1:3}"
[ -x "$CNI" ] || die "faraday-cni not found at '$CNI' (build it, or pass its path)"
CNI=$(realpath "$CNI")
needs_netns iperf3 python3 podman runc busybox

# Container namespaces: named here, deleted by teardown.
ctr_ns() { echo "fc$RUN_ID-$1"; }
ctr_path() { echo "/var/run/netns/$(ctr_ns "$1")"; }
in_ctr() {
	local ns
	ns=$(ctr_ns "$1")
	shift
	ip netns exec "$ns" "$@"
}

# cni NODE COMMAND ID IFNAME CTR VERSION [CONF-KIND]: runs faraday-cni as a
# runtime does, against NODE's faradayd (CTR: a container's name, or a
# namespace path); stdout in WORK/cni.out, exit code returned. CONF-KIND rkt: a net.d .conf without cniVersion (rkt's); else a
# plugin configuration of VERSION (what a runtime takes from a .conflist).
cni() {
	local node=$1 command=$2 id=$3 ifname=$4 ctr=$5 version=$6 kind=${7:-conflist} conf netns="" sock
	sock="$CTL_DIR/$(if_of "$node").sock"
	if [ "$kind" = rkt ]; then
		conf=$(printf '{"name": "faraday", "type": "faraday-cni", "interface": "%s", "controlSocket": "%s"}' "$(if_of "$node")" "$sock")
	else
		conf=$(printf '{"cniVersion": "%s", "name": "faraday", "type": "faraday-cni", "interface": "%s", "controlSocket": "%s"}' "$version" "$(if_of "$node")" "$sock")
	fi
	case "$ctr" in
	"") ;;
	/*) netns=$ctr ;; # a path as it is
	*) netns=$(ctr_path "$ctr") ;;
	esac
	set +e
	echo "$conf" | env -i PATH="$PATH" CNI_COMMAND="$command" CNI_CONTAINERID="$id" CNI_NETNS="$netns" \
		CNI_IFNAME="$ifname" CNI_ARGS="IgnoreUnknown=1;K8S_POD_NAME=x" CNI_PATH=/usr/lib/cni \
		"$CNI" >"$WORK/cni.out" 2>"$WORK/cni.err"
	local rc=$?
	set -e
	return "$rc"
}

# json_get EXPR: EXPR (Python, over `r`) evaluated on WORK/cni.out.
json_get() { python3 -c "import json,sys; r=json.load(open('$WORK/cni.out')); print($1)"; }

# ctr_add NODE CTR: a namespace CTR and ADD eth0 there (1.0.0), its address in WORK/CTR.addr.
ctr_add() {
	local node=$1 ctr=$2 version=${3:-1.0.0} kind=${4:-conflist}
	[ -e "$(ctr_path "$ctr")" ] || netns_add "$(ctr_ns "$ctr")"
	cni "$node" ADD "id-$ctr" eth0 "$ctr" "$version" "$kind" ||
		die "ADD $ctr on $node failed: $(cat "$WORK/cni.out") $(cat "$WORK/cni.err")"
	if [ "$kind" = rkt ]; then
		json_get "r['ip4']['ip'].split('/')[0]" >"$WORK/$ctr.addr"
	else
		json_get "r['ips'][0]['address'].split('/')[0]" >"$WORK/$ctr.addr"
	fi
}
addr_of() { cat "$WORK/$1.addr"; }
# has TEXT ERE: TEXT (a command's whole output, taken first: `cmd | grep -q`
# fails under pipefail when grep's early exit gives cmd a SIGPIPE) matches.
has() { grep -qE -- "$2" <<<"$1"; }
# ctr_listening CTR PORT: something listens on TCP PORT in the container.
ctr_listening() { has "$(in_ctr "$1" ss -Hltn "sport = :$2")" LISTEN; }
ctr_ping() { in_ctr "$1" ping -q -n -c 1 -W 1 "$2" >/dev/null 2>&1; }

underlay_up
farad_setup
pki_init
step "nodes n1, n2: namespaces, certificates, configs"
node_define n1 1
node_define n2 2
farad_start
node_start n1
node_start n2

item_1() {
	wait_until 15 ping_ok n1 "$(ol_of n2)" || die "the mesh did not form: n1 cannot ping n2's overlay"
	ctr_add n1 a rkt rkt
	python3 - "$WORK/cni.out" <<'EOF' || die "rkt's ADD result: $(cat "$WORK/cni.out")"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["cniVersion"] == "0.1.0", r
assert r["ip4"]["ip"].startswith("10.89.1.") and r["ip4"]["ip"].endswith("/24"), r
assert r["ip4"]["gateway"] == "10.89.1.1", r
assert "interfaces" not in r, r
EOF
	ctr_add n2 b
	log "a on n1: $(addr_of a), b on n2: $(addr_of b)"
	local links
	links=$(in_ctr a ip -o link show | awk -F': ' '{print $2}' | sort | tr '\n' ' ')
	[ "$links" = "eth0 lo " ] || die "container a has interfaces '$links', expected eth0 and lo only"
	has "$(in_ctr a ip route show)" "^default via 10.89.1.1 dev eth0" || die "container a: no default route via 10.89.1.1: $(in_ctr a ip route show)"
	in_ctr a ip link set lo up
	in_ctr b ip link set lo up
	wait_until 10 ctr_ping a "$(addr_of b)" || die "container a cannot ping b ($(addr_of b)) through the mesh"
	ctr_ping b "$(addr_of a)" || die "container b cannot ping a"
	in_ctr b iperf3 -s -1 -D -p 5299 --logfile "$WORK/iperf-b.log"
	wait_until 5 ctr_listening b 5299 || die "iperf3 in b does not listen"
	in_ctr a timeout 20 iperf3 -c "$(addr_of b)" -p 5299 -t 2 -f m >"$WORK/iperf-a.log" 2>&1 ||
		die "TCP from a to b failed: $(tail -n 3 "$WORK/iperf-a.log")"
	log "TCP a -> b: $(iperf_rate "$WORK/iperf-a.log") Mbit/s"
	cni n1 CHECK id-a eth0 a 1.0.0 || die "CHECK of a failed: $(cat "$WORK/cni.out")"
}

item_2() {
	local dst
	for dst in "$(ol_of n1)" "$(ul_of n1)" "$UL_NET.$FARAD_IDX" "$(ul_of n2)" "$(ol_of n2)"; do
		if ctr_ping a "$dst"; then
			[ "$dst" = "$(ol_of n2)" ] && continue # another node's overlay is in the mesh
			die "container a reaches $dst outside the mesh"
		fi
	done
	# A second address on the container's side: its packets go nowhere.
	in_ctr a ip addr add 10.89.1.200/24 dev eth0
	if in_ctr a ping -q -n -c 1 -W 1 -I 10.89.1.200 "$(addr_of b)" >/dev/null 2>&1; then
		die "container a sent as 10.89.1.200 and was answered"
	fi
	in_ctr a ip addr del 10.89.1.200/24 dev eth0
	log "a reaches b and n2's overlay only; its node's overlay $(ol_of n1), underlay, farad: no; spoofed source: dropped"
}

item_3() {
	netns_add "$(ctr_ns c)"
	cni n1 ADD id-c eth0 c 1.0.0 || die "ADD c: $(cat "$WORK/cni.out")"
	cni n1 DEL id-c eth0 c 1.0.0 || die "DEL c: $(cat "$WORK/cni.out")"
	[ ! -s "$WORK/cni.out" ] || die "DEL printed '$(cat "$WORK/cni.out")'"
	in_ctr c ip link show eth0 >/dev/null 2>&1 && die "eth0 still in c after DEL"
	cni n1 DEL id-c eth0 c 1.0.0 || die "second DEL of c failed: $(cat "$WORK/cni.out")"
	if cni n1 CHECK id-c eth0 c 1.0.0; then die "CHECK of a deleted container passed"; fi
	[ "$(json_get "r['code']")" = 3 ] || die "CHECK of a deleted container: $(cat "$WORK/cni.out"), expected code 3"
	# ADD, then the namespace goes before DEL (a runtime that lost it).
	cni n1 ADD id-c eth0 c 1.0.0 || die "ADD c again: $(cat "$WORK/cni.out")"
	ip netns del "$(ctr_ns c)"
	cni n1 DEL id-c eth0 c 1.0.0 || die "DEL with the namespace gone: $(cat "$WORK/cni.out")"
	cni n1 DEL id-c eth0 "" 1.0.0 || die "DEL without CNI_NETNS: $(cat "$WORK/cni.out")"
	# A name the namespace has already.
	netns_add "$(ctr_ns d)"
	in_ctr d ip link add eth0 type veth peer name d-peer
	local before
	before=$(in_ns n1 ip -o link show | wc -l)
	if cni n1 ADD id-d eth0 d 1.0.0; then die "ADD of an existing eth0 succeeded"; fi
	[ "$(json_get "r['code']")" = 100 ] || die "ADD of an existing name: $(cat "$WORK/cni.out"), expected code 100"
	log "ADD of an existing name: $(json_get "r['msg']")"
	[ "$(in_ns n1 ip -o link show | wc -l)" = "$before" ] || die "a failed ADD left an interface on n1: $(in_ns n1 ip -o link show)"
	grep -q id-d "$WORK/n1/containers.json" && die "a failed ADD left an allocation: $(cat "$WORK/n1/containers.json")"
	has "$(in_ctr d ip -o link show eth0)" "eth0@d-peer" || die "the failed ADD touched d's own eth0"
	# DEL names another namespace (d, whose eth0 is not faradayd's): only the
	# namespace ADD was given is acted on.
	netns_add "$(ctr_ns x)"
	cni n1 ADD id-x eth0 x 1.0.0 || die "ADD x: $(cat "$WORK/cni.out")"
	cni n1 DEL id-x eth0 d 1.0.0 || die "DEL x naming d: $(cat "$WORK/cni.out")"
	has "$(in_ctr d ip -o link show eth0 2>&1)" "eth0@d-peer" || die "DEL of x deleted d's eth0"
	if in_ctr x ip link show eth0 >/dev/null 2>&1; then die "DEL of x left x's eth0"; fi
	# faradayd's own namespace is no container's.
	if cni n1 ADD id-y eth0 "/var/run/netns/$(ns_of n1)" 1.0.0; then die "ADD into n1's own namespace succeeded"; fi
	log "ADD into the node's own namespace: $(json_get "r['msg']")"
	log "DEL twice, DEL with the namespace gone, CHECK after DEL (code 3), ADD of an existing name (code 100): as the spec says"
}

item_4() {
	netns_add "$(ctr_ns e)"
	cni n1 ADD id-e eth0 e 1.0.0 || die "ADD e: $(cat "$WORK/cni.out")"
	cni n1 CHECK id-e eth0 e 1.0.0 || die "CHECK e: $(cat "$WORK/cni.out")"
	in_ctr e ip link del eth0
	if cni n1 CHECK id-e eth0 e 1.0.0; then die "CHECK passed with eth0 deleted"; fi
	log "CHECK after the interface was deleted: $(json_get "r['msg']")"
	cni n1 DEL id-e eth0 e 1.0.0 || die "DEL e: $(cat "$WORK/cni.out")"
}

item_5() {
	local before
	before=$(addr_of b)
	# g's interface goes while n2 is down: it cannot be attached again.
	netns_add "$(ctr_ns g5)"
	cni n2 ADD id-g5 eth0 g5 1.0.0 || die "ADD g5: $(cat "$WORK/cni.out")"
	node_stop n2
	in_ctr g5 ip link del eth0
	node_start n2
	wait_until 15 ctr_ping a "$before" || die "after n2's restart, a cannot ping b ($before)"
	cni n2 CHECK id-b eth0 b 1.0.0 || die "CHECK of b after the restart: $(cat "$WORK/cni.out")"
	if cni n2 CHECK id-g5 eth0 g5 1.0.0; then die "CHECK of g5, whose interface went while n2 was down, passed"; fi
	has "$(json_get "r['msg']")" "not running" || die "CHECK of g5 does not say why: $(cat "$WORK/cni.out")"
	log "CHECK of g5 after the restart: $(json_get "r['msg']")"
	cni n2 DEL id-g5 eth0 g5 1.0.0 || die "DEL g5: $(cat "$WORK/cni.out")"
	netns_add "$(ctr_ns f)"
	cni n2 ADD id-f eth0 f 1.0.0 || die "ADD f: $(cat "$WORK/cni.out")"
	local got
	got=$(json_get "r['ips'][0]['address'].split('/')[0]")
	[ "$got" != "$before" ] || die "a restarted n2 handed b's address $before out again"
	# f has sent nothing yet: a's first TCP segment must reach it unicast.
	in_ctr f ip link set lo up
	in_ctr f iperf3 -s -1 -D -p 5298 --logfile "$WORK/iperf-f.log"
	wait_until 5 ctr_listening f 5298 || die "iperf3 in f does not listen"
	in_ctr a timeout 20 iperf3 -c "$got" -p 5298 -t 1 -f m >"$WORK/iperf-af.log" 2>&1 ||
		die "TCP from a to f, a container that never sent a frame, failed: $(tail -n 3 "$WORK/iperf-af.log")"
	cni n2 DEL id-f eth0 f 1.0.0 || die "DEL f"
	log "b attached again after n2's restart ($(log_grep n2 0 'attached again' | tail -n 1 | cut -d' ' -f3-)); a new container got $got"
}

item_6() {
	local v n=0 kind
	for v in 0.1.0 0.2.0 0.3.0 0.3.1 0.4.0 1.0.0 1.1.0; do
		n=$((n + 1))
		netns_add "$(ctr_ns "v$n")"
		cni n1 ADD "id-v$n" eth0 "v$n" "$v" || die "ADD $v: $(cat "$WORK/cni.out")"
		python3 - "$WORK/cni.out" "$v" <<'EOF' || die "ADD $v result: $(cat "$WORK/cni.out")"
import json, sys
r, v = json.load(open(sys.argv[1])), sys.argv[2]
assert r["cniVersion"] == v, r
if v in ("0.1.0", "0.2.0"):
    assert r["ip4"]["ip"].startswith("10.89.1."), r
    assert "ips" not in r, r
else:
    assert r["interfaces"][0]["name"] == "eth0", r
    assert r["interfaces"][0]["sandbox"].startswith("/var/run/netns/"), r
    ip = r["ips"][0]
    assert ip["address"].startswith("10.89.1.") and ip["gateway"] == "10.89.1.1", r
    assert ("version" in ip) == (v in ("0.3.0", "0.3.1", "0.4.0")), r
    assert r["routes"][0]["dst"] == "0.0.0.0/0", r
EOF
		if [ "$v" = 0.4.0 ] || [ "$v" = 1.0.0 ] || [ "$v" = 1.1.0 ]; then
			cni n1 CHECK "id-v$n" eth0 "v$n" "$v" || die "CHECK $v: $(cat "$WORK/cni.out")"
		elif cni n1 CHECK "id-v$n" eth0 "v$n" "$v"; then
			die "CHECK in $v (before 0.4.0) passed"
		fi
		echo "{\"cniVersion\": \"$v\"}" | env -i CNI_COMMAND=VERSION "$CNI" >"$WORK/cni.out" || die "VERSION $v"
		has "$(json_get "r['cniVersion'] == '$v' and '$v' in r['supportedVersions']")" True || die "VERSION $v: $(cat "$WORK/cni.out")"
		cni n1 DEL "id-v$n" eth0 "v$n" "$v" || die "DEL $v: $(cat "$WORK/cni.out")"
	done
	cni n1 STATUS "" "" "" 1.1.0 || die "STATUS: $(cat "$WORK/cni.out")"
	if cni n1 STATUS "" "" "" 1.0.0; then die "STATUS in 1.0.0 passed"; fi
	# GC with no valid attachment but a: everything else goes.
	netns_add "$(ctr_ns g)"
	cni n1 ADD id-g eth0 g 1.1.0 || die "ADD g"
	local conf
	conf=$(printf '{"cniVersion": "1.1.0", "name": "faraday", "type": "faraday-cni", "interface": "%s", "controlSocket": "%s", "cni.dev/valid-attachments": [{"containerID": "id-a", "ifname": "eth0"}]}' "$(if_of n1)" "$CTL_DIR/$(if_of n1).sock")
	echo "$conf" | env -i CNI_COMMAND=GC CNI_PATH=/usr/lib/cni "$CNI" >"$WORK/cni.out" || die "GC: $(cat "$WORK/cni.out")"
	in_ctr g ip link show eth0 >/dev/null 2>&1 && die "GC left g's eth0"
	cni n1 CHECK id-a eth0 a 1.1.0 || die "GC took a, which was valid: $(cat "$WORK/cni.out")"
	log "ADD/CHECK/DEL/VERSION in 0.1.0 .. 1.1.0, STATUS and GC in 1.1.0: each in its shape"
}

item_7() {
	# On the DPDK node when there is one: its lcores held the TAPs.
	local node=${DPDK_NODE:-n1} i links_before routes_before
	links_before=$(in_ns "$node" ip -o link show | wc -l)
	routes_before=$(in_ns "$node" ip route show | wc -l)
	for i in $(seq 1 20); do
		netns_add "$(ctr_ns "l$i")"
		cni "$node" ADD "id-l$i" eth0 "l$i" 1.0.0 || die "loop ADD $i: $(cat "$WORK/cni.out")"
		cni "$node" DEL "id-l$i" eth0 "l$i" 1.0.0 || die "loop DEL $i: $(cat "$WORK/cni.out")"
		ip netns del "$(ctr_ns "l$i")"
	done
	[ "$(in_ns "$node" ip -o link show | wc -l)" = "$links_before" ] || die "20 ADD/DEL left interfaces on $node: $(in_ns "$node" ip -o link show)"
	[ "$(in_ns "$node" ip route show | wc -l)" = "$routes_before" ] || die "20 ADD/DEL left routes on $node"
	local left
	left=$(python3 -c "import json; print(len(json.load(open('$WORK/$node/containers.json'))['attachments']))")
	[ "$left" = 1 ] || die "after the loop $node keeps $left allocations, expected 1: $(cat "$WORK/$node/containers.json")"
	ctr_ping a "$(addr_of b)" || die "a lost b during the loop"
	log "20 containers added and deleted: nothing left on $node (links $links_before, routes $routes_before, 1 allocation)"
}

# --- podman ---------------------------------------------------------------------

# pm ARGS...: podman with everything of its own under WORK/podman (podman_init).
pm() {
	CONTAINERS_CONF="$WORK/podman/containers.conf" podman --root "$WORK/podman/storage" \
		--runroot "$WORK/podman/run" --storage-driver vfs "$@"
}

# podman_init: the CNI backend, runc, cgroupfs (DESIGN.md's recipe),
# faraday-cni found in WORK/podman/cni-bin, one network per node (faraday-n1,
# faraday-n2) in WORK/podman/net.d, and an image made from busybox-static.
podman_init() {
	local d=$WORK/podman node a
	mkdir -p "$d/cni-bin" "$d/net.d" "$d/rootfs/bin"
	ln -sf "$CNI" "$d/cni-bin/faraday-cni"
	cat >"$d/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
[network]
network_backend = "cni"
cni_plugin_dirs = ["$d/cni-bin", "/usr/lib/cni"]
network_config_dir = "$d/net.d"
EOF
	for node in n1 n2; do
		printf '{"cniVersion": "1.0.0", "name": "faraday-%s", "plugins": [{"type": "faraday-cni", "interface": "%s", "controlSocket": "%s"}]}\n' \
			"$node" "$(if_of "$node")" "$CTL_DIR/$(if_of "$node").sock" >"$d/net.d/faraday-$node.conflist"
	done
	cp "$(command -v busybox)" "$d/rootfs/bin/busybox"
	for a in sh ping nc ip sleep cat echo; do ln -sf busybox "$d/rootfs/bin/$a"; done
	tar -C "$d/rootfs" -c . | pm import -q - localhost/faraday-box >/dev/null
}

# The containers podman runs live outside the suite's namespaces: removed
# first at teardown, with the mounts they hold under WORK.
suite_teardown() {
	if [ -f "$WORK/podman/containers.conf" ]; then pm rm -a -f -t 0 >/dev/null 2>&1; fi
}

# pm_addr NAME: the container's IPv4 address on eth0.
pm_addr() { pm exec "$1" ip -o -4 addr show dev eth0 | awk '{print $4}' | cut -d/ -f1; }
pm_ping() { pm exec "$1" ping -c 1 -W 1 "$2" >/dev/null 2>&1; }

item_8() {
	podman_init
	pm run -d --name pa --network faraday-n1 --cap-add NET_RAW localhost/faraday-box sleep 600 >/dev/null
	pm run -d --name pb --network faraday-n2 --cap-add NET_RAW localhost/faraday-box sleep 600 >/dev/null
	local a b links got dst i links_before routes_before
	a=$(pm_addr pa) b=$(pm_addr pb)
	log "podman: pa on n1 has $a, pb on n2 has $b"
	case "$a" in 10.89.1.*) ;; *) die "pa's address '$a' is not in n1's prefix 10.89.1.0/24" ;; esac
	case "$b" in 10.89.2.*) ;; *) die "pb's address '$b' is not in n2's prefix 10.89.2.0/24" ;; esac
	links=$(pm exec pa ip -o link show | awk -F': ' '{print $2}' | sort | tr '\n' ' ')
	[ "$links" = "eth0 lo " ] || die "pa has interfaces '$links', expected eth0 and lo only"
	wait_until 10 pm_ping pa "$b" || die "pa cannot ping pb ($b) through the mesh"
	pm exec -d pb sh -c 'echo through-the-mesh | nc -l -p 5301' >/dev/null
	sleep 0.5
	got=$(pm exec pa sh -c "nc -w 3 $b 5301 </dev/null" 2>&1) || true
	[ "$got" = through-the-mesh ] || die "TCP pa -> pb: got '$got'"
	for dst in "$(ul_of n1)" "$(ol_of n1)" "$UL_NET.$FARAD_IDX" "$(ul_of n2)"; do
		if pm_ping pa "$dst"; then die "pa reaches $dst outside the mesh"; fi
	done
	pm rm -f -t 0 pa >/dev/null
	if grep -q "\"$a\"" "$WORK/n1/containers.json"; then die "podman rm left pa's address $a allocated"; fi
	links_before=$(in_ns n1 ip -o link show | wc -l)
	routes_before=$(in_ns n1 ip route show | wc -l)
	for i in $(seq 1 20); do
		pm run -d --name "loop$i" --network faraday-n1 localhost/faraday-box sleep 600 >/dev/null ||
			die "podman run loop$i failed"
		pm rm -f -t 0 "loop$i" >/dev/null || die "podman rm loop$i failed"
	done
	[ "$(in_ns n1 ip -o link show | wc -l)" = "$links_before" ] || die "20 podman containers left interfaces on n1"
	[ "$(in_ns n1 ip route show | wc -l)" = "$routes_before" ] || die "20 podman containers left routes on n1"
	local left
	left=$(python3 -c "import json; print(len(json.load(open('$WORK/n1/containers.json'))['attachments']))")
	[ "$left" = 1 ] || die "after 20 podman containers n1 keeps $left allocations, expected 1 (a): $(cat "$WORK/n1/containers.json")"
	pm rm -f -t 0 pb >/dev/null
	log "ping and TCP pa -> pb, nothing outside the mesh, podman rm released $a, 20 containers left nothing"
}

run_item 1 "rkt's ADD on n1 and n2: addresses, routes, ping and TCP container to container" item_1
run_item 2 "a container reaches the mesh only" item_2
run_item 3 "DEL idempotent, CHECK after DEL, ADD of an existing name" item_3
run_item 4 "CHECK after the interface was deleted behind the plugin's back" item_4
run_item 5 "faradayd restarted: its container attached again, its address kept" item_5
run_item 6 "every spec version and command" item_6
run_item 7 "20 containers added and deleted leave nothing behind" item_7
run_item 8 "podman 4.3 (CNI backend): container to container through the mesh, and nothing else" item_8

e2e_summary

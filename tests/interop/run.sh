#!/usr/bin/env bash
# run.sh: every interop case for one implementation pair, or for all pairs,
# outside meson. Prints one line per case and a summary; exit 1 if any failed.
#
#   tests/interop/run.sh [FARADAYD]                    # IMPL_A/IMPL_B from env
#   tests/interop/run.sh --all-pairs [FARADAYD]        # the pairs meson runs
#   IMPL_A=wireguard-go IMPL_B=wireguard-go tests/interop/run.sh
#
# The cases are those in tests/interop/cases, the list meson runs too.
# Full output of a failed case is kept in /tmp/faraday-interop-run.*/.
set -uo pipefail
dir=$(cd "$(dirname "$0")" && pwd)
mapfile -t cases < <(awk '!/^[[:space:]]*(#|$)/ { print $1 }' "$dir/cases")

pairs=("${IMPL_A:-faradayd}:${IMPL_B:-wireguard-go}")
if [ "${1:-}" = --all-pairs ]; then
	all_pairs=1
	shift
fi
faradayd=${1:-${FARADAYD:-$dir/../../build/control/faradayd}}
if [ -n "${all_pairs:-}" ]; then
	pairs=(faradayd:faradayd faradayd:wireguard-go wireguard-go:wireguard-go)
	# faradayd on a DPDK underlay, when this faradayd was built with DPDK.
	if ! grep -q 'has no DPDK' <<<"$("$faradayd" standalone --help 2>/dev/null)"; then
		pairs+=(faradayd-dpdk:wireguard-go)
	fi
fi

out=$(mktemp -d /tmp/faraday-interop-run.XXXXXX)
failed=0
for pair in "${pairs[@]}"; do
	a=${pair%%:*} b=${pair#*:}
	echo "== A=$a B=$b"
	for c in "${cases[@]}"; do
		start=$SECONDS
		IMPL_A=$a IMPL_B=$b "$dir/$c.sh" "$faradayd" >"$out/$c-$a-$b.log" 2>&1
		rc=$?
		case $rc in
		0) verdict=PASS ;;
		77) verdict=SKIP ;;
		*) verdict=FAIL failed=$((failed + 1)) ;;
		esac
		rates=$(grep -o '[^ ].*Gbit/s' "$out/$c-$a-$b.log" | paste -sd ';' | sed 's/;/; /g')
		printf '   %-4s %-10s %3ss  %s\n' "$verdict" "$c" $((SECONDS - start)) "$rates"
		if [ "$verdict" = FAIL ]; then
			grep -m1 'FAIL \[' "$out/$c-$a-$b.log" | sed 's/^/        /'
			echo "        full output: $out/$c-$a-$b.log"
		fi
	done
done
[ "$failed" -eq 0 ] && rm -rf "$out"
echo "== $failed failed (${SECONDS}s)"
[ "$failed" -eq 0 ]

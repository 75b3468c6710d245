#!/bin/bash
# Remove what the spread backends' tests and .ci/engines.sh leave behind,
# and nothing else.
#
#   machines  docker/podman containers labelled spread-ci or named spread-*;
#             LXD instances with config user.spread-ci or named spread-*;
#             qemu processes booted from $SPREAD_CI_CACHE/qemu (by pid)
#   images    docker/podman spread-test/* and images labelled spread-ci;
#             LXD images aliased spread-* or with property spread-ci
#             (skipped with --keep-images; the rootfs/qemu caches under
#             /var/cache/spread-ci are kept unless --cache)
#   --daemons also stop dockerd, containerd and lxd (those started by
#             .ci/engines.sh) and remove what they leave behind: the docker0,
#             cni-podman0 and spreadbr0 bridges, docker's and CNI's iptables
#             chains and rules, LXD's nftables table, its dnsmasq, and the
#             FORWARD drop policy dockerd set.
#
# Usage: .ci/engines-cleanup.sh [--keep-images] [--cache] [--daemons]
set -u

CACHE=${SPREAD_CI_CACHE:-/var/cache/spread-ci}
LXD_BRIDGE=${SPREAD_LXD_BRIDGE:-spreadbr0}
keep_images=0 cache=0 daemons=0
for a in "$@"; do
	case "$a" in
	--keep-images) keep_images=1 ;;
	--cache) cache=1 ;;
	--daemons) daemons=1 ;;
	*) echo "usage: $0 [--keep-images] [--cache] [--daemons]" >&2; exit 2 ;;
	esac
done
say() { echo "cleanup: $*"; }

docker_up() { command -v docker >/dev/null && timeout 10 docker version >/dev/null 2>&1; }
podman_ok() { command -v podman >/dev/null && timeout 30 podman version >/dev/null 2>&1; }
lxd_up() { command -v lxc >/dev/null && timeout 10 lxc query /1.0 >/dev/null 2>&1; }

# ---------------------------------------------------------------- machines
for eng in docker podman; do
	if [ "$eng" = docker ]; then docker_up || continue; else podman_ok || continue; fi
	ids=$({
		$eng ps -aq --filter label=spread-ci
		$eng ps -a --format '{{.ID}} {{.Names}}' | awk '$2 ~ /^spread-/ {print $1}'
	} | sort -u)
	if [ -n "$ids" ]; then
		# shellcheck disable=SC2086
		$eng rm -f $ids >/dev/null && say "$eng: removed containers $(echo $ids)"
	fi
done
if lxd_up; then
	for n in $(lxc list --format csv -c n 2>/dev/null); do
		if [[ $n == spread-* ]] || [ -n "$(lxc config get "$n" user.spread-ci 2>/dev/null)" ]; then
			lxc delete -f "$n" && say "lxd: removed instance $n"
		fi
	done
fi
for d in /proc/[0-9]*; do
	pid=${d#/proc/}
	cmd=$({ tr '\0' ' ' <"$d/cmdline"; } 2>/dev/null) || continue
	case "$cmd" in
	qemu-system-*"$CACHE/qemu/"* | */qemu-system-*"$CACHE/qemu/"*)
		kill "$pid" 2>/dev/null && say "qemu: stopped pid $pid" ;;
	esac
done

# ---------------------------------------------------------------- images
if [ "$keep_images" = 0 ]; then
	for eng in docker podman; do
		if [ "$eng" = docker ]; then docker_up || continue; else podman_ok || continue; fi
		refs=$({
			$eng images --format '{{.Repository}}:{{.Tag}}' | grep -E '(^|/)spread-test/' || true
		} | sort -u)
		# shellcheck disable=SC2086
		[ -z "$refs" ] || { $eng rmi -f $refs >/dev/null 2>&1 && say "$eng: removed images $(echo $refs)"; }
		ids=$($eng images -q --filter label=spread-ci | sort -u)
		# shellcheck disable=SC2086
		[ -z "$ids" ] || { $eng rmi -f $ids >/dev/null 2>&1 && say "$eng: removed labelled images"; }
	done
	if lxd_up; then
		for fp in $(lxc image list --format csv -c f 2>/dev/null); do
			aliases=$(lxc image list "$fp" --format csv -c l 2>/dev/null)
			prop=$(lxc image get-property "$fp" spread-ci 2>/dev/null || true)
			if [[ $aliases == spread-* ]] || [ -n "$prop" ]; then
				lxc image delete "$fp" && say "lxd: removed image $fp ($aliases)"
			fi
		done
	fi
fi
if [ "$cache" = 1 ] && [ -d "$CACHE" ]; then
	rm -rf "$CACHE" && say "removed $CACHE"
fi

# ---------------------------------------------------------------- daemons
# Delete the iptables rules that reference a chain pattern, then the chains.
drop_chains() { # table, chain-regex
	local t=$1 re=$2 line
	iptables -t "$t" -S 2>/dev/null | grep -E "^-A .*($re)" | while read -r line; do
		# shellcheck disable=SC2086
		eval "iptables -t $t ${line/-A /-D }" 2>/dev/null || true
	done
	iptables -t "$t" -S 2>/dev/null | awk -v re="^($re)" '$1 == "-N" && $2 ~ re {print $2}' | while read -r c; do
		iptables -t "$t" -F "$c" 2>/dev/null
		iptables -t "$t" -X "$c" 2>/dev/null || true
	done
}
stop_pid() { # name, pid
	local n=$1 p=$2
	kill "$p" 2>/dev/null || return 0
	for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.2; done
	kill -0 "$p" 2>/dev/null && kill -9 "$p" 2>/dev/null
	say "stopped $n (pid $p)"
}
if [ "$daemons" = 1 ]; then
	if lxd_up; then
		timeout 60 lxd shutdown >/dev/null 2>&1 && say "stopped lxd"
	fi
	# LXD's dnsmasq for our bridge, if it outlived lxd.
	for p in $(pgrep -x dnsmasq); do
		grep -qa -- "--interface=$LXD_BRIDGE" "/proc/$p/cmdline" 2>/dev/null && stop_pid "lxd dnsmasq" "$p"
	done
	[ -f /run/docker.pid ] && stop_pid dockerd "$(cat /run/docker.pid)"
	[ -f /run/docker.pid ] && ! kill -0 "$(cat /run/docker.pid)" 2>/dev/null && rm -f /run/docker.pid
	for p in $(pgrep -x containerd); do
		# only the one started by engines.sh (our log is its stdout)
		[ "$(readlink "/proc/$p/fd/1")" = /var/log/spread-ci/containerd.log ] && stop_pid containerd "$p"
	done
	for br in docker0 cni-podman0 "$LXD_BRIDGE"; do
		ip link show "$br" >/dev/null 2>&1 && ip link delete "$br" && say "removed bridge $br"
	done
	drop_chains nat 'DOCKER|CNI-|docker0'
	drop_chains filter 'DOCKER|CNI-|docker0'
	iptables -t nat -S POSTROUTING 2>/dev/null | grep -E '(10\.88\.|172\.17\.).*MASQUERADE' | while read -r line; do
		eval "iptables -t nat ${line/-A /-D }" 2>/dev/null || true
	done
	if iptables -S FORWARD 2>/dev/null | grep -q '^-P FORWARD DROP' && [ "$(iptables -S FORWARD | wc -l)" -le 1 ]; then
		iptables -P FORWARD ACCEPT && say "FORWARD policy back to ACCEPT"
	fi
	nft list table inet lxd >/dev/null 2>&1 && nft delete table inet lxd && say "removed nftables table inet lxd"
	rm -rf /var/lib/cni/networks/podman
fi
exit 0

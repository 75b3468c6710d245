#!/bin/bash
# Install and start the container/VM engines the backends are tested against:
# docker, podman, lxd and qemu. Idempotent and fast on a second run: it
# installs only missing packages and starts only daemons that do not answer.
#
# There is no systemd here and apt never starts services, so daemons are
# started by hand, detached (setsid), logging to /var/log/spread-ci/:
#   containerd  -> containerd.log
#   dockerd     -> dockerd.log     (--containerd=/run/containerd/containerd.sock)
#   lxd         -> lxd.log         (lxd --group lxd; dir pool "default",
#                                   bridge spreadbr0 on $SPREAD_LXD_SUBNET)
# podman and qemu need no daemon.
#
# Prints one line per engine, "ENGINE: ok (...)" or "ENGINE: FAIL reason",
# and writes the same lines to /var/log/spread-ci/status.
# Exit status: 0 when every requested engine is ok, 1 otherwise.
#
# Usage: .ci/engines.sh [--images] [--smoke] [docker] [podman] [lxd] [qemu]
#   (no engine = all four)
#   --images  also build/import the test images (test/infra/debian-image.sh,
#             and test/infra/qemu-image.sh for qemu)
#   --smoke   --images, then start one machine per engine, ssh in as root
#             with a password, print timings and remove it
#
# Restart a daemon: kill its pid (see `pgrep -a dockerd` etc.) and run this
# script again. Undo: .ci/engines-cleanup.sh. See docs/dev/engines.md.
set -u

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
LOG=/var/log/spread-ci
STATE=/var/lib/spread-ci
LXD_BRIDGE=${SPREAD_LXD_BRIDGE:-spreadbr0}
LXD_SUBNET=${SPREAD_LXD_SUBNET:-10.213.77.1/24}
# Podman on this kernel (cgroup v1/v2 hybrid, no CAP_SYS_RESOURCE): see docs.
PODMAN_FLAGS=(--runtime runc --ulimit nofile=1024:1024 --ulimit nproc=4096:4096)
export DEBIAN_FRONTEND=noninteractive

images=0 smoke=0
engines=()
for a in "$@"; do
	case "$a" in
	--images) images=1 ;;
	--smoke) images=1 smoke=1 ;;
	docker | podman | lxd | qemu) engines+=("$a") ;;
	*) echo "usage: $0 [--images] [--smoke] [docker] [podman] [lxd] [qemu]" >&2; exit 2 ;;
	esac
done
[ ${#engines[@]} -gt 0 ] || engines=(docker podman lxd qemu)
want() { local e; for e in "${engines[@]}"; do [ "$e" = "$1" ] && return 0; done; return 1; }

mkdir -p "$LOG" "$STATE"
: >"$LOG/status"
declare -A result
report() { # engine, line
	result[$1]=$2
	echo "$1: $2" | tee -a "$LOG/status"
}
note() { echo "engines: $*" >&2; }
now() { date +%s.%N; }
since() { printf '%.1f' "$(echo "$(now) - $1" | bc)"; }

# ---------------------------------------------------------------- packages
pkgs=(sshpass debootstrap iptables nftables bc python3)
want docker && pkgs+=(docker.io containerd runc)
want podman && pkgs+=(podman runc crun conmon slirp4netns uidmap containernetworking-plugins
	golang-github-containernetworking-plugin-dnsname)
want lxd && pkgs+=(lxd lxd-client dnsmasq-base squashfs-tools xz-utils)
want qemu && pkgs+=(qemu-system-x86 qemu-utils e2fsprogs fdisk extlinux syslinux-common)
missing=()
for p in "${pkgs[@]}"; do
	st=$(dpkg-query -W -f '${db:Status-Status}' "$p" 2>/dev/null || true)
	[ "$st" = installed ] || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	t0=$(now)
	note "installing ${missing[*]}"
	if ! apt-get install -y --no-install-recommends "${missing[@]}" >"$LOG/apt.log" 2>&1; then
		apt-get update >>"$LOG/apt.log" 2>&1
		apt-get install -y --no-install-recommends "${missing[@]}" >>"$LOG/apt.log" 2>&1 ||
			note "apt-get install failed, see $LOG/apt.log"
	fi
	note "packages installed in $(since "$t0")s"
fi

# ------------------------------------------------ stale state after a reboot
# /run is on the root disk here (not a tmpfs): after a reboot it still holds
# the previous boot's pid files, sockets and podman state.
boot_id=$(cat /proc/sys/kernel/random/boot_id)
if [ -f "$STATE/boot_id" ] && [ "$(cat "$STATE/boot_id")" != "$boot_id" ]; then
	note "new boot: removing the previous boot's engine runtime state from /run"
	pgrep -x dockerd >/dev/null || rm -f /run/docker.pid /run/docker.sock
	pgrep -x containerd >/dev/null || rm -rf /run/containerd
	# Missing /run/libpod/alive makes podman refresh its container states.
	rm -rf /run/libpod /run/containers /run/runc /run/crun /run/netns/cni-* /var/lib/cni/networks/podman
fi
echo "$boot_id" >"$STATE/boot_id"

start_detached() { # logname, command...
	local name=$1
	shift
	echo "=== $(date -u +%FT%TZ) starting: $*" >>"$LOG/$name.log"
	setsid nohup "$@" >>"$LOG/$name.log" 2>&1 </dev/null &
}
wait_for() { # seconds, command...
	local n=$(($1 * 5))
	shift
	while [ $n -gt 0 ]; do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.2
		n=$((n - 1))
	done
	return 1
}

# ---------------------------------------------------------------- docker
# /usr/local/bin/docker (a static 28.x client shipped with this machine image)
# may shadow /usr/bin/docker from docker.io 20.10; both talk to dockerd 20.10
# (API 1.41).
docker_up() { timeout 10 docker version --format '{{.Server.Version}}'; }
start_docker() {
	command -v dockerd >/dev/null || { report docker "FAIL docker.io not installed (see $LOG/apt.log)"; return; }
	if pgrep -x dockerd >/dev/null && docker_up >/dev/null 2>&1; then
		report docker "ok (dockerd $(docker_up) already running)"
		return
	fi
	local t0
	t0=$(now)
	# (ctr waits ~5 s for a socket nobody listens on: ask pgrep first)
	if ! pgrep -x containerd >/dev/null || ! timeout 5 ctr --address /run/containerd/containerd.sock version >/dev/null 2>&1; then
		start_detached containerd containerd
		wait_for 30 ctr --address /run/containerd/containerd.sock version ||
			{ report docker "FAIL containerd does not answer, see $LOG/containerd.log"; return; }
	fi
	if [ -f /run/docker.pid ] && ! kill -0 "$(cat /run/docker.pid)" 2>/dev/null; then rm -f /run/docker.pid; fi
	start_detached dockerd dockerd --containerd=/run/containerd/containerd.sock
	if wait_for 60 docker_up; then
		report docker "ok (dockerd $(docker_up) started in $(since "$t0")s)"
	else
		report docker "FAIL dockerd does not answer, see $LOG/dockerd.log: $(tail -n 1 "$LOG/dockerd.log")"
	fi
}

# ---------------------------------------------------------------- podman
start_podman() {
	command -v podman >/dev/null || { report podman "FAIL podman not installed (see $LOG/apt.log)"; return; }
	command -v runc >/dev/null || { report podman "FAIL runc not installed (crun cannot run on hybrid cgroups here)"; return; }
	local v
	if v=$(timeout 30 podman version --format '{{.Client.Version}}' 2>&1); then
		report podman "ok (podman $v, no daemon; run with ${PODMAN_FLAGS[*]})"
	else
		report podman "FAIL podman version: $v"
	fi
}

# ---------------------------------------------------------------- lxd
lxd_up() { timeout 10 lxc query /1.0 >/dev/null; }
start_lxd() {
	command -v lxd >/dev/null || { report lxd "FAIL lxd not installed (see $LOG/apt.log)"; return; }
	local t0 started=""
	t0=$(now)
	if ! lxd_up 2>/dev/null; then
		getent group lxd >/dev/null || groupadd --system lxd
		start_detached lxd lxd --group lxd --logfile="$LOG/lxd.log"
		timeout 60 lxd waitready >/dev/null 2>&1 ||
			{ report lxd "FAIL lxd does not answer, see $LOG/lxd.log"; return; }
		started=" started in $(since "$t0")s"
	fi
	# Storage pool, bridge and default profile (each only when missing).
	local err=""
	lxc storage show default >/dev/null 2>&1 ||
		lxc storage create default dir >/dev/null 2>>"$LOG/lxd.log" || err="storage pool"
	lxc network show "$LXD_BRIDGE" >/dev/null 2>&1 ||
		lxc network create "$LXD_BRIDGE" ipv4.address="$LXD_SUBNET" ipv4.nat=true ipv6.address=none \
			>/dev/null 2>>"$LOG/lxd.log" || err="$err bridge $LXD_BRIDGE"
	lxc profile device show default 2>/dev/null | grep -q '^root:' ||
		lxc profile device add default root disk path=/ pool=default >/dev/null 2>>"$LOG/lxd.log" ||
		err="$err profile root"
	lxc profile device show default 2>/dev/null | grep -q '^eth0:' ||
		lxc profile device add default eth0 nic network="$LXD_BRIDGE" name=eth0 >/dev/null 2>>"$LOG/lxd.log" ||
		err="$err profile eth0"
	[ -z "$err" ] || { report lxd "FAIL could not create:$err (see $LOG/lxd.log)"; return; }
	report lxd "ok (lxd $(lxd --version)${started:- already running}; containers only, bridge $LXD_BRIDGE $(lxc network get "$LXD_BRIDGE" ipv4.address))"
}

# ---------------------------------------------------------------- qemu
start_qemu() {
	command -v qemu-system-x86_64 >/dev/null || { report qemu "FAIL qemu-system-x86 not installed (see $LOG/apt.log)"; return; }
	local v kvm
	v=$(qemu-system-x86_64 --version | head -n1 | awk '{print $4}')
	if [ ! -e /dev/kvm ]; then
		kvm="no /dev/kvm"
	elif [ -d /sys/module/kvm_pvm ] && [ ! -d /sys/module/kvm_intel ] && [ ! -d /sys/module/kvm_amd ]; then
		kvm="/dev/kvm is kvm_pvm: stock guest kernels hang, use -accel tcg"
	else
		kvm="/dev/kvm present"
	fi
	report qemu "ok (qemu $v; $kvm)"
}

for e in docker podman lxd qemu; do
	want "$e" && "start_$e"
done

# dockerd sets the iptables FORWARD policy to drop, which cuts LXD containers
# off from anything beyond the host (the Debian archive, say); let the LXD
# bridge through docker's DOCKER-USER chain. Whatever order they started in.
if ip link show "$LXD_BRIDGE" >/dev/null 2>&1 && iptables -n -L DOCKER-USER >/dev/null 2>&1; then
	iptables -C DOCKER-USER -i "$LXD_BRIDGE" -j ACCEPT 2>/dev/null ||
		iptables -I DOCKER-USER -i "$LXD_BRIDGE" -j ACCEPT
	iptables -C DOCKER-USER -o "$LXD_BRIDGE" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT 2>/dev/null ||
		iptables -I DOCKER-USER -o "$LXD_BRIDGE" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
fi

# ---------------------------------------------------------------- images
if [ "$images" = 1 ]; then
	img_engines=()
	for e in docker podman lxd; do
		want "$e" && [[ ${result[$e]:-} == ok* ]] && img_engines+=("$e")
	done
	t0=$(now)
	if [ ${#img_engines[@]} -gt 0 ]; then
		"$ROOT/test/infra/debian-image.sh" "${img_engines[@]}" || note "debian-image.sh failed"
	fi
	if want qemu && [[ ${result[qemu]:-} == ok* ]]; then
		"$ROOT/test/infra/qemu-image.sh" || note "qemu-image.sh failed"
	fi
	note "images ready in $(since "$t0")s"
fi

# ---------------------------------------------------------------- smoke
SSH_OPTS=(-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o ConnectTimeout=3)
ssh_until() { # seconds, password, host, port
	local n=$(($1 * 5))
	while [ $n -gt 0 ]; do
		out=$(sshpass -p "$2" ssh "${SSH_OPTS[@]}" -p "$4" "root@$3" \
			'. /etc/os-release; echo "$PRETTY_NAME, hostname $(hostname)"' 2>/dev/null) && { echo "$out"; return 0; }
		sleep 0.2
		n=$((n - 1))
	done
	return 1
}
smoke_fail=0
smoke() { # engine, line
	echo "smoke $1: $2" | tee -a "$LOG/status"
	[[ $2 == ok* ]] || smoke_fail=1
}
smoke_container() { # docker|podman
	local eng=$1 name=spread-ci-smoke-$1 pw=pw$RANDOM$RANDOM t0 port out flags=()
	[ "$eng" = podman ] && flags=("${PODMAN_FLAGS[@]}")
	$eng rm -f "$name" >/dev/null 2>&1
	t0=$(now)
	if ! $eng run -d --name "$name" --label spread-ci=1 --hostname "$name" "${flags[@]}" \
		-p 127.0.0.1::22 -e SPREAD_ROOT_PASSWORD="$pw" spread-test/debian:12 >/dev/null 2>"$LOG/smoke-$eng.err"; then
		smoke "$eng" "FAIL run: $(tail -n 1 "$LOG/smoke-$eng.err")"
		return
	fi
	port=$($eng port "$name" 22/tcp | head -n1 | sed 's/.*://')
	if out=$(ssh_until 30 "$pw" 127.0.0.1 "$port"); then
		smoke "$eng" "ok ssh root@127.0.0.1:$port after $(since "$t0")s: $out"
	else
		smoke "$eng" "FAIL no ssh on 127.0.0.1:$port: $($eng logs "$name" 2>&1 | tail -n 1)"
	fi
	$eng rm -f "$name" >/dev/null 2>&1
}
smoke_lxd() {
	local name=spread-ci-smoke-lxd pw=pw$RANDOM$RANDOM t0 ip="" out port
	lxc delete -f "$name" >/dev/null 2>&1
	t0=$(now)
	if ! lxc launch -q spread-debian-12 "$name" -c user.spread-ci=1 2>"$LOG/smoke-lxd.err"; then
		smoke lxd "FAIL launch: $(tail -n 1 "$LOG/smoke-lxd.err")"
		return
	fi
	for _ in $(seq 150); do
		ip=$(lxc query "/1.0/instances/$name/state" 2>/dev/null | python3 -c '
import json, sys
net = json.load(sys.stdin).get("network") or {}
print(" ".join(a["address"] for n, v in net.items() if n != "lo"
               for a in v["addresses"] if a["family"] == "inet" and a["scope"] == "global"))' | awk '{print $1}')
		[ -n "$ip" ] && break
		sleep 0.2
	done
	[ -n "$ip" ] || { smoke lxd "FAIL no IPv4 address after 30s"; lxc delete -f "$name" >/dev/null 2>&1; return; }
	lxc exec "$name" -- sh -c "echo 'root:$pw' | chpasswd"
	if out=$(ssh_until 30 "$pw" "$ip" 22); then
		smoke lxd "ok ssh root@$ip:22 after $(since "$t0")s: $out"
	else
		smoke lxd "FAIL no ssh on $ip:22"
	fi
	# The same machine on 127.0.0.1 through a proxy device.
	port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
	lxc config device add "$name" ssh proxy "listen=tcp:127.0.0.1:$port" connect=tcp:127.0.0.1:22 >/dev/null
	if out=$(ssh_until 10 "$pw" 127.0.0.1 "$port"); then
		smoke lxd "ok ssh root@127.0.0.1:$port through a proxy device"
	else
		smoke lxd "FAIL no ssh through the proxy device on 127.0.0.1:$port"
	fi
	lxc delete -f "$name" >/dev/null 2>&1
}
if [ "$smoke" = 1 ]; then
	for e in docker podman; do
		want "$e" && [[ ${result[$e]:-} == ok* ]] && smoke_container "$e"
	done
	want lxd && [[ ${result[lxd]:-} == ok* ]] && smoke_lxd
	if want qemu && [[ ${result[qemu]:-} == ok* ]]; then
		if out=$("$ROOT/test/infra/qemu-image.sh" --check 2>&1); then
			smoke qemu "ok $(echo "$out" | grep -E 'check:|bookworm' | tr '\n' ' ')"
		else
			smoke qemu "FAIL $(echo "$out" | tail -n 3 | tr '\n' ' ')"
		fi
	fi
fi

rc=0
for e in "${engines[@]}"; do [[ ${result[$e]:-} == ok* ]] || rc=1; done
[ "$smoke_fail" = 0 ] || rc=1
exit $rc

#!/bin/bash
# Build a small Debian 12 (bookworm) root filesystem with debootstrap and
# import it into the local container engines as spread test images:
#
#   docker : spread-test/debian:12
#   podman : spread-test/debian:12   (podman lists it as localhost/spread-test/debian:12)
#   lxd    : image alias spread-debian-12
#
# The rootfs tarball is cached outside the repository and reused:
#   $SPREAD_CI_CACHE/debian-12-rootfs.tar        (default /var/cache/spread-ci)
#   $SPREAD_CI_CACHE/debian-12-lxd-meta.tar.gz
#
# What is in the image (see docs/dev/engines.md):
#   - minbase + openssh-server, systemd-sysv, udev, iproute2, procps, psmisc, sudo, dbus
#   - /etc/ssh/sshd_config.d/spread.conf: PermitRootLogin yes, PasswordAuthentication yes
#   - NO ssh host keys (each machine generates its own) and a locked root password:
#     the backend sets it at allocation time (echo root:PW | chpasswd)
#   - /usr/local/sbin/spread-sshd: ssh-keygen -A, mkdir /run/sshd, optional
#     password from $SPREAD_ROOT_PASSWORD, exec /usr/sbin/sshd -D -e
#     (this is the docker/podman image CMD)
#   - systemd-networkd with DHCP on every ethernet link (for LXD/qemu boots,
#     no assumption on the interface name); ssh.service generates host keys.
#
# Usage: test/infra/debian-image.sh [--rebuild] [rootfs] [docker] [podman] [lxd]
#        (no argument = every engine whose daemon answers; "rootfs" = only the tarball)
# Exit status: 0 when the rootfs exists and every requested import succeeded.
set -euo pipefail

CACHE=${SPREAD_CI_CACHE:-/var/cache/spread-ci}
SUITE=bookworm
ROOTFS_TAR=$CACHE/debian-12-rootfs.tar
LXD_META=$CACHE/debian-12-lxd-meta.tar.gz
IMAGE=spread-test/debian:12
LXD_ALIAS=spread-debian-12
LABEL=spread-ci

log() { echo "debian-image: $*" >&2; }

rebuild=0
engines=()
for a in "$@"; do
	case "$a" in
	--rebuild) rebuild=1 ;;
	docker | podman | lxd) engines+=("$a") ;;
	rootfs) engines+=(none) ;; # build/reuse the tarball only
	*) echo "usage: $0 [--rebuild] [rootfs] [docker] [podman] [lxd]" >&2; exit 2 ;;
	esac
done

# The Debian mirror this machine uses (first non-security "debian" URI in the
# apt sources), falling back to deb.debian.org.
debian_mirror() {
	local m=""
	m=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null |
		grep -v '^\s*#' | grep -oE '(https?://[^ ]+)' | grep -E '/debian/?$' | grep -v security | head -n1 || true)
	echo "${SPREAD_CI_MIRROR:-${m:-http://deb.debian.org/debian}}"
}

build_rootfs() {
	command -v debootstrap >/dev/null || { DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends debootstrap >&2; }
	local mirror dir t0
	mirror=$(debian_mirror)
	mkdir -p "$CACHE"
	dir=$(mktemp -d "$CACHE/rootfs.XXXXXX")
	trap 'rm -rf "$dir"' EXIT
	t0=$(date +%s)
	log "debootstrap $SUITE from $mirror into $dir"
	debootstrap --variant=minbase \
		--include=openssh-server,systemd-sysv,udev,iproute2,procps,psmisc,sudo,dbus \
		"$SUITE" "$dir" "$mirror" >"$CACHE/debootstrap.log" 2>&1 ||
		{ tail -n 30 "$CACHE/debootstrap.log" >&2; exit 1; }

	# apt inside the image uses the same mirror.
	cat >"$dir/etc/apt/sources.list" <<EOF
deb $mirror $SUITE main
EOF

	# sshd: root login with a password (set by the backend), no baked host keys.
	mkdir -p "$dir/etc/ssh/sshd_config.d" "$dir/run/sshd"
	cat >"$dir/etc/ssh/sshd_config.d/spread.conf" <<'EOF'
# spread test image: root logs in with the password set at allocation time.
PermitRootLogin yes
PasswordAuthentication yes
UseDNS no
MaxStartups 64:30:128
EOF
	rm -f "$dir"/etc/ssh/ssh_host_*

	# Containers without an init (docker, podman) run this as their command.
	mkdir -p "$dir/usr/local/sbin"
	cat >"$dir/usr/local/sbin/spread-sshd" <<'EOF'
#!/bin/sh
# Start sshd in the foreground for spread (containers without an init).
# SPREAD_ROOT_PASSWORD, when set, becomes root's password.
set -e
ssh-keygen -A >/dev/null
mkdir -p /run/sshd
chmod 0755 /run/sshd
if [ -n "${SPREAD_ROOT_PASSWORD:-}" ]; then
	echo "root:$SPREAD_ROOT_PASSWORD" | chpasswd
fi
exec /usr/sbin/sshd -D -e "$@"
EOF
	chmod 0755 "$dir/usr/local/sbin/spread-sshd"

	# Booted with systemd (LXD, qemu): generate host keys before sshd starts.
	mkdir -p "$dir/etc/systemd/system/ssh.service.d"
	cat >"$dir/etc/systemd/system/ssh.service.d/spread-hostkeys.conf" <<'EOF'
[Service]
ExecStartPre=
ExecStartPre=/usr/bin/ssh-keygen -A
ExecStartPre=/usr/sbin/sshd -t
EOF
	# DHCP on every ethernet link, whatever its name. systemd-networkd leaves
	# links "pending" until udev has seen them, hence udev in the package list
	# (it runs fine in an unprivileged LXD container).
	mkdir -p "$dir/etc/systemd/network"
	cat >"$dir/etc/systemd/network/80-spread-dhcp.network" <<'EOF'
[Match]
Type=ether

[Network]
DHCP=yes
EOF
	chroot "$dir" systemctl enable systemd-networkd.service >/dev/null 2>&1 || true
	# Units that make no sense on a short-lived test machine.
	for u in systemd-networkd-wait-online.service apt-daily.timer apt-daily-upgrade.timer \
		e2scrub_all.timer e2scrub_reap.service fstrim.timer; do
		chroot "$dir" systemctl mask "$u" >/dev/null 2>&1 || true
	done

	# Root password is locked until the backend sets one.
	chroot "$dir" usermod -p '*' root
	echo "localhost" >"$dir/etc/hostname"
	rm -f "$dir/etc/machine-id" "$dir/var/lib/dbus/machine-id"
	: >"$dir/etc/machine-id"

	# Keep it small.
	rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/* \
		"$dir"/usr/share/doc/* "$dir"/usr/share/man/* "$dir"/usr/share/info/* \
		"$dir"/usr/share/locale/* "$dir"/var/log/*.log "$dir"/tmp/* 2>/dev/null || true

	# mktemp -d made the top directory 0700: it becomes the image's "/".
	chmod 0755 "$dir"
	tar --numeric-owner -C "$dir" -cf "$ROOTFS_TAR.tmp" .
	mv "$ROOTFS_TAR.tmp" "$ROOTFS_TAR"
	rm -rf "$dir"
	trap - EXIT
	log "rootfs $ROOTFS_TAR ($(du -h "$ROOTFS_TAR" | cut -f1)) built in $(($(date +%s) - t0))s"
}

# LXD split-image metadata: metadata.yaml plus templates for the hostname.
# The properties let Go spread's lookup of a cached image find it for
# "image: debian-12" (it matches each dash-separated part, plus the Debian
# architecture, against os/label/release/version/architecture/aliases, and
# wants remote=images for an imported image).
build_lxd_meta() {
	local d
	d=$(mktemp -d)
	mkdir -p "$d/templates"
	cat >"$d/metadata.yaml" <<EOF
architecture: x86_64
creation_date: $(date +%s)
properties:
  architecture: amd64
  description: Debian 12 bookworm minbase + openssh-server (spread test image)
  os: debian
  release: bookworm
  version: "12"
  variant: spread
  remote: images
  aliases: debian/12,debian/bookworm,spread-debian-12
templates:
  /etc/hostname:
    when: [create, copy, rename]
    template: hostname.tpl
  /etc/hosts:
    when: [create, copy, rename]
    template: hosts.tpl
EOF
	echo '{{ container.name }}' >"$d/templates/hostname.tpl"
	cat >"$d/templates/hosts.tpl" <<'EOF'
127.0.0.1 localhost
127.0.1.1 {{ container.name }}
::1 localhost ip6-localhost ip6-loopback
EOF
	tar -C "$d" -czf "$LXD_META" metadata.yaml templates
	rm -rf "$d"
}

answers() {
	case "$1" in
	docker) timeout 10 docker version >/dev/null 2>&1 ;;
	podman) timeout 20 podman version >/dev/null 2>&1 ;;
	lxd) timeout 10 lxc info >/dev/null 2>&1 ;;
	esac
}

# Import only when the image is missing or older than the rootfs tarball.
stamp() { stat -c %Y "$ROOTFS_TAR"; }

import_docker() {
	local want have
	want=$(stamp)
	have=$(docker image inspect -f '{{index .Config.Labels "spread-ci.rootfs"}}' "$IMAGE" 2>/dev/null || true)
	if [ "$have" = "$want" ]; then log "docker: $IMAGE up to date"; return; fi
	local old_id
	old_id=$(docker image inspect -f '{{.Id}}' "$IMAGE" 2>/dev/null || true)
	docker import \
		--change "LABEL $LABEL=1 $LABEL.rootfs=$want" \
		--change 'CMD ["/usr/local/sbin/spread-sshd"]' \
		"$ROOTFS_TAR" "$IMAGE" >/dev/null
	# The previous import is left untagged: remove it.
	[ -z "$old_id" ] || docker rmi "$old_id" >/dev/null 2>&1 || true
	log "docker: imported $IMAGE"
}

import_podman() {
	local want have
	want=$(stamp)
	have=$(podman image inspect -f '{{index .Labels "spread-ci.rootfs"}}' "$IMAGE" 2>/dev/null || true)
	if [ "$have" = "$want" ]; then log "podman: $IMAGE up to date"; return; fi
	local old_id
	old_id=$(podman image inspect -f '{{.Id}}' "$IMAGE" 2>/dev/null || true)
	podman import -q \
		--change "LABEL $LABEL=1" --change "LABEL $LABEL.rootfs=$want" \
		--change 'CMD ["/usr/local/sbin/spread-sshd"]' \
		"$ROOTFS_TAR" "$IMAGE" >/dev/null
	# The previous import is left untagged: remove it.
	[ -z "$old_id" ] || podman rmi "$old_id" >/dev/null 2>&1 || true
	log "podman: imported $IMAGE"
}

import_lxd() {
	local want have
	want=$(stamp)
	have=$(lxc image get-property "$LXD_ALIAS" spread-ci.rootfs 2>/dev/null || true)
	if [ "$have" = "$want" ]; then log "lxd: $LXD_ALIAS up to date"; return; fi
	build_lxd_meta
	lxc image delete "$LXD_ALIAS" >/dev/null 2>&1 || true
	lxc image import "$LXD_META" "$ROOTFS_TAR" --alias "$LXD_ALIAS" >/dev/null
	lxc image set-property "$LXD_ALIAS" spread-ci.rootfs "$want"
	lxc image set-property "$LXD_ALIAS" spread-ci 1
	log "lxd: imported $LXD_ALIAS"
}

if [ "$rebuild" = 1 ] || [ ! -s "$ROOTFS_TAR" ]; then
	build_rootfs
else
	log "reusing $ROOTFS_TAR"
fi

explicit=${#engines[@]}
[ "$explicit" -gt 0 ] || engines=(docker podman lxd)
rc=0
for e in "${engines[@]}"; do
	[ "$e" != none ] || continue
	if ! command -v "${e/lxd/lxc}" >/dev/null || ! answers "$e"; then
		if [ "$explicit" -gt 0 ]; then log "$e: daemon does not answer"; rc=1; else log "$e: skipped (not running)"; fi
		continue
	fi
	"import_$e" || { log "$e: import failed"; rc=1; }
done
exit $rc

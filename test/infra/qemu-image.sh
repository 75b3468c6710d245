#!/bin/bash
# Build a bootable Debian 12 disk image for the qemu backend from the cached
# rootfs of test/infra/debian-image.sh, plus the Debian kernel (linux-image-amd64)
# and an initramfs. Everything comes from Debian's archive.
#
# Outputs (cached outside the repository, reused when present):
#   $SPREAD_CI_CACHE/qemu/debian-12.qcow2   disk: MBR, one ext4 partition
#                                            (label spread-root), extlinux
#   $SPREAD_CI_CACHE/qemu/vmlinuz           kernel, for a direct -kernel boot
#   $SPREAD_CI_CACHE/qemu/initrd.img        initramfs, for a direct -kernel boot
#   (default SPREAD_CI_CACHE=/var/cache/spread-ci)
#
# Root's password is set at boot by spread-rootpw.service, before sshd starts,
# from (first found):
#   - the kernel command line:  spread.rootpw=PASSWORD    (direct -kernel boot)
#   - qemu fw_cfg:              -fw_cfg name=opt/spread/rootpw,string=PASSWORD
#                               (works for the disk boot too; "," must be doubled)
# Without either, root stays locked (no login).
#
# Boot (software emulation; /dev/kvm here is PVM and cannot run a stock kernel):
#   qemu-system-x86_64 -accel tcg -m 1024 -smp 2 -nographic -snapshot \
#     -drive file=$CACHE/qemu/debian-12.qcow2,if=virtio,format=qcow2 \
#     -nic user,model=virtio-net-pci,hostfwd=tcp:127.0.0.1:PORT-:22 \
#     -fw_cfg name=opt/spread/rootpw,string=PASSWORD
# or add: -kernel $CACHE/qemu/vmlinuz -initrd $CACHE/qemu/initrd.img \
#         -append "root=LABEL=spread-root ro console=ttyS0 fsck.mode=skip spread.rootpw=PASSWORD"
#
# Usage: test/infra/qemu-image.sh [--rebuild] [--check]
#   --check  boot the image once under TCG and ssh into it (prints timings)
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
CACHE=${SPREAD_CI_CACHE:-/var/cache/spread-ci}
OUT=$CACHE/qemu
ROOTFS_TAR=$CACHE/debian-12-rootfs.tar
DISK=$OUT/debian-12.qcow2
DISK_SIZE=${SPREAD_QEMU_DISK_SIZE:-4G}
LABEL=spread-root
CMDLINE="root=LABEL=$LABEL ro console=ttyS0 fsck.mode=skip quiet"

log() { echo "qemu-image: $*" >&2; }

rebuild=0 check=0
for a in "$@"; do
	case "$a" in
	--rebuild) rebuild=1 ;;
	--check) check=1 ;;
	*) echo "usage: $0 [--rebuild] [--check]" >&2; exit 2 ;;
	esac
done

need_pkgs=()
for p in qemu-utils:qemu-img e2fsprogs:mkfs.ext4 fdisk:sfdisk extlinux:extlinux syslinux-common: qemu-system-x86:qemu-system-x86_64; do
	pkg=${p%%:*} bin=${p#*:}
	if [ -n "$bin" ]; then command -v "$bin" >/dev/null || need_pkgs+=("$pkg"); else dpkg -s "$pkg" >/dev/null 2>&1 || need_pkgs+=("$pkg"); fi
done
if [ ${#need_pkgs[@]} -gt 0 ]; then
	log "installing ${need_pkgs[*]}"
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need_pkgs[@]}" >/dev/null
fi

build() {
	local t0 dir mnt raw part_img
	t0=$(date +%s)
	[ -s "$ROOTFS_TAR" ] || "$HERE/debian-image.sh" rootfs
	mkdir -p "$OUT"
	dir=$(mktemp -d "$OUT/root.XXXXXX")
	mnt=$(mktemp -d "$OUT/mnt.XXXXXX")
	raw=$OUT/disk.raw.tmp
	part_img=$OUT/part.ext4.tmp
	cleanup() {
		for m in "$dir/dev/pts" "$dir/dev" "$dir/proc" "$dir/sys" "$mnt"; do
			mountpoint -q "$m" 2>/dev/null && umount -l "$m" || true
		done
		rm -rf "$dir" "$mnt" "$raw" "$part_img"
	}
	trap cleanup EXIT

	tar -C "$dir" -xf "$ROOTFS_TAR"
	chmod 0755 "$dir"

	# Kernel and initramfs, installed inside the image with its own apt.
	mount -t proc proc "$dir/proc"
	mount --bind /sys "$dir/sys"
	mount --bind /dev "$dir/dev"
	mount --bind /dev/pts "$dir/dev/pts"
	cp /etc/resolv.conf "$dir/etc/resolv.conf"
	printf '#!/bin/sh\nexit 101\n' >"$dir/usr/sbin/policy-rc.d"
	chmod 0755 "$dir/usr/sbin/policy-rc.d"
	mkdir -p "$dir/etc/initramfs-tools/conf.d"
	# Only what a virtio disk needs: a small initramfs boots faster under TCG.
	echo "MODULES=list" >"$dir/etc/initramfs-tools/conf.d/spread.conf"
	cat >"$dir/etc/initramfs-tools/modules" <<'EOF'
virtio_pci
virtio_blk
virtio_scsi
sd_mod
ata_piix
ext4
crc32c_generic
EOF
	log "installing linux-image-amd64 into the image"
	chroot "$dir" apt-get update -qq >"$OUT/build.log" 2>&1
	DEBIAN_FRONTEND=noninteractive chroot "$dir" apt-get install -y -qq --no-install-recommends \
		linux-image-amd64 initramfs-tools zstd >>"$OUT/build.log" 2>&1 ||
		{ tail -n 30 "$OUT/build.log" >&2; exit 1; }
	# Modules the booted system loads through udev.
	printf 'qemu_fw_cfg\n' >"$dir/etc/modules-load.d/spread.conf"
	# Drop module trees for hardware a qemu machine does not have (about half
	# of /lib/modules); keeps the image small and the build fast.
	local kver
	kver=$(basename "$(readlink -f "$dir/vmlinuz")" | sed 's/^vmlinuz-//')
	(cd "$dir/lib/modules/$kver/kernel" &&
		rm -rf drivers/gpu drivers/media drivers/infiniband drivers/staging drivers/net/wireless \
			drivers/bluetooth drivers/iio drivers/isdn drivers/net/can sound net/wireless \
			net/mac80211 net/bluetooth)
	chroot "$dir" depmod -a "$kver"
	# Host keys are made once here: ssh-keygen -A takes ~20 s under TCG at
	# every boot otherwise. Every VM of this image has the same host keys
	# (throwaway test machines, booted with -snapshot).
	chroot "$dir" ssh-keygen -A >/dev/null
	rm -f "$dir/usr/sbin/policy-rc.d" "$dir/etc/resolv.conf"
	: >"$dir/etc/resolv.conf"
	for m in "$dir/dev/pts" "$dir/dev" "$dir/sys" "$dir/proc"; do umount -l "$m"; done

	cp -L "$dir/vmlinuz" "$OUT/vmlinuz.tmp"
	cp -L "$dir/initrd.img" "$OUT/initrd.img.tmp"

	echo "LABEL=$LABEL / ext4 errors=remount-ro 0 1" >"$dir/etc/fstab"
	echo "spread-qemu" >"$dir/etc/hostname"
	printf '127.0.0.1 localhost\n127.0.1.1 spread-qemu\n::1 localhost ip6-localhost ip6-loopback\n' >"$dir/etc/hosts"

	# Root password from the kernel command line or fw_cfg, before sshd.
	cat >"$dir/usr/local/sbin/spread-rootpw" <<'EOF'
#!/bin/sh
# Sets root's password from spread.rootpw= on the kernel command line or from
# the qemu fw_cfg entry opt/spread/rootpw.
pw=""
for a in $(cat /proc/cmdline); do
	case "$a" in spread.rootpw=*) pw=${a#spread.rootpw=} ;; esac
done
f=/sys/firmware/qemu_fw_cfg/by_name/opt/spread/rootpw/raw
if [ -z "$pw" ]; then
	[ -e "$f" ] || modprobe qemu_fw_cfg 2>/dev/null || true
	[ -r "$f" ] && pw=$(cat "$f")
fi
if [ -n "$pw" ]; then
	echo "root:$pw" | chpasswd
	echo "spread-rootpw: root password set"
else
	echo "spread-rootpw: no password given, root stays locked"
fi
EOF
	chmod 0755 "$dir/usr/local/sbin/spread-rootpw"
	cat >"$dir/etc/systemd/system/spread-rootpw.service" <<'EOF'
[Unit]
Description=Set root password for spread
After=local-fs.target systemd-remount-fs.service
Before=ssh.service

[Service]
Type=oneshot
ExecStart=/usr/local/sbin/spread-rootpw
StandardOutput=journal+console

[Install]
WantedBy=multi-user.target
EOF
	chroot "$dir" systemctl enable spread-rootpw.service >/dev/null 2>&1
	# The qemu user network gives DHCP; nothing to wait for.
	rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/* "$dir"/tmp/*

	# extlinux boot configuration.
	mkdir -p "$dir/boot/extlinux"
	cat >"$dir/boot/extlinux/extlinux.conf" <<EOF
DEFAULT debian
TIMEOUT 0
PROMPT 0
SERIAL 0 115200
LABEL debian
  LINUX /vmlinuz
  INITRD /initrd.img
  APPEND $CMDLINE
EOF

	# Disk: 1 MiB for the MBR, then one bootable ext4 partition filled from the
	# directory by mkfs.ext4 -d (no mount needed for that).
	local size_mb part_mb
	size_mb=$(numfmt --from=iec "$DISK_SIZE")
	size_mb=$((size_mb / 1048576))
	part_mb=$((size_mb - 1))
	# syslinux 6.04 cannot boot ext4 with 64bit or metadata_csum_seed.
	mkfs.ext4 -q -F -L "$LABEL" -O ^64bit,^metadata_csum_seed -E root_owner=0:0 \
		-d "$dir" "$part_img" "${part_mb}M" >/dev/null
	truncate -s "${size_mb}M" "$raw"
	echo 'start=2048, type=83, bootable' | sfdisk -q "$raw"
	dd if="$part_img" of="$raw" bs=1M seek=1 conv=notrunc,sparse status=none
	dd if=/usr/lib/syslinux/mbr/mbr.bin of="$raw" bs=440 count=1 conv=notrunc status=none
	# extlinux needs the filesystem mounted (loop, at the partition's offset).
	mount -o loop,offset=1048576 "$raw" "$mnt"
	extlinux --install "$mnt/boot/extlinux" >/dev/null 2>&1
	umount "$mnt"

	qemu-img convert -O qcow2 "$raw" "$DISK.tmp"
	mv "$DISK.tmp" "$DISK"
	mv "$OUT/vmlinuz.tmp" "$OUT/vmlinuz"
	mv "$OUT/initrd.img.tmp" "$OUT/initrd.img"
	cleanup
	trap - EXIT
	log "built $DISK ($(du -h "$DISK" | cut -f1) used, $DISK_SIZE virtual) in $(($(date +%s) - t0))s"
}

# Boot once (TCG, -snapshot) and ssh in; prints the time until sshd answered.
check() {
	local port pw t0 pid ok=0 serial
	command -v sshpass >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends sshpass >/dev/null
	port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
	pw=check$RANDOM$RANDOM
	serial=$OUT/check-serial.log
	t0=$(date +%s.%N)
	qemu-system-x86_64 -accel tcg -m 1024 -smp 2 -nographic -snapshot -no-reboot \
		-drive "file=$DISK,if=virtio,format=qcow2" \
		-nic "user,model=virtio-net-pci,hostfwd=tcp:127.0.0.1:$port-:22" \
		-fw_cfg "name=opt/spread/rootpw,string=$pw" \
		-serial "file:$serial" -monitor none -display none </dev/null >/dev/null 2>&1 &
	pid=$!
	for _ in $(seq 300); do
		if sshpass -p "$pw" ssh -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
			-o LogLevel=ERROR -o ConnectTimeout=5 -p "$port" root@127.0.0.1 \
			'. /etc/os-release; echo "$PRETTY_NAME on $(uname -r), hostname $(hostname)"' 2>/dev/null; then
			ok=1
			break
		fi
		kill -0 "$pid" 2>/dev/null || break
		sleep 1
	done
	kill "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	if [ "$ok" = 1 ]; then
		log "check: ssh answered $(echo "$(date +%s.%N) - $t0" | bc | cut -d. -f1)s after qemu started (TCG)"
	else
		log "check: FAILED, serial console in $serial"
		tail -n 20 "$serial" >&2
		return 1
	fi
}

if [ "$rebuild" = 1 ] || [ ! -s "$DISK" ] || [ ! -s "$OUT/vmlinuz" ] || [ ! -s "$OUT/initrd.img" ] ||
	[ "$ROOTFS_TAR" -nt "$DISK" ]; then
	build
else
	log "reusing $DISK"
fi
[ "$check" = 0 ] || check

#!/bin/sh
# install-ipvs-kernel.sh — fetch Debian's kernel (which has IPVS as a module)
# into a cache folder for the IPVS test harness (test/ipvs-vm), without
# installing it: `apt-get download` + `dpkg-deb -x` + `busybox depmod`.
#
#   usage: scripts/install-ipvs-kernel.sh            (prints the kernel root)
#
# Why: the kernels loadfeed's CI and developer machines run may lack IPVS
# (CONFIG_IP_VS), so the real IPVS tests boot Debian's kernel under QEMU.
# Installing linux-image-amd64 would pull initramfs-tools, udev and a systemd
# upgrade and write a 31 MB initrd nobody uses; unpacking the .deb touches
# nothing outside the cache folder and takes about 6 s.
#
# Result: $DEST/<release>/ holding boot/vmlinuz-<release>, boot/config-<release>,
# lib/modules/<release>/ (with modules.dep) and, when xz is installed,
# vmlinux: the ELF image inside the bzImage, which QEMU boots through the PVH
# entry point (it saves ~2 s of decompression per boot under TCG).
# Idempotent: a release already unpacked is kept and only its path printed.
#
# Needs: Debian/Ubuntu apt with package lists (`apt-get update`), dpkg-deb,
# busybox (busybox-static: the harness needs the static one anyway), xz
# (xz-utils, optional). Architecture: amd64 only (the harness runs
# qemu-system-x86_64).
#
# Environment:
#   LOADFEED_IPVS_KERNEL_DIR      cache folder (default: <repo>/.cache/ipvs-kernel;
#                                 the harness looks there by default)
#   LOADFEED_IPVS_KERNEL_PACKAGE  package to fetch (default: what linux-image-amd64
#                                 depends on today, e.g. linux-image-6.1.0-56-amd64)
set -eu

repo=$(cd "$(dirname "$0")/.." && pwd -P)
dest=${LOADFEED_IPVS_KERNEL_DIR:-$repo/.cache/ipvs-kernel}

die() { echo "install-ipvs-kernel: $*" >&2; exit 1; }

command -v apt-get >/dev/null || die "apt-get not found: this script needs Debian or Ubuntu"
command -v dpkg-deb >/dev/null || die "dpkg-deb not found"
command -v busybox >/dev/null || die "busybox not found (apt-get install busybox-static)"

pkg=${LOADFEED_IPVS_KERNEL_PACKAGE:-}
if [ -z "$pkg" ]; then
  pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
  [ -n "$pkg" ] || die "cannot resolve linux-image-amd64 (run apt-get update first)"
fi
release=${pkg#linux-image-}
case $release in
  *-unsigned) release=${release%-unsigned} ;;
esac
root=$dest/$release

if [ -r "$root/lib/modules/$release/modules.dep" ] && [ -r "$root/boot/vmlinuz-$release" ]; then
  echo "$root"
  exit 0
fi

mkdir -p "$dest"
tmp=$(mktemp -d "$dest/.download.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM

# apt-get download writes into the current directory. As root it warns that the
# download is unsandboxed (the _apt user cannot write here); that is harmless.
(cd "$tmp" && apt-get download -q "$pkg" >&2) || die "apt-get download $pkg failed"
deb=$(ls "$tmp"/*.deb)
dpkg-deb -x "$deb" "$tmp/root" || die "dpkg-deb -x $deb failed"
[ -e "$tmp/root/lib/modules/$release/kernel/net/netfilter/ipvs/ip_vs.ko" ] ||
  die "$pkg has no ip_vs.ko (uncompressed modules expected, as Debian 12 ships them)"
busybox depmod -b "$tmp/root" "$release" || die "busybox depmod failed"

# The ELF vmlinux inside the xz-compressed bzImage (CONFIG_KERNEL_XZ=y): xz
# exits non-zero because of the bytes after the stream; the ELF magic decides.
kernel=$tmp/root/boot/vmlinuz-$release
if command -v xz >/dev/null && grep -q '^CONFIG_PVH=y' "$tmp/root/boot/config-$release"; then
  off=$(LC_ALL=C grep -obUaP '\xfd7zXZ\x00' "$kernel" | head -n 1 | cut -d: -f1)
  if [ -n "$off" ]; then
    tail -c +"$((off + 1))" "$kernel" | xz -dc > "$tmp/root/vmlinux" 2>/dev/null || true
    [ "$(head -c 4 "$tmp/root/vmlinux" | od -An -c | tr -d ' ')" = '177ELF' ] || rm -f "$tmp/root/vmlinux"
  fi
fi

# Only what the harness reads is kept (about 60 MB of the 400 MB unpacked):
# the kernel, its config, and the modules it loads or may load on demand.
keep=$tmp/keep
mkdir -p "$keep/boot" "$keep/lib/modules/$release/kernel"
cp "$tmp/root/boot/vmlinuz-$release" "$tmp/root/boot/config-$release" "$keep/boot/"
[ -e "$tmp/root/vmlinux" ] && mv "$tmp/root/vmlinux" "$keep/vmlinux"
for f in "$tmp/root/lib/modules/$release"/modules.*; do cp "$f" "$keep/lib/modules/$release/"; done
for d in net fs lib crypto arch drivers/virtio drivers/net/dummy.ko; do
  src=$tmp/root/lib/modules/$release/kernel/$d
  [ -e "$src" ] || continue
  mkdir -p "$(dirname "$keep/lib/modules/$release/kernel/$d")"
  cp -R "$src" "$keep/lib/modules/$release/kernel/$d"
done
rm -rf "$root"
mv "$keep" "$root"
echo "$root"

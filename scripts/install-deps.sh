#!/usr/bin/env bash
# Installs the Debian packages listed in scripts/apt-packages.txt that are
# missing, and loads the kernel modules the tests use (tun, fuse, loop).
# Safe to run repeatedly: it does nothing when everything is present.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
mapfile -t wanted < <(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$here/apt-packages.txt")

missing=()
for p in "${wanted[@]}"; do
	p="$(echo "$p" | tr -d '[:space:]')"
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing+=("$p")
	fi
done

if ((${#missing[@]})); then
	if [[ $(id -u) -ne 0 ]]; then
		echo "install-deps: missing Debian packages: ${missing[*]}" >&2
		echo "install-deps: run as root (or: sudo apt-get install ${missing[*]}); tests that need them will skip outside CI" >&2
	else
		echo "install-deps: installing ${missing[*]}"
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -qq
		apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
	fi
fi

if [[ $(id -u) -eq 0 ]]; then
	for m in tun fuse loop; do
		modprobe -q "$m" 2>/dev/null || true
	done
	# A fresh container may lack the device nodes even with the modules in.
	[[ -e /dev/net/tun ]] || { mkdir -p /dev/net && mknod /dev/net/tun c 10 200 && chmod 0666 /dev/net/tun; } || true
	[[ -e /dev/fuse ]] || { mknod /dev/fuse c 10 229 && chmod 0666 /dev/fuse; } || true
	[[ -e /dev/loop-control ]] || mknod /dev/loop-control c 10 237 || true
fi

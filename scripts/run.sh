#!/usr/bin/env bash
# make run: the example web server on netstack, attached to a TAP device.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ ! -d examples/httpd ]]; then
	echo "make run: examples/httpd does not exist yet; it arrives with the netstack component." >&2
	echo "Meanwhile: make test runs every component against in-memory and host devices." >&2
	exit 2
fi
if [[ $(id -u) -ne 0 ]]; then
	echo "make run: needs root to create the TAP device and give the host side an address; try: sudo make run" >&2
	exit 1
fi
mkdir -p bin
go build -o bin/httpd ./examples/httpd
echo "make run: starting bin/httpd (Ctrl-C stops it; its TAP device goes away with it)"
exec bin/httpd "$@"

#!/usr/bin/env bash
# Debian's Chromium for the browser tests (browser_test.go).
#
#   scripts/chromium.sh install   install the package chromium with apt-get
#                                 when no chromium is on PATH (as root only;
#                                 otherwise say what to run)
#   scripts/chromium.sh path      print the browser the tests will use
#
# CHAT_CHROMIUM names another browser binary (a Chrome or Chromium); the
# tests read it too.
set -euo pipefail

PATH="$PATH:/usr/sbin:/usr/local/sbin:/sbin"
APT_LINE="apt-get update && apt-get install -y --no-install-recommends chromium"

log() { echo "chromium.sh: $*" >&2; }
die() {
	log "$*"
	exit 1
}
is_root() { [ "$(id -u)" -eq 0 ]; }

find_browser() {
	if [ -n "${CHAT_CHROMIUM:-}" ]; then
		[ -x "$CHAT_CHROMIUM" ] && echo "$CHAT_CHROMIUM"
		return
	fi
	command -v chromium || command -v chromium-browser || command -v google-chrome || true
}

case "${1:-}" in
install)
	b=$(find_browser)
	if [ -n "$b" ]; then
		log "browser for the browser tests: $b"
		exit 0
	fi
	[ -z "${CHAT_CHROMIUM:-}" ] || die "CHAT_CHROMIUM=$CHAT_CHROMIUM is not an executable"
	is_root || die "chromium is missing; as root run: $APT_LINE"
	log "chromium is missing: installing the Debian package chromium with apt-get"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q </dev/null || die "apt-get update failed; run: $APT_LINE"
	apt-get install -y -q --no-install-recommends chromium </dev/null || die "apt-get install failed; run: $APT_LINE"
	b=$(find_browser)
	[ -n "$b" ] || die "chromium still missing after apt-get; run: $APT_LINE"
	log "browser for the browser tests: $b"
	;;
path)
	b=$(find_browser)
	[ -n "$b" ] || die "no chromium on PATH; run: scripts/chromium.sh install"
	echo "$b"
	;;
*)
	echo "usage: $0 install | $0 path" >&2
	exit 2
	;;
esac

#!/usr/bin/env bash
# Private, throw-away Redis instance for the tests.
#
#   scripts/redis.sh start DIR PORT   start redis-server on 127.0.0.1:PORT
#                                      (no persistence), wait for PONG
#   scripts/redis.sh stop DIR          stop the instance of DIR (idempotent)
#
# Optional, for the tests of Redis AUTH and TLS (read at start):
#
#   CHAT_REDIS_PASSWORD=PASS   require this password (requirepass); it goes
#                              into DIR/redis.conf (mode 600), not onto the
#                              command line
#   CHAT_REDIS_TLS_CERT=FILE   with CHAT_REDIS_TLS_KEY and CHAT_REDIS_TLS_CA
#   CHAT_REDIS_TLS_KEY=FILE    (PEM): PORT speaks TLS only, without client
#   CHAT_REDIS_TLS_CA=FILE     certificates (tls-auth-clients no)
set -euo pipefail

PATH="$PATH:/usr/sbin:/usr/local/sbin:/sbin"

START_TIMEOUT=${CHAT_REDIS_START_TIMEOUT:-30}  # seconds
STOP_TIMEOUT=30                                # seconds before SIGKILL

usage() {
	echo "usage: $0 start DIR PORT | $0 stop DIR" >&2
	exit 2
}

log() { echo "redis.sh: $*" >&2; }

is_root() { [ "$(id -u)" -eq 0 ]; }

SERVER= CLI=
find_binaries() {
	SERVER=$(command -v redis-server || true)
	CLI=$(command -v redis-cli || true)
	[ -n "$SERVER" ] && [ -n "$CLI" ]
}

ensure_installed() {
	find_binaries && return 0
	if ! is_root; then
		echo "missing redis-server: run as root: apt-get install redis-server" >&2
		exit 1
	fi
	log "redis-server not found, installing redis-server with apt-get"
	export DEBIAN_FRONTEND=noninteractive
	# Keep the packaged service from being started by the package scripts:
	# we run our own instance on our own port.
	local policy=/usr/sbin/policy-rc.d added_policy=
	if [ ! -e "$policy" ]; then
		printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && added_policy=1
	fi
	local rc=0
	{ apt-get update -q && apt-get install -y -q --no-install-recommends redis-server redis-tools; } </dev/null || rc=$?
	if [ -n "$added_policy" ]; then rm -f "$policy"; fi
	if [ "$rc" -ne 0 ]; then
		log "apt-get install redis-server failed (exit $rc)"
		exit 1
	fi
	if ! find_binaries; then
		echo "missing redis-server: run as root: apt-get install redis-server" >&2
		exit 1
	fi
}

alive() { # alive PID: running and not a zombie
	kill -0 "$1" 2>/dev/null || return 1
	[ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]
}

# pid_of_instance DIR: print the pid from DIR/redis.pid if that process is
# still a redis-server working in DIR (--dir makes redis chdir there); this
# protects against stale pid files and recycled pids.
pid_of_instance() {
	local dir=$1 pid comm
	[ -s "$dir/redis.pid" ] || return 1
	pid=$(tr -dc '0-9' <"$dir/redis.pid")
	[ -n "$pid" ] && alive "$pid" || return 1
	comm=$(cat "/proc/$pid/comm" 2>/dev/null || true)
	case $comm in
	redis-server* | redis-check*) ;;
	*) return 1 ;;
	esac
	[ "$(readlink "/proc/$pid/cwd" 2>/dev/null || true)" = "$dir" ] || return 1
	echo "$pid"
}

# scan_for_instance DIR: search the process table for a redis-server working
# in DIR (used by stop when the pid file is gone, e.g. DIR was removed).
scan_for_instance() {
	local dir=$1 p pid cwd
	for p in /proc/[0-9]*; do
		pid=${p#/proc/}
		case $(cat "$p/comm" 2>/dev/null || true) in
		redis-server*) ;;
		*) continue ;;
		esac
		cwd=$(readlink "$p/cwd" 2>/dev/null || true)
		if [ "$cwd" = "$dir" ] || [ "$cwd" = "$dir (deleted)" ]; then
			alive "$pid" || continue
			echo "$pid"
			return 0
		fi
	done
	return 1
}

PASSWORD=${CHAT_REDIS_PASSWORD:-}
TLS_CERT=${CHAT_REDIS_TLS_CERT:-} TLS_KEY=${CHAT_REDIS_TLS_KEY:-} TLS_CA=${CHAT_REDIS_TLS_CA:-}

cli() { # cli PORT ARGS...
	local port=$1
	shift
	local cmd=("$CLI" -h 127.0.0.1 -p "$port")
	if [ -n "$TLS_CERT" ]; then cmd+=(--tls --cacert "$TLS_CA"); fi
	if command -v timeout >/dev/null 2>&1; then cmd=(timeout 5 "${cmd[@]}"); fi
	if [ -n "$PASSWORD" ]; then
		# REDISCLI_AUTH: the password stays off redis-cli's command line
		REDISCLI_AUTH=$PASSWORD "${cmd[@]}" "$@" </dev/null
	else
		"${cmd[@]}" "$@" </dev/null
	fi
}

# write_conf DIR: DIR/redis.conf with what must not be on the command line
# (the password), and the TLS settings.
write_conf() {
	local conf=$1/redis.conf
	(umask 077 && : >"$conf") && chmod 600 "$conf"
	if [ -n "$PASSWORD" ]; then
		# a quoted string in redis.conf: \ and \" are escapes
		local quoted=${PASSWORD//\\/\\\\}
		quoted=${quoted//\"/\\\"}
		printf 'requirepass "%s"\n' "$quoted" >>"$conf"
	fi
	if [ -n "$TLS_CERT$TLS_KEY$TLS_CA" ]; then
		if [ -z "$TLS_CERT" ] || [ -z "$TLS_KEY" ] || [ -z "$TLS_CA" ]; then
			log "CHAT_REDIS_TLS_CERT, CHAT_REDIS_TLS_KEY and CHAT_REDIS_TLS_CA go together"
			exit 2
		fi
		# absolute: redis-server reads them after changing to DIR
		printf 'tls-cert-file "%s"\ntls-key-file "%s"\ntls-ca-cert-file "%s"\ntls-auth-clients no\n' \
			"$(readlink -f "$TLS_CERT")" "$(readlink -f "$TLS_KEY")" "$(readlink -f "$TLS_CA")" >>"$conf"
	fi
}

fail_start() {
	local dir=$1
	shift
	log "$*"
	cmd_stop "$dir" >/dev/null 2>&1 || true
	if [ -f "$dir/redis.log" ]; then
		log "tail of $dir/redis.log:"
		tail -n 30 "$dir/redis.log" >&2 || true
	fi
	if [ -s "$dir/redis.out" ]; then
		log "tail of $dir/redis.out:"
		tail -n 20 "$dir/redis.out" >&2 || true
	fi
	exit 1
}

cmd_start() {
	[ $# -eq 2 ] || usage
	local port=$2
	case $port in '' | *[!0-9]*) usage ;; esac
	ensure_installed
	mkdir -p "$1"
	local dir
	dir=$(cd "$1" && pwd -P)

	local pid
	if pid=$(pid_of_instance "$dir"); then
		if [ "$(cli "$port" info server 2>/dev/null | tr -d '\r' | sed -n 's/^process_id://p')" = "$pid" ]; then
			log "already running ($dir, port $port)"
			return 0
		fi
		log "an instance of $dir is running but not on port $port, restarting it"
		cmd_stop "$dir"
	fi
	rm -f "$dir/redis.pid"
	# only the part of the (appended) log written by this start is inspected
	local logoff=0
	if [ -f "$dir/redis.log" ]; then logoff=$(wc -c <"$dir/redis.log"); fi

	write_conf "$dir"
	local ports=(--port "$port")
	if [ -n "$TLS_CERT" ]; then ports=(--port 0 --tls-port "$port"); fi
	# --daemonize yes: the server detaches itself; no inherited stdio is kept
	# open (a caller such as a Go exec.Command would wait for it otherwise).
	if ! "$SERVER" "$dir/redis.conf" "${ports[@]}" --bind 127.0.0.1 --daemonize yes \
		--dir "$dir" --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" \
		--save "" --appendonly no </dev/null >"$dir/redis.out" 2>&1; then
		fail_start "$dir" "redis-server failed to start (port $port)"
	fi

	local deadline=$((SECONDS + START_TIMEOUT)) id newlog
	while :; do
		if pid=$(pid_of_instance "$dir") &&
			[ "$(cli "$port" ping 2>/dev/null | tr -d '\r' || true)" = PONG ]; then
			id=$(cli "$port" info server 2>/dev/null | tr -d '\r' | sed -n 's/^process_id://p' || true)
			[ "$id" = "$pid" ] && break
			# someone else answers on that port; ours should fail to bind
		fi
		newlog=$(tail -c +$((logoff + 1)) "$dir/redis.log" 2>/dev/null || true)
		if grep -qi -e 'aborting' -e 'fatal' -e 'failed listening' <<<"$newlog"; then
			fail_start "$dir" "redis-server failed during start-up (port $port)"
		fi
		if [ "$SECONDS" -ge "$deadline" ]; then
			fail_start "$dir" "redis-server did not answer PONG on 127.0.0.1:$port within ${START_TIMEOUT}s"
		fi
		sleep 0.1
	done
	log "started on 127.0.0.1:$port (dir $dir)"
}

cmd_stop() {
	[ $# -eq 1 ] || usage
	local dir
	if [ -d "$1" ]; then
		dir=$(cd "$1" && pwd -P)
	else # DIR removed under a running server: still find it by its cwd
		case $1 in /*) dir=$1 ;; *) dir=$PWD/$1 ;; esac
		dir=${dir%/}
	fi
	local pid
	if ! pid=$(pid_of_instance "$dir") && ! pid=$(scan_for_instance "$dir"); then
		rm -f "$dir/redis.pid" 2>/dev/null || true
		return 0
	fi
	# SIGTERM = orderly shutdown; with --save "" and no AOF nothing is written
	if alive "$pid"; then kill -TERM "$pid" 2>/dev/null || true; fi
	local deadline=$((SECONDS + STOP_TIMEOUT))
	while alive "$pid"; do
		if [ "$SECONDS" -ge "$deadline" ]; then
			log "redis-server ($pid) did not stop within ${STOP_TIMEOUT}s, killing it"
			kill -KILL "$pid" 2>/dev/null || true
			sleep 0.2
			break
		fi
		sleep 0.05
	done
	rm -f "$dir/redis.pid" 2>/dev/null || true
	log "stopped ($dir)"
}

[ $# -ge 1 ] || usage
cmd=$1
shift
case $cmd in
start) cmd_start "$@" ;;
stop) cmd_stop "$@" ;;
*) usage ;;
esac

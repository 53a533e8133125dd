#!/usr/bin/env bash
# Private, throw-away MariaDB instance for the tests.
#
#   scripts/mariadb.sh start DIR PORT   initialise DIR/data if needed, start
#                                        mariadbd on 127.0.0.1:PORT, wait until
#                                        it answers, create database `test`
#   scripts/mariadb.sh stop DIR          stop the instance of DIR (idempotent)
#
# The instance runs with --skip-grant-tables and listens on 127.0.0.1 only, so
# any user with an empty password works over TCP, e.g.
#   root:@tcp(127.0.0.1:PORT)/test
# It never reads the system option files (--no-defaults), so it cannot clash
# with a system MariaDB (its socket, pid file, port, datadir or user).
# stop followed by start on the same DIR/PORT reuses the datadir and is fast;
# the Go tests use that to simulate a database outage.
set -euo pipefail

PATH="$PATH:/usr/sbin:/usr/local/sbin:/sbin"

START_TIMEOUT=${CHAT_MARIADB_START_TIMEOUT:-60}  # seconds
STOP_TIMEOUT=30                                  # seconds before SIGKILL

usage() {
	echo "usage: $0 start DIR PORT | $0 stop DIR" >&2
	exit 2
}

log() { echo "mariadb.sh: $*" >&2; }

is_root() { [ "$(id -u)" -eq 0 ]; }

MARIADBD= INSTALL_DB= CLIENT=
find_binaries() {
	MARIADBD=$(command -v mariadbd || command -v mysqld || true)
	INSTALL_DB=$(command -v mariadb-install-db || command -v mysql_install_db || true)
	CLIENT=$(command -v mariadb || command -v mysql || true)
	[ -n "$MARIADBD" ] && [ -n "$INSTALL_DB" ] && [ -n "$CLIENT" ]
}

ensure_installed() {
	find_binaries && return 0
	if ! is_root; then
		echo "missing mariadbd: run as root: apt-get install mariadb-server" >&2
		exit 1
	fi
	log "mariadbd not found, installing mariadb-server with apt-get"
	export DEBIAN_FRONTEND=noninteractive
	# Keep the packaged service from being started by the package scripts:
	# we run our own instance on our own port. Only add a policy-rc.d when
	# there is none (Docker images usually have one already).
	local policy=/usr/sbin/policy-rc.d added_policy=
	if [ ! -e "$policy" ]; then
		printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && added_policy=1
	fi
	local rc=0
	{ apt-get update -q && apt-get install -y -q --no-install-recommends mariadb-server mariadb-client; } </dev/null || rc=$?
	if [ -n "$added_policy" ]; then rm -f "$policy"; fi
	if [ "$rc" -ne 0 ]; then
		log "apt-get install mariadb-server failed (exit $rc)"
		exit 1
	fi
	if ! find_binaries; then
		echo "missing mariadbd: run as root: apt-get install mariadb-server" >&2
		exit 1
	fi
}

abs_dir() { # create DIR if needed and print its absolute path
	mkdir -p "$1"
	(cd "$1" && pwd -P)
}

# pid_of_instance DIR: print the pid of the running mariadbd of DIR, if any.
# The pid file is only trusted when that process really is a mariadbd using
# DIR/data (protects against stale pid files and recycled pids); without a
# usable pid file (e.g. still starting up) the process table is searched for a
# mariadbd started with exactly --datadir=DIR/data.
is_instance() { # is_instance PID DIR
	local args argv0
	[ -r "/proc/$1/cmdline" ] || return 1
	args=$(tr '\0' '\n' 2>/dev/null <"/proc/$1/cmdline") || return 1
	argv0=${args%%$'\n'*}
	case $argv0 in
	*mariadbd | *mysqld) ;;
	*) return 1 ;;
	esac
	[[ $'\n'"$args"$'\n' == *$'\n'"--datadir=$2/data"$'\n'* ]]
}

pid_of_instance() {
	local dir=$1 pid p
	if [ -s "$dir/mysqld.pid" ]; then
		pid=$(tr -dc '0-9' <"$dir/mysqld.pid")
		if [ -n "$pid" ] && is_instance "$pid" "$dir"; then
			echo "$pid"
			return 0
		fi
	fi
	for p in /proc/[0-9]*; do
		pid=${p#/proc/}
		if is_instance "$pid" "$dir"; then
			echo "$pid"
			return 0
		fi
	done
	return 1
}

socket_path() {
	local dir=$1 sock="$1/mysqld.sock"
	# unix socket paths are limited to 107 bytes
	if [ "${#sock}" -gt 100 ]; then
		sock="${TMPDIR:-/tmp}/chat-mariadb-$(printf '%s' "$dir" | cksum | cut -d' ' -f1).sock"
	fi
	echo "$sock"
}

sql() { # sql PORT QUERY
	"$CLIENT" --no-defaults --protocol=TCP -h127.0.0.1 -P"$1" -uroot \
		--connect-timeout=2 -N -B -e "$2" </dev/null
}

alive() { # alive PID: running and not a zombie
	kill -0 "$1" 2>/dev/null || return 1
	[ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]
}

fail_start() { # print the diagnostics, stop what we started, exit 1
	local dir=$1
	shift
	log "$*"
	cmd_stop "$dir" >/dev/null 2>&1 || true
	if [ -f "$dir/error.log" ]; then
		log "tail of $dir/error.log:"
		tail -n 40 "$dir/error.log" >&2 || true
	fi
	if [ -s "$dir/mariadbd.out" ]; then
		log "tail of $dir/mariadbd.out:"
		tail -n 20 "$dir/mariadbd.out" >&2 || true
	fi
	exit 1
}

do_install_db() {
	local dir=$1
	local marker="$dir/data/.chat-initialized"
	[ -f "$marker" ] && return 0
	# A datadir without the marker is a half-finished initialisation: redo it.
	rm -rf "$dir/data"
	mkdir -p "$dir/data"
	local args=(--no-defaults --datadir="$dir/data" --auth-root-authentication-method=normal
		--skip-test-db --skip-name-resolve --innodb-buffer-pool-size=128M
		--character-set-server=utf8mb4 --collation-server=utf8mb4_general_ci)
	if is_root; then args+=(--user=root); fi
	log "initialising $dir/data"
	if ! "$INSTALL_DB" "${args[@]}" >"$dir/install-db.log" 2>&1 </dev/null; then
		log "mariadb-install-db failed:"
		tail -n 40 "$dir/install-db.log" >&2 || true
		exit 1
	fi
	touch "$marker"
}

cmd_start() {
	[ $# -eq 2 ] || usage
	local port=$2
	case $port in '' | *[!0-9]*) usage ;; esac
	ensure_installed
	local dir
	dir=$(abs_dir "$1")

	if pid_of_instance "$dir" >/dev/null; then
		if sql "$port" 'select 1' >/dev/null 2>&1; then
			log "already running ($dir, port $port)"
			sql "$port" 'CREATE DATABASE IF NOT EXISTS test CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci'
			return 0
		fi
		log "an instance of $dir is running but not answering on port $port, restarting it"
		cmd_stop "$dir"
	fi

	do_install_db "$dir"

	local sock
	sock=$(socket_path "$dir")
	rm -f "$dir/mysqld.pid" "$sock" "$sock.lock"
	local args=(--no-defaults
		--datadir="$dir/data"
		--socket="$sock"
		--port="$port"
		--bind-address=127.0.0.1
		--pid-file="$dir/mysqld.pid"
		--log-error="$dir/error.log"
		--skip-grant-tables
		--skip-name-resolve
		--innodb-buffer-pool-size=256M
		--innodb-flush-log-at-trx-commit=1
		--character-set-server=utf8mb4
		--collation-server=utf8mb4_general_ci
		--max-connections=1000)
	if is_root; then args+=(--user=root); fi

	# Detach completely: own session, no inherited stdio. (A caller such as a
	# Go test using exec.Command would otherwise wait for the daemon to close
	# the pipes it inherited.)
	local setsid=
	if command -v setsid >/dev/null 2>&1; then setsid=setsid; fi
	$setsid "$MARIADBD" "${args[@]}" </dev/null >>"$dir/mariadbd.out" 2>&1 &
	local pid=$!

	local deadline=$((SECONDS + START_TIMEOUT)) datadir
	while :; do
		datadir=$(sql "$port" 'select @@datadir' 2>/dev/null || true)
		if [ -n "$datadir" ]; then
			if [ "${datadir%/}" != "$dir/data" ]; then
				fail_start "$dir" "port $port is answered by another server (datadir $datadir)"
			fi
			break
		fi
		if ! alive "$pid" && ! pid_of_instance "$dir" >/dev/null; then
			fail_start "$dir" "mariadbd exited during start-up (port $port)"
		fi
		if [ "$SECONDS" -ge "$deadline" ]; then
			fail_start "$dir" "mariadbd did not answer on 127.0.0.1:$port within ${START_TIMEOUT}s"
		fi
		sleep 0.2
	done
	sql "$port" 'CREATE DATABASE IF NOT EXISTS test CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci' ||
		fail_start "$dir" "CREATE DATABASE test failed"
	log "started on 127.0.0.1:$port (dir $dir)"
}

cmd_stop() {
	[ $# -eq 1 ] || usage
	local dir
	if [ -d "$1" ]; then
		dir=$(cd "$1" && pwd -P)
	else # DIR removed under a running server: still find it by its datadir
		case $1 in /*) dir=$1 ;; *) dir=$PWD/$1 ;; esac
		dir=${dir%/}
	fi
	local pid
	if ! pid=$(pid_of_instance "$dir"); then
		rm -f "$dir/mysqld.pid" 2>/dev/null || true
		return 0
	fi
	kill -TERM "$pid" 2>/dev/null || true
	local deadline=$((SECONDS + STOP_TIMEOUT))
	while alive "$pid"; do
		if [ "$SECONDS" -ge "$deadline" ]; then
			log "mariadbd ($pid) did not stop within ${STOP_TIMEOUT}s, killing it"
			kill -KILL "$pid" 2>/dev/null || true
			sleep 0.5
			break
		fi
		sleep 0.1
	done
	rm -f "$dir/mysqld.pid" 2>/dev/null || true
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

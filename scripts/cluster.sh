#!/usr/bin/env bash
# A local chat cluster: N server nodes behind nginx, on MySQL and Redis.
#
#   scripts/cluster.sh up [-n N] [-d DIR] [-p PORT] [-w PORT] [--tls CERT KEY] [-- SERVER FLAGS...]
#       build the server into DIR/chat-server, start MySQL and Redis unless
#       CHAT_MYSQL / CHAT_REDIS name them, start N nodes (default 3) and nginx
#       in front of them: the client port on 127.0.0.1:PORT (-p; default 8000
#       when free, else a free port; -p 0: always a free port) and the web
#       front, the browser client and its WebSocket, on 127.0.0.1:PORT (-w;
#       default 8080 when free, else a free port; -w 0: always a free port);
#       wait until every node's /healthz is 200 and both fronts accept, print
#       a summary (with the URL to open in a browser) and write it to
#       DIR/cluster.env. Flags after `--` go to every node (e.g. -rate 0).
#       --tls CERT KEY (or -t): PEM files, valid for 127.0.0.1; every node
#       speaks TLS only (-tls-cert, -tls-key; SIGHUP reloads them), nginx
#       passes the client port's TLS through and terminates the web front's
#       with the same files (https://), proxying to the nodes' HTTPS
#       (deploy/nginx-chat.conf.tmpl)
#   scripts/cluster.sh down [-d DIR] [--purge]
#       stop nginx, the nodes, and the MySQL/Redis that `up` started
#       (idempotent); --purge also deletes DIR
#   scripts/cluster.sh status [-d DIR]
#       the summary, with each process's state, /healthz and the web front's
#       page; exit 1 unless all is up and healthy
#   scripts/cluster.sh stop-node I [-d DIR] [--kill]
#       SIGTERM node I and wait for it to exit (--kill: SIGKILL, as in a crash)
#   scripts/cluster.sh install
#       make sure nginx and its stream module are here: when missing, say so
#       and install nginx libnginx-mod-stream with apt-get (as root)
#   scripts/cluster.sh start-node I [-d DIR]
#       start node I again: same name, same ports, same flags; waits for /healthz
#
# DIR defaults to $CHAT_CLUSTER_DIR, else ${TMPDIR:-/tmp}/chat-cluster.
#
# Services:
#   CHAT_MYSQL   go-sql-driver DSN, e.g. root:@tcp(127.0.0.1:3306)/chat; unset:
#                a private MariaDB in DIR/mysql (scripts/mariadb.sh), database chat
#   CHAT_REDIS   host:port; unset: a private Redis in DIR/redis (scripts/redis.sh)
# nginx and its stream module come from Debian (nginx, libnginx-mod-stream);
# when missing they are installed with apt-get if we are root.
#
# DIR/cluster.env holds shell KEY='VALUE' lines: FRONT, WEB_FRONT, WEB_URL,
# NODES, NODEi_NAME, NODEi_ADDR, NODEi_WEB, NODEi_ADMIN, NODEi_PID, NODEi_LOG,
# NODEi_STOP, NODEi_START, NODEi_KILL, NGINX_PID, MYSQL_DSN, REDIS_ADDR,
# MYSQL_STARTED, REDIS_STARTED...; with --tls also TLS=1, TLS_CERT and
# TLS_KEY (absolute paths).
# The nodes' logs are DIR/nodeI.log, nginx's DIR/nginx-error.log,
# DIR/nginx-access.log (the client port) and DIR/nginx-web-access.log (the
# web front).
set -euo pipefail

PATH="$PATH:/usr/sbin:/usr/local/sbin:/sbin"
if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then
	PATH="/usr/local/go/bin:$PATH"
fi

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
SELF="$ROOT/scripts/cluster.sh"
START_TIMEOUT=${CHAT_CLUSTER_START_TIMEOUT:-60} # seconds, for nodes and nginx
STOP_TIMEOUT=30                                 # seconds before SIGKILL (graceful shutdown takes up to 20 s)
NGINX_MODULE=/usr/lib/nginx/modules/ngx_stream_module.so
APT_LINE="apt-get update && apt-get install -y --no-install-recommends nginx libnginx-mod-stream"

usage() {
	sed -n '2,33p' "$SELF" | sed 's/^# \{0,1\}//' >&2
	exit 2
}

log() { echo "cluster.sh: $*" >&2; }
die() {
	log "$*"
	exit 1
}

is_root() { [ "$(id -u)" -eq 0 ]; }

alive() { # alive PID: running and not a zombie
	[ -n "$1" ] || return 1
	kill -0 "$1" 2>/dev/null || return 1
	[ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]
}

cmdline_has() { # cmdline_has PID WORD...: each WORD is one argument of PID
	local args w
	args=$'\n'$(tr '\0' '\n' 2>/dev/null <"/proc/$1/cmdline")$'\n' || return 1
	shift
	for w in "$@"; do
		[[ $args == *$'\n'"$w"$'\n'* ]] || return 1
	done
}

# --- ports -------------------------------------------------------------------

# shellcheck source=scripts/ports.sh
. "$ROOT/scripts/ports.sh"

# --- HTTP and TCP probes -----------------------------------------------------

http_status() { # http_status HOST:PORT PATH [https]: print the status code, 000 if none
	local code
	if command -v curl >/dev/null 2>&1; then
		# -k: a health check, not a check of the certificate (a private
		# root the script does not know)
		code=$(curl -k -s -o /dev/null -m 3 -w '%{http_code}' "${3:-http}://$1$2" 2>/dev/null || true)
		echo "${code:-000}"
		return
	fi
	if [ "${3:-http}" = https ]; then # no curl: whether it accepts is all we can tell
		if accepts "$1"; then echo 200; else echo 000; fi
		return
	fi
	code=$(timeout 3 bash -c '
		exec 3<>"/dev/tcp/${1%:*}/${1##*:}" || exit 1
		printf "GET %s HTTP/1.0\r\nHost: %s\r\n\r\n" "$2" "$1" >&3
		read -r _ code _ <&3 && echo "$code"' _ "$1" "$2" 2>/dev/null || true)
	echo "${code:-000}"
}

accepts() { # accepts HOST:PORT
	timeout 2 bash -c 'exec 3<>"/dev/tcp/${1%:*}/${1##*:}"' _ "$1" 2>/dev/null
}

# --- state: DIR/cluster.env ----------------------------------------------------

DIR=
resolve_dir() { # resolve_dir [DIR]: set DIR (absolute); only `up` creates it
	local d=${1:-${CHAT_CLUSTER_DIR:-${TMPDIR:-/tmp}/chat-cluster}}
	if [ "$cmd" = up ]; then mkdir -p "$d"; fi
	if [ -d "$d" ]; then
		DIR=$(cd "$d" && pwd -P)
	else
		case $d in /*) DIR=${d%/} ;; *) DIR=$PWD/${d%/} ;; esac
	fi
}

ENV_KEYS=()
setv() { # setv KEY VALUE: set a state variable (saved by save_env)
	printf -v "$1" '%s' "$2"
	case " ${ENV_KEYS[*]} " in *" $1 "*) ;; *) ENV_KEYS+=("$1") ;; esac
}

quote() { # single-quote for the shell: a'b -> 'a'\''b'
	local s=${1//\'/\'\\\'\'}
	printf "'%s'" "$s"
}

save_env() {
	local k tmp="$DIR/cluster.env.tmp"
	{
		echo "# written by scripts/cluster.sh; source it from a shell"
		for k in "${ENV_KEYS[@]}"; do
			printf '%s=%s\n' "$k" "$(quote "${!k}")"
		done
	} >"$tmp"
	mv -f "$tmp" "$DIR/cluster.env"
}

load_env() { # load_env: 0 when DIR/cluster.env exists
	[ -f "$DIR/cluster.env" ] || return 1
	local line k
	while IFS= read -r line; do
		case $line in '#'* | '') continue ;; esac
		k=${line%%=*}
		[[ $k =~ ^[A-Z][A-Z0-9_]*$ ]] || continue
		eval "setv $k ${line#*=}"
	done <"$DIR/cluster.env"
}

# --- installs ------------------------------------------------------------------

APT_UPDATED=
apt_install() { # apt_install PACKAGE...: as root, with the packaged services kept from starting
	export DEBIAN_FRONTEND=noninteractive
	# The package scripts would start the packaged nginx on port 80: we run
	# our own instance. Only add a policy-rc.d when there is none.
	local policy=/usr/sbin/policy-rc.d added_policy= rc=0
	if [ ! -e "$policy" ]; then
		printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && added_policy=1
	fi
	if [ -z "$APT_UPDATED" ]; then
		apt-get update -q </dev/null || rc=$?
		APT_UPDATED=1
	fi
	if [ "$rc" -eq 0 ]; then
		apt-get install -y -q --no-install-recommends "$@" </dev/null || rc=$?
	fi
	if [ -n "$added_policy" ]; then rm -f "$policy"; fi
	return "$rc"
}

NGINX=
LOAD_MODULE=
stream_builtin() { "$NGINX" -V 2>&1 | grep -q -- '--with-stream\( \|$\)'; }
find_nginx() {
	NGINX=$(command -v nginx || true)
	[ -n "$NGINX" ] || return 1
	if [ -f "$NGINX_MODULE" ]; then
		LOAD_MODULE="load_module $NGINX_MODULE;"
	elif stream_builtin; then
		LOAD_MODULE="# (the stream module is built into this nginx)"
	else
		return 1
	fi
}

ensure_nginx() {
	find_nginx && return 0
	if ! is_root; then
		die "nginx with the stream module is missing; as root run: $APT_LINE"
	fi
	log "nginx or its stream module is missing: installing nginx libnginx-mod-stream with apt-get"
	apt_install nginx libnginx-mod-stream || die "apt-get install failed; run: $APT_LINE"
	find_nginx || die "nginx with the stream module still missing after apt-get; run: $APT_LINE"
}

# --- processes -----------------------------------------------------------------

node_pid() { # node_pid I: print the pid of node I if it runs (checked, not just the pid file)
	local i=$1 pid
	[ -s "$DIR/node$i.pid" ] || return 1
	pid=$(tr -dc '0-9' <"$DIR/node$i.pid")
	alive "$pid" && cmdline_has "$pid" "$DIR/chat-server" "node$i" || return 1
	echo "$pid"
}

nginx_pid() { # the master of OUR nginx (-c DIR/nginx.conf), never the packaged service
	local pid
	[ -s "$DIR/nginx.pid" ] || return 1
	pid=$(tr -dc '0-9' <"$DIR/nginx.pid")
	alive "$pid" || return 1
	# nginx rewrites its argv into the title "nginx: master process ... -c FILE ..."
	[[ $(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline") == *"-c $DIR/nginx.conf "* ]] || return 1
	echo "$pid"
}

wait_exit() { # wait_exit PID SECONDS: 0 when it exited in time
	local deadline=$((SECONDS + $2))
	while alive "$1"; do
		[ "$SECONDS" -lt "$deadline" ] || return 1
		sleep 0.05
	done
}

stop_pid() { # stop_pid PID NAME [--kill]
	local pid=$1 name=$2
	if [ "${3:-}" = --kill ]; then
		kill -KILL "$pid" 2>/dev/null || true
		wait_exit "$pid" 10 || die "$name ($pid) did not die after SIGKILL"
		return 0
	fi
	kill -TERM "$pid" 2>/dev/null || true
	if ! wait_exit "$pid" "$STOP_TIMEOUT"; then
		log "$name ($pid) did not stop within ${STOP_TIMEOUT}s, killing it"
		kill -KILL "$pid" 2>/dev/null || true
		wait_exit "$pid" 10 || true
	fi
}

node_args() { # node_args I: the command line of node I, one argument a line
	local i=$1 addr admin web
	addr=NODE${i}_ADDR admin=NODE${i}_ADMIN web=NODE${i}_WEB
	# Each node its own web port (the default :8080 would be every node's);
	# none for a cluster.env written before nodes had one.
	printf '%s\n' "$DIR/chat-server" -listen "${!addr}" -node "node$i" \
		-db "mysql:$MYSQL_DSN" -redis "$REDIS_ADDR" -admin "${!admin}" "-web=${!web:-}"
	if [ -n "${TLS:-}" ]; then printf '%s\n' -tls-cert "$TLS_CERT" -tls-key "$TLS_KEY"; fi
	if [ -s "$DIR/node-args" ]; then cat "$DIR/node-args"; fi
}

launch_node() { # launch_node I: start node I in the background, record its pid
	local i=$1 args=() a
	while IFS= read -r a; do args+=("$a"); done < <(node_args "$i")
	echo "--- $(date '+%F %T') start: ${args[*]}" >>"$DIR/node$i.log"
	# Own session, no inherited stdio: nothing that started this script (a Go
	# test's exec.Command, a terminal) waits for or signals the node.
	setsid "${args[@]}" </dev/null >>"$DIR/node$i.log" 2>&1 &
	local pid=$!
	echo "$pid" >"$DIR/node$i.pid"
	setv "NODE${i}_PID" "$pid"
}

wait_node() { # wait_node I: until /healthz says 200; fail if the node exits
	local i=$1 pidv=NODE${i}_PID admin=NODE${i}_ADMIN code=000
	local deadline=$((SECONDS + START_TIMEOUT))
	while :; do
		code=$(http_status "${!admin}" /healthz)
		[ "$code" = 200 ] && return 0
		if ! alive "${!pidv}"; then
			log "node$i exited during start-up; tail of $DIR/node$i.log:"
			tail -n 20 "$DIR/node$i.log" >&2 || true
			return 1
		fi
		if [ "$SECONDS" -ge "$deadline" ]; then
			log "node$i: /healthz on ${!admin} is $code, not 200, after ${START_TIMEOUT}s; tail of $DIR/node$i.log:"
			tail -n 20 "$DIR/node$i.log" >&2 || true
			return 1
		fi
		sleep 0.1
	done
}

# --- commands ----------------------------------------------------------------------

# parse_opts "$@": -d DIR, -n N, -p PORT, -w PORT, --tls CERT KEY, --kill, --purge, -- REST
OPT_DIR= OPT_N=3 OPT_PORT= OPT_WEB_PORT= OPT_KILL= OPT_PURGE= OPT_TLS_CERT= OPT_TLS_KEY= REST=() POS=()
parse_opts() {
	while [ $# -gt 0 ]; do
		case $1 in
		-d) [ $# -ge 2 ] || usage; OPT_DIR=$2; shift 2 ;;
		-t | --tls) [ $# -ge 3 ] || usage; OPT_TLS_CERT=$2 OPT_TLS_KEY=$3; shift 3 ;;
		-n) [ $# -ge 2 ] || usage; OPT_N=$2; shift 2 ;;
		-p) [ $# -ge 2 ] || usage; OPT_PORT=$2; shift 2 ;;
		-w) [ $# -ge 2 ] || usage; OPT_WEB_PORT=$2; shift 2 ;;
		--kill) OPT_KILL=--kill; shift ;;
		--purge) OPT_PURGE=1; shift ;;
		--) shift; REST=("$@"); break ;;
		-h | --help) usage ;;
		-*) log "unknown option $1"; usage ;;
		*) POS+=("$1"); shift ;;
		esac
	done
}

UP_OK=
cleanup_failed_up() {
	local rc=$?
	if [ -z "$UP_OK" ] && [ -n "$DIR" ]; then
		log "start-up failed: stopping what was started (logs kept in $DIR)"
		cmd_down >/dev/null 2>&1 || true
	fi
	exit "$rc"
}

cmd_up() {
	case $OPT_N in '' | *[!0-9]* | 0) die "-n wants a positive number, not '$OPT_N'" ;; esac
	[ ${#POS[@]} -eq 0 ] || usage
	resolve_dir "$OPT_DIR"
	if load_env && { nginx_pid >/dev/null || any_node_alive; }; then
		die "a cluster is already running in $DIR (scripts/cluster.sh down -d $DIR first)"
	fi
	ENV_KEYS=()
	unset TLS TLS_CERT TLS_KEY # a previous run's, from load_env
	if [ -n "$OPT_TLS_CERT" ]; then
		local f
		for f in "$OPT_TLS_CERT" "$OPT_TLS_KEY"; do
			[ -f "$f" ] && [ -r "$f" ] || die "--tls: cannot read $f"
		done
		setv TLS 1
		setv TLS_CERT "$(abs_path "$OPT_TLS_CERT")"
		setv TLS_KEY "$(abs_path "$OPT_TLS_KEY")"
		for f in "$TLS_CERT" "$TLS_KEY"; do
			# nginx.conf names them in double quotes, where these would be
			# read as an escape or a variable
			case $f in *[\"\\\$]*) die "--tls: nginx cannot be given a file name with \", \\ or \$ in it: $f" ;; esac
		done
	fi
	rm -f "$DIR/cluster.env" "$DIR"/node*.pid "$DIR/nginx.pid"
	ensure_nginx
	trap cleanup_failed_up EXIT
	setv DIR "$DIR"

	log "building the server: go build -tags server -o $DIR/chat-server ."
	(cd "$ROOT" && go build -tags server -o "$DIR/chat-server" .) || die "go build failed"
	if [ ${#REST[@]} -gt 0 ]; then printf '%s\n' "${REST[@]}" >"$DIR/node-args"; else : >"$DIR/node-args"; fi

	# the services first, each on a free port when we start it
	if [ -n "${CHAT_MYSQL:-}" ]; then
		setv MYSQL_DSN "$CHAT_MYSQL"
		setv MYSQL_STARTED ""
	else
		free_port
		local p=$FREE_PORT
		setv MYSQL_STARTED 1 # before the start: `down` stops a half-started one too
		setv MYSQL_DIR "$DIR/mysql"
		save_env
		"$ROOT/scripts/mariadb.sh" start "$DIR/mysql" "$p" || die "could not start MariaDB"
		setv MYSQL_DSN "root:@tcp(127.0.0.1:$p)/chat"
	fi
	if [ -n "${CHAT_REDIS:-}" ]; then
		setv REDIS_ADDR "$CHAT_REDIS"
		setv REDIS_STARTED ""
	else
		free_port
		local p=$FREE_PORT
		setv REDIS_STARTED 1
		setv REDIS_DIR "$DIR/redis"
		save_env
		"$ROOT/scripts/redis.sh" start "$DIR/redis" "$p" || die "could not start Redis"
		setv REDIS_ADDR "127.0.0.1:$p"
	fi

	# the nodes
	setv NODES "$OPT_N"
	local i
	for ((i = 1; i <= OPT_N; i++)); do
		setv "NODE${i}_NAME" "node$i"
		free_port
		setv "NODE${i}_ADDR" "127.0.0.1:$FREE_PORT"
		free_port
		setv "NODE${i}_WEB" "127.0.0.1:$FREE_PORT"
		free_port
		setv "NODE${i}_ADMIN" "127.0.0.1:$FREE_PORT"
		setv "NODE${i}_LOG" "$DIR/node$i.log"
		setv "NODE${i}_STOP" "$SELF stop-node $i -d $DIR"
		setv "NODE${i}_KILL" "$SELF stop-node $i -d $DIR --kill"
		setv "NODE${i}_START" "$SELF start-node $i -d $DIR"
		: >"$DIR/node$i.log"
		launch_node "$i"
		save_env
	done
	for ((i = 1; i <= OPT_N; i++)); do
		wait_node "$i" || die "node$i did not come up"
	done

	# nginx in front
	local scheme=http
	pick_port -p "$OPT_PORT" 8000
	setv FRONT "127.0.0.1:$PICKED"
	pick_port -w "$OPT_WEB_PORT" 8080 "$PICKED"
	setv WEB_FRONT "127.0.0.1:$PICKED"
	if [ -n "${TLS:-}" ]; then scheme=https; fi
	setv WEB_URL "$scheme://$WEB_FRONT/"
	render_nginx
	mkdir -p "$DIR/nginx-temp" # the http block's temporary files (the template says why)
	"$NGINX" -t -q -c "$DIR/nginx.conf" -p "$DIR/" -e "$DIR/nginx-error.log" ||
		die "nginx -t rejected $DIR/nginx.conf"
	setsid "$NGINX" -c "$DIR/nginx.conf" -p "$DIR/" -e "$DIR/nginx-error.log" -g 'daemon off;' \
		</dev/null >>"$DIR/nginx.out" 2>&1 &
	local npid=$!
	setv NGINX_PID "$npid"
	save_env
	local deadline=$((SECONDS + START_TIMEOUT))
	until accepts "$FRONT" && accepts "$WEB_FRONT" && nginx_pid >/dev/null; do
		if ! alive "$npid"; then
			log "nginx exited during start-up; tail of $DIR/nginx-error.log:"
			tail -n 20 "$DIR/nginx-error.log" >&2 || true
			die "nginx did not start"
		fi
		[ "$SECONDS" -lt "$deadline" ] || die "nginx does not accept on $FRONT and $WEB_FRONT after ${START_TIMEOUT}s"
		sleep 0.1
	done
	save_env
	UP_OK=1
	trap - EXIT
	summary
}

# pick_port OPTION VALUE DEFAULT [TAKEN]: set PICKED to the port of a front:
# VALUE when it is a number (0: a free port), else DEFAULT when it is free,
# else a free port. TAKEN is the other front's port, not bound yet.
PICKED=
pick_port() {
	local opt=$1 value=$2 def=$3 taken=${4:-}
	case $value in
	'')
		if [ "$def" != "$taken" ] && port_free "$def"; then
			PICKED=$def
			return
		fi
		log "port $def is taken: nginx listens on a free port instead ($opt)"
		;;
	0) ;;
	*[!0-9]*) die "$opt wants a port number, not '$value'" ;;
	*)
		[ "$value" != "$taken" ] || die "$opt $value: the other front has that port"
		port_free "$value" || die "port $value is taken ($opt 0 picks a free one)"
		PICKED=$value
		return
		;;
	esac
	free_port
	PICKED=$FREE_PORT
}

abs_path() { # abs_path FILE: FILE with an absolute directory
	printf '%s/%s\n' "$(cd "$(dirname "$1")" && pwd -P)" "$(basename "$1")"
}

# render_nginx: DIR/nginx.conf from deploy/nginx-chat.conf.tmpl (its header
# lists the placeholders)
render_nginx() {
	local servers="" web_servers="" i addr web line scheme=http
	for ((i = 1; i <= NODES; i++)); do
		addr=NODE${i}_ADDR web=NODE${i}_WEB
		servers+="        server ${!addr} max_fails=1 fail_timeout=5s;  # node$i"$'\n'
		web_servers+="        server ${!web} max_fails=1 fail_timeout=5s;  # node$i"$'\n'
	done
	servers=${servers%$'\n'} web_servers=${web_servers%$'\n'}
	if [ -n "${TLS:-}" ]; then scheme=https; fi
	[ -f "$ROOT/deploy/nginx-chat.conf.tmpl" ] || die "missing $ROOT/deploy/nginx-chat.conf.tmpl"
	: >"$DIR/nginx.conf"
	while IFS= read -r line || [ -n "$line" ]; do
		case $line in
		@TLS@*)
			[ -n "${TLS:-}" ] || continue
			line=${line#@TLS@}
			;;
		@PLAIN@*)
			[ -z "${TLS:-}" ] || continue
			line=${line#@PLAIN@}
			;;
		esac
		case ${line//[[:space:]]/} in
		@UPSTREAM_SERVERS@) line=$servers ;;
		@WEB_UPSTREAM_SERVERS@) line=$web_servers ;;
		esac
		line=${line//@LOAD_MODULE@/$LOAD_MODULE}
		line=${line//@WEB_FRONT@/$WEB_FRONT}
		line=${line//@FRONT@/$FRONT}
		line=${line//@WEB_SCHEME@/$scheme}
		line=${line//@TLS_CERT@/${TLS_CERT:-}}
		line=${line//@TLS_KEY@/${TLS_KEY:-}}
		printf '%s\n' "$line" >>"$DIR/nginx.conf"
	done <"$ROOT/deploy/nginx-chat.conf.tmpl"
}

any_node_alive() {
	local i
	for ((i = 1; i <= ${NODES:-0}; i++)); do
		node_pid "$i" >/dev/null && return 0
	done
	return 1
}

summary() {
	echo "chat cluster in $DIR"
	if [ -n "${TLS:-}" ]; then
		echo "  front (nginx):  $FRONT   pid ${NGINX_PID:-?}   (openssl s_client -connect $FRONT)"
	else
		echo "  front (nginx):  $FRONT   pid ${NGINX_PID:-?}   (nc ${FRONT%:*} ${FRONT##*:})"
	fi
	if [ -n "${WEB_URL:-}" ]; then
		echo "  web (nginx):    $WEB_URL   (open in a browser; WebSocket ${WEB_URL/http/ws}ws)"
	fi
	local i n w a p
	for ((i = 1; i <= NODES; i++)); do
		n=NODE${i}_ADDR w=NODE${i}_WEB a=NODE${i}_ADMIN p=NODE${i}_PID
		echo "  node$i:          ${!n}   web ${!w:-off}   admin http://${!a}/healthz   pid ${!p}   log $DIR/node$i.log"
	done
	echo "  MySQL:          $MYSQL_DSN${MYSQL_STARTED:+ (private, $DIR/mysql)}"
	echo "  Redis:          $REDIS_ADDR${REDIS_STARTED:+ (private, $DIR/redis)}"
	if [ -n "${TLS:-}" ]; then
		echo "  TLS:            every node, cert $TLS_CERT, key $TLS_KEY; nginx passes the client port's TLS through and terminates the web front's with the same files; after a renewal kill -HUP each node and nginx (${NGINX_PID:-?})"
		echo "  browser:        $WEB_URL once the browser trusts the root that signed the cert"
		echo "  client:         go run -tags client . -ca ROOT.pem ${FRONT%:*} ${FRONT##*:}   (ROOT.pem: the CA that signed the cert; a self-signed cert is its own: -ca $TLS_CERT)"
	fi
	echo "  state:          $DIR/cluster.env"
	echo "  stop:           $SELF down -d $DIR"
}

cmd_down() {
	[ -n "$DIR" ] || { [ ${#POS[@]} -eq 0 ] || usage; resolve_dir "$OPT_DIR"; }
	if [ ! -d "$DIR" ]; then
		log "no cluster in $DIR"
		return 0
	fi
	load_env || true
	local pid i
	if pid=$(nginx_pid); then
		stop_pid "$pid" nginx # SIGTERM = fast shutdown: the proxied connections close
		log "stopped nginx ($pid)"
	fi
	# the nodes' pid files, even those the env file does not know yet
	for f in "$DIR"/node*.pid; do
		[ -e "$f" ] || continue
		i=${f##*/node}
		i=${i%.pid}
		case $i in '' | *[!0-9]*) continue ;; esac
		if pid=$(node_pid "$i"); then
			stop_pid "$pid" "node$i"
			log "stopped node$i ($pid)"
		fi
		rm -f "$f"
	done
	if [ -n "${REDIS_STARTED:-}" ]; then "$ROOT/scripts/redis.sh" stop "$DIR/redis" || true; fi
	if [ -n "${MYSQL_STARTED:-}" ]; then "$ROOT/scripts/mariadb.sh" stop "$DIR/mysql" || true; fi
	rm -f "$DIR/nginx.pid"
	if [ -n "$OPT_PURGE" ]; then
		rm -rf "$DIR"
		log "removed $DIR"
	fi
}

cmd_status() {
	[ ${#POS[@]} -eq 0 ] || usage
	resolve_dir "$OPT_DIR"
	load_env || die "no cluster in $DIR (no cluster.env)"
	summary
	local bad=0 i pid a code
	if pid=$(nginx_pid) && accepts "$FRONT"; then
		echo "  nginx: running ($pid), $FRONT accepts"
		if [ -n "${WEB_FRONT:-}" ]; then
			local scheme=http
			if [ -n "${TLS:-}" ]; then scheme=https; fi
			code=$(http_status "$WEB_FRONT" / "$scheme")
			echo "  web front: $WEB_URL answers $code"
			[ "$code" = 200 ] || bad=1
		fi
	else
		echo "  nginx: DOWN"
		bad=1
	fi
	for ((i = 1; i <= NODES; i++)); do
		a=NODE${i}_ADMIN
		if pid=$(node_pid "$i"); then
			code=$(http_status "${!a}" /healthz)
			echo "  node$i: running ($pid), /healthz $code"
			[ "$code" = 200 ] || bad=1
		else
			echo "  node$i: DOWN"
			bad=1
		fi
	done
	return "$bad"
}

node_index() { # node_index: the I of stop-node/start-node, checked against NODES
	[ ${#POS[@]} -eq 1 ] || usage
	local i=${POS[0]}
	case $i in '' | *[!0-9]*) die "node number wanted, not '$i'" ;; esac
	[ "$i" -ge 1 ] && [ "$i" -le "$NODES" ] || die "no node$i (the cluster has $NODES)"
	echo "$i"
}

cmd_stop_node() {
	resolve_dir "$OPT_DIR"
	load_env || die "no cluster in $DIR (no cluster.env)"
	local i pid
	i=$(node_index)
	if ! pid=$(node_pid "$i"); then
		log "node$i is not running"
		return 0
	fi
	stop_pid "$pid" "node$i" "$OPT_KILL"
	if [ -n "$OPT_KILL" ]; then log "node$i ($pid) killed"; else log "node$i ($pid) stopped"; fi
}

cmd_start_node() {
	resolve_dir "$OPT_DIR"
	load_env || die "no cluster in $DIR (no cluster.env)"
	local i pid
	i=$(node_index)
	if pid=$(node_pid "$i"); then
		log "node$i is already running ($pid)"
		return 0
	fi
	launch_node "$i"
	save_env
	wait_node "$i" || die "node$i did not come up"
	local a=NODE${i}_ADDR p=NODE${i}_PID
	log "node$i started on ${!a} (pid ${!p})"
}

[ $# -ge 1 ] || usage
cmd=$1
shift
parse_opts "$@"
if [ -n "$OPT_TLS_CERT" ] && [ "$cmd" != up ]; then die "--tls goes with up (start-node reuses what up recorded)"; fi
case $cmd in
up) cmd_up ;;
down) cmd_down ;;
status) cmd_status ;;
stop-node) cmd_stop_node ;;
start-node) cmd_start_node ;;
install)
	ensure_nginx
	log "nginx with the stream module: $NGINX"
	;;
-h | --help | help) usage ;;
*) usage ;;
esac

#!/usr/bin/env bash
# The benchmark suite BENCHMARKS.md cites: fixed configurations of the load
# generator (go run -tags bench .), each against a fresh server, run several
# times; the medians go into one Markdown table.
#
#   scripts/bench.sh [-r RUNS] [-d SECONDS] [-o OUTDIR] [SUITE...]
#
#   -r RUNS     runs of each measurement (default 5), all on the same server:
#               nothing restarts between runs; each run registers new users
#               (the load generator's random name prefix)
#   -d SECONDS  measured time of each run (default 10), after a 2 s warm-up;
#               set-up and the drain after sending stops come on top
#   -o OUTDIR   binaries, stores, logs and results (default
#               ${TMPDIR:-/tmp}/chat-bench-DATE-TIME); must not hold results yet
#   SUITE       ceiling, sqlite, mysql, conns, cluster, closed; default: all, in that order
#
# Suites, and the measurements (table rows) each makes. Servers run with
# -rate 0 -bcrypt-cost 4 -log-level warn. "pairs" is 50 sender/recipient
# pairs, each sender keeping 64 requests in flight (-pairs 50 -window 64);
# "group" is 10 groups of 100 members, 1 sender each, window 64.
#   ceiling  ceiling-pairs, ceiling-group: the in-memory ceiling server of
#            ceiling_test.go (no store, no bcrypt, no Redis): what the wire
#            and connection code allow, to compare the real server against
#   sqlite   sqlite-pairs, sqlite-pairs-devices2 (-devices 2),
#            sqlite-pairs-ws (pairs over the web port's WebSocket, -addr
#            ws://HOST:PORT/ws), sqlite-group, sqlite-login (-concurrency 8
#            register+login loops): each on a fresh server and SQLite file
#   mysql    mysql-pairs, mysql-group, mysql-pairs-rate10k (pairs held at
#            10,000 msgs/s in all: latency at a set rate), mysql-login: each
#            on a fresh server on database chatbench, dropped and recreated
#            first
#   conns    conns-idle-rI: 15,000 idle logged-in connections (CHAT_BENCH_CONNS
#            sets the number) held for 150 s (CHAT_BENCH_CONNS_HOLD), past
#            the runtime's 2-minute forced GC, on a fresh SQLite server for
#            each run (a row each): the server's RSS growth per connection
#            at the end of the hold
#   closed   without pipelining: 100 pairs at window 1 (each sender waits
#            for its message's delivery), 100-byte texts, on the ceiling,
#            SQLite (TCP and WebSocket) and MySQL; and the open loop of 100
#            senders at 100 msgs/s each (-rate 10000) on the same
#   cluster  scripts/cluster.sh up: 3 nodes behind nginx on MySQL database
#            chatbench_cluster (dropped and recreated first) and Redis, with
#            a -redis-prefix of its own. cluster-pairs-cross: pairs whose two
#            ends are on different nodes (-addr NODE1,NODE2,NODE3), CPU of
#            all three nodes; cluster-pairs-same: the baseline, every client
#            on node1 (CPU of node1); the -rate5k pair: both held at 5,000
#            msgs/s, so that their latencies differ by what crossing adds
#
# The table (also OUTDIR/summary.md): one row per measurement; each figure
# is the median over its runs, taken on its own:
#   runs         runs with a result (of RUNS when some gave none)
#   stored/s     messages the server stored (ok replies), per measured second
#   delivered/s  pushes recipients received, per measured second
#   e2e p50 p99 p99.9  ms from a send to the recipient's push, on the load
#                generator's clock
#   CPU/1k       server CPU seconds (user+system, all its nodes) per 1,000
#                stored messages (group: per 1k deliveries under "other")
#   lost         messages stored but never delivered (conns: connections
#                lost), summed over runs
#   load         /proc/loadavg (1, 5, 15 min) after the last run
#   other        conns: server RSS growth per connection; login: registers/s
#                and logins/s; failed runs
# The load generator runs on the same machine and shares its cores with the
# server (and with MariaDB, Redis, nginx, and whatever else runs): figures
# are for the whole box, comparable with each other, not with other hosts.
#
# Output in OUTDIR: BENCH-I.txt (run I's full stdout; its last line is the
# JSON report), BENCH-I.err (its progress lines), BENCH.server.log,
# results.jsonl (every run's JSON plus "bench", "suite", "run", "exit"),
# measurements.tsv, summary.md; the binaries chat-server, chat-bench,
# chat.test, built once at the start from the working tree (the cluster
# suite's nodes run the copy scripts/cluster.sh builds in OUTDIR/cluster).
#
# Exit status: 1 when any run lost messages or connections or failed, or a
# measurement could not be set up (every measurement still runs first);
# 2 for a bad command line. Ctrl-C or SIGTERM stops every process it started
# (servers, the load generator, the cluster, a private MariaDB) and exits.
#
# Services:
#   CHAT_MYSQL  go-sql-driver DSN of an account that may create and drop
#               databases; its database name is replaced by chatbench or
#               chatbench_cluster. Unset: root:@tcp(127.0.0.1:3306)/ when that
#               answers, else a private MariaDB in OUTDIR/mysql
#               (scripts/mariadb.sh), stopped at the end
#   CHAT_REDIS  host:port for the cluster; unset: 127.0.0.1:6379 when it
#               answers PING, else cluster.sh starts a private one
# Needs go, python3, the mariadb (or mysql) client, and for the cluster
# nginx with its stream module (cluster.sh installs them as root).
set -euo pipefail

PATH="$PATH:/usr/sbin:/usr/local/sbin:/sbin"
if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then
	PATH="/usr/local/go/bin:$PATH"
fi

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
SELF="$ROOT/scripts/bench.sh"
ALL_SUITES=(ceiling sqlite mysql conns cluster closed)
SERVER_FLAGS=(-rate 0 -bcrypt-cost 4 -log-level warn -web=) # -web= : no web port
PAIRS=(-scenario pairs -pairs 50 -window 64)
GROUP=(-scenario group -groups 10 -members 100 -senders 1 -window 64)
LOGIN=(-scenario login -concurrency 8)
# Without pipelining (the closed suite): 100 pairs, each sender waiting for
# its message's delivery before the next (window 1), 100-byte texts; and the
# open loop of 100 senders at 100 msgs/s each.
CLOSED=(-scenario pairs -pairs 100 -window 1 -size 100)
OPEN10K=(-scenario pairs -pairs 100 -window 64 -size 100 -rate 10000)
CONNS=${CHAT_BENCH_CONNS:-15000}
CONNS_HOLD=${CHAT_BENCH_CONNS_HOLD:-150} # seconds
START_TIMEOUT=60 # seconds for a server to accept
STOP_TIMEOUT=30  # seconds before SIGKILL (graceful shutdown takes up to 20 s)

usage() { # usage [STATUS]
	sed -n '2,15p' "$SELF" | sed 's/^# \{0,1\}//' >&2
	exit "${1:-2}"
}

log() { echo "bench.sh: $*" >&2; }
die() {
	log "$*"
	exit 1
}

# --- options ---------------------------------------------------------------

RUNS=5 DURATION=10 OUTDIR=
while getopts ':r:d:o:h' opt; do
	case $opt in
	r) RUNS=$OPTARG ;;
	d) DURATION=$OPTARG ;;
	o) OUTDIR=$OPTARG ;;
	h) usage 0 ;;
	:) log "-$OPTARG needs a value"; usage ;;
	*) log "unknown option -$OPTARG"; usage ;;
	esac
done
shift $((OPTIND - 1))
case $RUNS in '' | *[!0-9]* | 0) log "-r wants a positive number, not '$RUNS'"; usage ;; esac
case $DURATION in '' | *[!0-9]* | 0) log "-d wants a positive number of seconds, not '$DURATION'"; usage ;; esac
case $CONNS in '' | *[!0-9]* | 0) log "CHAT_BENCH_CONNS wants a positive number, not '$CONNS'"; usage ;; esac
case $CONNS_HOLD in '' | *[!0-9]* | 0) log "CHAT_BENCH_CONNS_HOLD wants a positive number of seconds, not '$CONNS_HOLD'"; usage ;; esac
RUNS=$((10#$RUNS)) DURATION=$((10#$DURATION)) CONNS=$((10#$CONNS)) CONNS_HOLD=$((10#$CONNS_HOLD))
if [ "$RUNS" -eq 0 ] || [ "$DURATION" -eq 0 ] || [ "$CONNS" -eq 0 ]; then log "-r, -d and CHAT_BENCH_CONNS must not be 0"; usage; fi
SUITES=()
for s in "$@"; do
	case " ${ALL_SUITES[*]} " in *" $s "*) ;; *) log "unknown suite '$s'"; usage ;; esac
	case " ${SUITES[*]} " in *" $s "*) ;; *) SUITES+=("$s") ;; esac
done
if [ ${#SUITES[@]} -eq 0 ]; then SUITES=("${ALL_SUITES[@]}"); fi
wants() { case " ${SUITES[*]} " in *" $1 "*) return 0 ;; esac; return 1; }

command -v go >/dev/null 2>&1 || die "go is not on PATH"
command -v python3 >/dev/null 2>&1 || die "python3 is not on PATH (it writes results.jsonl and the table)"
OUTDIR=${OUTDIR:-${TMPDIR:-/tmp}/chat-bench-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUTDIR"
OUTDIR=$(cd "$OUTDIR" && pwd -P)
if [ -e "$OUTDIR/results.jsonl" ] || [ -e "$OUTDIR/measurements.tsv" ]; then
	die "$OUTDIR already holds results: give another -o"
fi
RESULTS=$OUTDIR/results.jsonl
MEASUREMENTS=$OUTDIR/measurements.tsv
: >"$RESULTS"
: >"$MEASUREMENTS"

# Each idle connection costs a descriptor in the server and one in the load
# generator, both children of this shell.
NOFILE=$((CONNS + 5000))
if [ "$NOFILE" -lt 20000 ]; then NOFILE=20000; fi
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt "$NOFILE" ]; then
	ulimit -n "$NOFILE" 2>/dev/null ||
		log "warning: could not raise ulimit -n to $NOFILE (it is $(ulimit -n), hard $(ulimit -Hn)): large runs may fail"
fi

# --- python: results, the table, MySQL DSNs -------------------------------

PY=$(
	cat <<'EOF'
import json, statistics, sys

def dsn_split(dsn):
    # as go-sql-driver's ParseDSN: the last '/' starts the database name
    i = dsn.rfind("/")
    if i < 0:
        sys.exit("bench.sh: MySQL DSN without /DBNAME: " + dsn)
    db, q, params = dsn[i + 1:].partition("?")
    return dsn[:i], db, q + params

def dsn_db(dsn, db):
    head, _, params = dsn_split(dsn)
    print(head + "/" + db + params)

def dsn_name(dsn):
    print(dsn_split(dsn)[1])

def dsn_cli(dsn):
    # [user[:password]@][net[(addr)]]/db -> mariadb client options, one a line
    head = dsn_split(dsn)[0]
    user = pw = ""
    net, addr = "tcp", ""
    j = head.rfind("@")
    if j >= 0:
        user, _, pw = head[:j].partition(":")
        head = head[j + 1:]
    if head:
        k = head.find("(")
        if k >= 0 and head.endswith(")"):
            net, addr = head[:k], head[k + 1:-1]
        else:
            net = head
    out = []
    if user:
        out.append("--user=" + user)
    if pw:
        out.append("--password=" + pw)
    if net == "unix":
        out += ["--protocol=SOCKET", "--socket=" + (addr or "/tmp/mysql.sock")]
    else:
        host, port = addr or "127.0.0.1:3306", "3306"
        if host.startswith("["):
            h, _, rest = host[1:].partition("]")
            host, port = h, rest.lstrip(":") or port
        elif ":" in host:
            host, port = host.rsplit(":", 1)
        out += ["--protocol=TCP", "--host=" + (host or "127.0.0.1"), "--port=" + port]
    print("\n".join(out))

def record(out, results, bench, suite, run, runs, rc):
    # Append run's JSON line (the last line of its stdout) to results.jsonl,
    # say how it went; exit 1 when it failed or lost something.
    rc, rep = int(rc), None
    try:
        with open(out) as f:
            lines = [l for l in f.read().splitlines() if l.strip()]
        if lines:
            rep = json.loads(lines[-1])
    except (OSError, ValueError):
        rep = None
    tag = "%s run %s/%s" % (bench, run, runs)
    if not isinstance(rep, dict):
        print("bench.sh: %s: FAILED: no result (exit %d)" % (tag, rc), file=sys.stderr)
        return 1
    rep = dict({"bench": bench, "suite": suite, "run": int(run), "exit": rc}, **rep)
    with open(results, "a") as f:
        f.write(json.dumps(rep) + "\n")
    sc = rep.get("scenario")
    if sc in ("pairs", "group"):
        e2e = rep.get("e2e_latency_ms") or {}
        desc = "stored %.0f/s, delivered %.0f/s, e2e p50 %s p99 %s ms, lost %d, out of order %d" % (
            rep.get("stored_per_s", 0), rep.get("delivered_per_s", 0), e2e.get("p50"), e2e.get("p99"),
            rep.get("lost", 0), rep.get("out_of_order", 0))
    elif sc == "conns":
        desc = "%d connections, %d lost, RSS %.1f KiB per connection" % (
            rep.get("conns", 0), rep.get("conns_lost", 0), rep.get("server_rss_per_conn", 0) / 1024)
    else:
        desc = "register %.0f/s, login %.0f/s" % (rep.get("registers_per_s", 0), rep.get("logins_per_s", 0))
    bad = rc != 0 or rep.get("lost", 0) > 0 or rep.get("conns_lost", 0) > 0 or rep.get("out_of_order", 0) > 0
    print("bench.sh: %s: %s%s" % (tag, desc, " -- FAILED (exit %d)" % rc if bad else ""), file=sys.stderr)
    return 1 if bad else 0

def num(v, fmt):
    return "-" if v is None else fmt.format(v)

def summary(outdir, title, subtitle):
    reps = {}
    with open(outdir + "/results.jsonl") as f:
        for line in f:
            if line.strip():
                r = json.loads(line)
                reps.setdefault(r["bench"], []).append(r)
    head = ["measurement", "runs", "stored/s", "delivered/s", "e2e p50", "p99", "p99.9",
            "CPU/1k", "lost", "load", "other"]
    rows = []
    with open(outdir + "/measurements.tsv") as f:
        for line in f:
            bench, planned, failed, load, note = (line.rstrip("\n").split("\t") + [""] * 5)[:5]
            rs = reps.get(bench, [])
            def med(*path):
                vals = []
                for r in rs:
                    v = r
                    for p in path:
                        v = v.get(p) if isinstance(v, dict) else None
                    if isinstance(v, (int, float)):
                        vals.append(v)
                return statistics.median(vals) if vals else None
            def total(key):
                return sum(r.get(key, 0) or 0 for r in rs)
            sc = rs[0].get("scenario") if rs else ""
            runs = str(len(rs)) if len(rs) == int(planned) else "%d/%s" % (len(rs), planned)
            row = [bench, runs] + ["-"] * 9
            other = []
            if sc in ("pairs", "group"):
                row[2] = num(med("stored_per_s"), "{:,.0f}")
                row[3] = num(med("delivered_per_s"), "{:,.0f}")
                row[4] = num(med("e2e_latency_ms", "p50"), "{:.2f}")
                row[5] = num(med("e2e_latency_ms", "p99"), "{:.2f}")
                row[6] = num(med("e2e_latency_ms", "p99.9"), "{:.2f}")
                row[7] = num(med("server_cpu_s_per_1k_msgs"), "{:.4f}")
                row[8] = str(total("lost"))
                if sc == "group" and med("server_cpu_s_per_1k_deliveries") is not None:
                    other.append("CPU/1k deliveries " + num(med("server_cpu_s_per_1k_deliveries"), "{:.5f}"))
                if rs and rs[0].get("rate_target"):
                    other.append("at -rate %.0f" % rs[0]["rate_target"])
                if total("out_of_order") or total("duplicated"):
                    other.append("%d out of order, %d duplicated" % (total("out_of_order"), total("duplicated")))
            elif sc == "conns":
                row[8] = "%d conns" % total("conns_lost")
                rss = med("server_rss_per_conn")
                other.append("%s connections, RSS/conn %s" % (
                    num(med("conns"), "{:,.0f}"), "-" if rss is None else "%.1f KiB" % (rss / 1024)))
            elif sc == "login":
                other.append("register %s/s, login %s/s" % (
                    num(med("registers_per_s"), "{:,.0f}"), num(med("logins_per_s"), "{:,.0f}")))
            row[9] = load or "-"
            if int(failed or 0):
                other.append("%s of %s runs failed" % (failed, planned))
            if note:
                other.append(note)
            row[10] = "; ".join(other) or "-"
            rows.append(row)
    width = [max(len(r[i]) for r in [head] + rows) for i in range(len(head))]
    right = set(range(1, 9))
    def fmt(r):
        return "| " + " | ".join(c.rjust(w) if i in right else c.ljust(w)
                                 for i, (c, w) in enumerate(zip(r, width))) + " |"
    sep = "|" + "|".join(("-" * (w + 1) + ":") if i in right else ("-" * (w + 2))
                         for i, w in enumerate(width)) + "|"
    text = "\n".join([title, "", subtitle, "", fmt(head), sep] + [fmt(r) for r in rows]) + "\n"
    with open(outdir + "/summary.md", "w") as f:
        f.write(text)
    sys.stdout.write(text)
    return 0

cmd, args = sys.argv[1], sys.argv[2:]
rc = {"dsn-db": dsn_db, "dsn-name": dsn_name, "dsn-cli": dsn_cli,
      "record": record, "summary": summary}[cmd](*args)
sys.exit(rc or 0)
EOF
)
py() { python3 -c "$PY" "$@"; }

# --- processes ------------------------------------------------------------

alive() { # alive PID: running and not a zombie
	[ -n "$1" ] || return 1
	kill -0 "$1" 2>/dev/null || return 1
	[ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]
}

stop_pid() { # stop_pid PID: SIGTERM, SIGKILL after STOP_TIMEOUT, reap it
	local pid=$1 deadline=$((SECONDS + STOP_TIMEOUT))
	kill -TERM "$pid" 2>/dev/null || true
	while alive "$pid"; do
		if [ "$SECONDS" -ge "$deadline" ]; then
			log "process $pid did not stop within ${STOP_TIMEOUT}s: killing it"
			kill -KILL "$pid" 2>/dev/null || true
			break
		fi
		sleep 0.05
	done
	wait "$pid" 2>/dev/null || true
}

accepts() { # accepts HOST:PORT
	# shellcheck disable=SC2016 # the inner shell expands them
	timeout 2 bash -c 'exec 3<>"/dev/tcp/${1%:*}/${1##*:}"' _ "$1" 2>/dev/null
}

redis_answers() { # redis_answers HOST:PORT: PING gets +PONG
	# shellcheck disable=SC2016 # the inner shell expands them
	timeout 2 bash -c 'exec 3<>"/dev/tcp/${1%:*}/${1##*:}" && printf "PING\r\n" >&3 &&
		IFS= read -r l <&3 && [[ $l == +PONG* ]]' _ "$1" 2>/dev/null
}

# shellcheck source=scripts/ports.sh
. "$ROOT/scripts/ports.sh"

SRV_PID='' SRV_ADDR='' SRV_WEB='' LG_PID='' CLUSTER_DIR='' MYSQL_PRIVATE='' FAILED=''
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	set +e
	case $rc in 130 | 143) log "interrupted: stopping what this run started; partial results in $OUTDIR" ;; esac
	if [ -n "$LG_PID" ]; then stop_pid "$LG_PID"; fi
	if [ -n "$SRV_PID" ]; then stop_pid "$SRV_PID"; fi
	if [ -n "$CLUSTER_DIR" ]; then
		"$ROOT/scripts/cluster.sh" down -d "$CLUSTER_DIR" >>"$OUTDIR/cluster.log" 2>&1 ||
			log "warning: scripts/cluster.sh down -d $CLUSTER_DIR failed"
	fi
	if [ -n "$MYSQL_PRIVATE" ]; then
		"$ROOT/scripts/mariadb.sh" stop "$OUTDIR/mysql" >>"$OUTDIR/mariadb.log" 2>&1 ||
			log "warning: could not stop the MariaDB in $OUTDIR/mysql"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# start_server BENCH server DB | start_server BENCH ceiling: a fresh server
# (or ceiling) on a free port, its output in OUTDIR/BENCH.server.log; sets
# SRV_PID and SRV_ADDR once it accepts. With WS set (server only), the
# server has a web port too, SRV_WEB, and both must accept.
start_server() {
	local bench=$1 kind=$2 logf="$OUTDIR/$1.server.log" deadline web=()
	free_port
	SRV_ADDR=127.0.0.1:$FREE_PORT SRV_WEB=
	if [ -n "${WS:-}" ]; then
		free_port
		SRV_WEB=127.0.0.1:$FREE_PORT
		web=(-web "$SRV_WEB") # after SERVER_FLAGS' -web=: the last one counts
	fi
	if [ "$kind" = ceiling ]; then
		echo "--- $(date '+%F %T') CHAT_CEILING_ADDR=$SRV_ADDR $OUTDIR/chat.test -test.run ^TestCeilingServe\$" >"$logf"
		CHAT_CEILING_ADDR=$SRV_ADDR "$OUTDIR/chat.test" -test.run '^TestCeilingServe$' \
			-test.count=1 -test.timeout=0 -test.v </dev/null >>"$logf" 2>&1 &
	else
		echo "--- $(date '+%F %T') $OUTDIR/chat-server -listen $SRV_ADDR -db $3 ${SERVER_FLAGS[*]} ${web[*]}" >"$logf"
		"$OUTDIR/chat-server" -listen "$SRV_ADDR" -db "$3" "${SERVER_FLAGS[@]}" "${web[@]}" </dev/null >>"$logf" 2>&1 &
	fi
	SRV_PID=$!
	deadline=$((SECONDS + START_TIMEOUT))
	until accepts "$SRV_ADDR" && { [ -z "$SRV_WEB" ] || accepts "$SRV_WEB"; }; do
		if ! alive "$SRV_PID" || [ "$SECONDS" -ge "$deadline" ]; then
			log "$bench: the server did not come up on $SRV_ADDR; tail of $logf:"
			tail -n 15 "$logf" >&2 || true
			stop_server
			return 1
		fi
		sleep 0.1
	done
}

stop_server() {
	if [ -n "$SRV_PID" ]; then stop_pid "$SRV_PID"; fi
	SRV_PID=
}

# --- measurements -----------------------------------------------------------

# note BENCH FAILED-RUNS NOTE: the measurement's line in measurements.tsv
note() {
	local load
	load=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown)
	printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$RUNS" "$2" "$load" "$3" >>"$MEASUREMENTS"
}

setup_failed() { # setup_failed BENCH WHY
	log "$1: FAILED: $2"
	FAILED=1
	note "$1" 0 "not run: $2"
}

# measure SUITE NAME ADDRS PIDS LOADGEN-FLAGS...: RUNS runs of the load
# generator against a running server
measure() {
	local suite=$1 name=$2 addrs=$3 pids=$4 i rc out failed=0
	shift 4
	local bench=$suite-$name
	log "$bench: $RUNS run(s) of chat-bench $* against $addrs"
	for ((i = 1; i <= RUNS; i++)); do
		out=$OUTDIR/$bench-$i.txt
		rc=0
		"$OUTDIR/chat-bench" -addr "$addrs" -pid "$pids" -duration "${DURATION}s" -warmup 2s "$@" \
			</dev/null >"$out" 2>"${out%.txt}.err" &
		LG_PID=$!
		wait "$LG_PID" || rc=$?
		LG_PID=
		if ! py record "$out" "$RESULTS" "$bench" "$suite" "$i" "$RUNS" "$rc"; then
			failed=$((failed + 1))
			FAILED=1
			if [ "$rc" -ne 0 ]; then
				log "tail of ${out%.txt}.err:"
				tail -n 5 "${out%.txt}.err" >&2 || true
			fi
		fi
	done
	note "$bench" "$failed" ""
}

# server_measure SUITE NAME DB|ceiling LOADGEN-FLAGS...: a fresh server, RUNS
# runs, stop it. With WS set, the load generator speaks WebSocket to the
# server's web port.
server_measure() {
	local suite=$1 name=$2 db=$3
	shift 3
	local bench=$suite-$name kind=server
	if [ "$db" = ceiling ]; then kind=ceiling; fi
	if start_server "$bench" "$kind" "$db"; then
		local addr=$SRV_ADDR
		if [ -n "$SRV_WEB" ]; then addr=ws://$SRV_WEB/ws; fi
		measure "$suite" "$name" "$addr" "$SRV_PID" "$@"
		stop_server
	else
		setup_failed "$bench" "the server did not start (see $bench.server.log)"
	fi
}

sqlite_measure() { # sqlite_measure SUITE NAME LOADGEN-FLAGS...
	local f="$OUTDIR/$1-$2.db"
	rm -f "$f" "$f-wal" "$f-shm"
	server_measure "$1" "$2" "sqlite:$f" "${@:3}"
}

# --- MySQL and Redis -------------------------------------------------------

MYSQL_CLIENT=
MYSQL_BASE=
mysql_sql() { # mysql_sql DSN SQL
	local opts=()
	mapfile -t opts < <(py dsn-cli "$1")
	"$MYSQL_CLIENT" --no-defaults "${opts[@]}" --connect-timeout=3 -N -B -e "$2" </dev/null
}

# ensure_mysql: set MYSQL_BASE, a DSN whose server answers, starting a
# private MariaDB when CHAT_MYSQL is unset and 127.0.0.1:3306 does not answer
ensure_mysql() {
	[ -z "$MYSQL_BASE" ] || return 0
	MYSQL_CLIENT=$(command -v mariadb || command -v mysql || true)
	if [ -n "${CHAT_MYSQL:-}" ]; then
		[ -n "$MYSQL_CLIENT" ] || { log "no mariadb or mysql client to drop and create databases"; return 1; }
		mysql_sql "$CHAT_MYSQL" 'SELECT 1' >/dev/null || { log "CHAT_MYSQL ($CHAT_MYSQL) does not answer"; return 1; }
		MYSQL_BASE=$CHAT_MYSQL
		return 0
	fi
	local dsn='root:@tcp(127.0.0.1:3306)/chatbench'
	if [ -n "$MYSQL_CLIENT" ] && mysql_sql "$dsn" 'SELECT 1' >/dev/null 2>&1; then
		MYSQL_BASE=$dsn
		return 0
	fi
	free_port
	log "no MySQL answers on 127.0.0.1:3306: starting a private MariaDB on port $FREE_PORT (log $OUTDIR/mariadb.log)"
	MYSQL_PRIVATE=1 # before the start: the cleanup stops a half-started one too
	"$ROOT/scripts/mariadb.sh" start "$OUTDIR/mysql" "$FREE_PORT" >>"$OUTDIR/mariadb.log" 2>&1 ||
		{ log "scripts/mariadb.sh start failed; tail of $OUTDIR/mariadb.log:"; tail -n 15 "$OUTDIR/mariadb.log" >&2; return 1; }
	MYSQL_CLIENT=$(command -v mariadb || command -v mysql || true)
	MYSQL_BASE="root:@tcp(127.0.0.1:$FREE_PORT)/chatbench"
}

recreate_db() { # recreate_db DSN: drop and create its database
	local name
	name=$(py dsn-name "$1")
	mysql_sql "$1" "DROP DATABASE IF EXISTS \`$name\`; CREATE DATABASE \`$name\` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
}

# check_headroom NEED: warn when the MySQL server has fewer than NEED
# connections to spare (each server node pools up to 32); a shared server
# others use answers "Too many connections" and the runs fail
check_headroom() {
	local max used
	max=$(mysql_sql "$MYSQL_BASE" 'SELECT @@max_connections' 2>/dev/null) || return 0
	used=$(mysql_sql "$MYSQL_BASE" "SHOW STATUS LIKE 'Threads_connected'" 2>/dev/null | awk '{print $2}') || return 0
	case $max$used in '' | *[!0-9]*) return 0 ;; esac
	if [ $((max - used)) -lt "$1" ]; then
		log "warning: MySQL has $((max - used)) of its $max connections free (others use $used), the servers may open $1: runs may fail with 'Too many connections'"
	fi
}

mysql_measure() { # mysql_measure NAME DSN LOADGEN-FLAGS...
	local name=$1 dsn=$2
	shift 2
	if ! recreate_db "$dsn"; then
		setup_failed "mysql-$name" "could not drop and recreate database $(py dsn-name "$dsn")"
		return 0
	fi
	server_measure mysql "$name" "mysql:$dsn" "$@"
}

# --- suites -----------------------------------------------------------------

suite_ceiling() {
	server_measure ceiling pairs ceiling "${PAIRS[@]}"
	server_measure ceiling group ceiling "${GROUP[@]}"
}

suite_sqlite() {
	sqlite_measure sqlite pairs "${PAIRS[@]}"
	sqlite_measure sqlite pairs-devices2 "${PAIRS[@]}" -devices 2
	WS=1 sqlite_measure sqlite pairs-ws "${PAIRS[@]}"
	sqlite_measure sqlite group "${GROUP[@]}"
	sqlite_measure sqlite login "${LOGIN[@]}"
}

suite_mysql() {
	if ! ensure_mysql; then
		local n
		for n in pairs group pairs-rate10k login; do setup_failed "mysql-$n" "no MySQL"; done
		return 0
	fi
	local dsn
	dsn=$(py dsn-db "$MYSQL_BASE" chatbench)
	check_headroom 40
	mysql_measure pairs "$dsn" "${PAIRS[@]}"
	mysql_measure pairs-devices2 "$dsn" "${PAIRS[@]}" -devices 2
	mysql_measure group "$dsn" "${GROUP[@]}"
	mysql_measure pairs-rate10k "$dsn" "${PAIRS[@]}" -rate 10000
	mysql_measure login "$dsn" "${LOGIN[@]}"
}

suite_closed() {
	server_measure closed ceiling-w1 ceiling "${CLOSED[@]}"
	sqlite_measure closed sqlite-w1 "${CLOSED[@]}"
	WS=1 sqlite_measure closed sqlite-w1-ws "${CLOSED[@]}"
	server_measure closed ceiling-open10k ceiling "${OPEN10K[@]}"
	sqlite_measure closed sqlite-open10k "${OPEN10K[@]}"
	if ensure_mysql; then
		local dsn
		dsn=$(py dsn-db "$MYSQL_BASE" chatbench)
		mysql_measure closed-w1 "$dsn" "${CLOSED[@]}"
		mysql_measure closed-open10k "$dsn" "${OPEN10K[@]}"
	else
		setup_failed mysql-closed-w1 "no MySQL"
		setup_failed mysql-closed-open10k "no MySQL"
	fi
}

suite_conns() {
	# One fresh server a run, each its own row: a second run on the same
	# server reuses memory the first one's connections left, and reads near
	# 0. The hold outlasts the runtime's 2-minute forced GC, so the figure
	# is what idle connections keep, not the garbage of logging them in.
	local runs=$RUNS i
	for ((i = 1; i <= runs; i++)); do
		RUNS=1 sqlite_measure conns "idle-r$i" -scenario conns -conns "$CONNS" -duration "${CONNS_HOLD}s"
	done
}

env_get() { # env_get FILE KEY: KEY's value in a cluster.env
	(
		# shellcheck disable=SC1090
		. "$1"
		printf '%s' "${!2:-}"
	)
}

suite_cluster() {
	local benches=(cluster-pairs-cross cluster-pairs-same cluster-pairs-cross-rate5k cluster-pairs-same-rate5k) b
	if ! ensure_mysql; then
		for b in "${benches[@]}"; do setup_failed "$b" "no MySQL"; done
		return 0
	fi
	local dsn
	dsn=$(py dsn-db "$MYSQL_BASE" chatbench_cluster)
	check_headroom 100
	if ! recreate_db "$dsn"; then
		for b in "${benches[@]}"; do setup_failed "$b" "could not drop and recreate database chatbench_cluster"; done
		return 0
	fi
	local envs=("CHAT_MYSQL=$dsn") redis=${CHAT_REDIS:-}
	if [ -z "$redis" ] && redis_answers 127.0.0.1:6379; then redis=127.0.0.1:6379; fi
	if [ -n "$redis" ]; then envs+=("CHAT_REDIS=$redis"); fi
	# a prefix of its own: other clusters may share this Redis
	local prefix
	prefix=bench$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')
	CLUSTER_DIR=$OUTDIR/cluster
	log "cluster: scripts/cluster.sh up -n 3 -d $CLUSTER_DIR -p 0 -w 0 (Redis ${redis:-private}, prefix $prefix; log $OUTDIR/cluster.log)"
	if ! env -u CHAT_REDIS "${envs[@]}" "$ROOT/scripts/cluster.sh" up -n 3 -d "$CLUSTER_DIR" -p 0 -w 0 -- \
		"${SERVER_FLAGS[@]}" -redis-prefix "$prefix" </dev/null >>"$OUTDIR/cluster.log" 2>&1; then
		log "tail of $OUTDIR/cluster.log:"
		tail -n 15 "$OUTDIR/cluster.log" >&2 || true
		for b in "${benches[@]}"; do setup_failed "$b" "scripts/cluster.sh up failed (see cluster.log)"; done
		"$ROOT/scripts/cluster.sh" down -d "$CLUSTER_DIR" >>"$OUTDIR/cluster.log" 2>&1 || true
		CLUSTER_DIR=
		return 0
	fi
	local e="$CLUSTER_DIR/cluster.env" a1 a2 a3 p1 p2 p3
	a1=$(env_get "$e" NODE1_ADDR) a2=$(env_get "$e" NODE2_ADDR) a3=$(env_get "$e" NODE3_ADDR)
	p1=$(env_get "$e" NODE1_PID) p2=$(env_get "$e" NODE2_PID) p3=$(env_get "$e" NODE3_PID)
	measure cluster pairs-cross "$a1,$a2,$a3" "$p1,$p2,$p3" "${PAIRS[@]}"
	measure cluster pairs-same "$a1" "$p1" "${PAIRS[@]}"
	# What crossing nodes adds to latency, at a rate both can hold.
	measure cluster pairs-cross-rate5k "$a1,$a2,$a3" "$p1,$p2,$p3" "${PAIRS[@]}" -rate 5000
	measure cluster pairs-same-rate5k "$a1" "$p1" "${PAIRS[@]}" -rate 5000
	"$ROOT/scripts/cluster.sh" down -d "$CLUSTER_DIR" >>"$OUTDIR/cluster.log" 2>&1 ||
		log "warning: scripts/cluster.sh down -d $CLUSTER_DIR failed"
	CLUSTER_DIR=
}

# --- main -------------------------------------------------------------------

log "results in $OUTDIR"
COMMIT=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ -n "$(git -C "$ROOT" status --porcelain --untracked-files=no 2>/dev/null)" ]; then
	COMMIT="$COMMIT + uncommitted changes"
fi
if wants sqlite || wants mysql || wants conns || wants closed; then
	log "building $OUTDIR/chat-server (go build -tags server)"
	(cd "$ROOT" && go build -tags server -o "$OUTDIR/chat-server" .) || die "go build -tags server failed"
fi
log "building $OUTDIR/chat-bench (go build -tags bench)"
(cd "$ROOT" && go build -tags bench -o "$OUTDIR/chat-bench" .) || die "go build -tags bench failed"
if wants ceiling || wants closed; then
	log "building $OUTDIR/chat.test (go test -c)"
	(cd "$ROOT" && go test -c -o "$OUTDIR/chat.test" .) || die "go test -c failed"
fi

CPU=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo 2>/dev/null || true)
TITLE="## scripts/bench.sh $(date '+%F %H:%M')"
SUBTITLE="commit $COMMIT; $(go env GOVERSION); $(nproc) cores${CPU:+ ($CPU)}; $(uname -sr).
\`scripts/bench.sh -r $RUNS -d $DURATION ${SUITES[*]}\`: medians of $RUNS run(s), each 2 s warm-up + $DURATION s measured; the load generator shares the cores with the server."

for s in "${SUITES[@]}"; do
	"suite_$s"
done

echo
py summary "$OUTDIR" "$TITLE" "$SUBTITLE"
echo
log "every run in $OUTDIR (results.jsonl, BENCH-I.txt); the table in $OUTDIR/summary.md"
if [ -n "$FAILED" ]; then
	log "FAILED: some runs lost messages or connections, or failed (see above)"
	exit 1
fi

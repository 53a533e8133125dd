#!/usr/bin/env bash
# The test command: runs ALL tests of the repository.
#
#   scripts/test.sh                 gofmt, vet, build, go test -race, fuzzing
#   scripts/test.sh -run TestX -v   extra args go to `go test`; the fuzz phase
#                                   is skipped then
#
# Services:
#   CHAT_TEST_MYSQL  go-sql-driver DSN of an account allowed to CREATE/DROP
#                    DATABASE, e.g. root:@tcp(127.0.0.1:3306)/test. When unset,
#                    a private MariaDB is started (scripts/mariadb.sh) and
#                    CHAT_TEST_MYSQL, CHAT_TEST_MYSQL_CTL, CHAT_TEST_MYSQL_DIR,
#                    CHAT_TEST_MYSQL_PORT are exported so tests can stop/start
#                    it ("$CHAT_TEST_MYSQL_CTL" stop|start DIR [PORT]).
#   CHAT_TEST_REDIS  host:port of a Redis. When unset, a private redis-server is
#                    started (scripts/redis.sh) and its address exported.
#   CHAT_TEST_REQUIRE=1 is exported: tests fail instead of skipping when a
#                    service is missing.
#   CHAT_FUZZTIME    -fuzztime per fuzz test (default 5s).
#   CHAT_PORTS       LO-HI: the ports of the services and clusters the run
#                    starts are taken from this range (scripts/ports.sh);
#                    servers the tests start in-process listen on port 0.
#
# Installs (as root, only what is missing, saying so first): mariadb-server
# and redis-server unless CHAT_TEST_MYSQL / CHAT_TEST_REDIS are set,
# nginx with libnginx-mod-stream for the cluster tests, and chromium for the
# browser tests (scripts/chromium.sh).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd -P)

if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then
	PATH="/usr/local/go/bin:$PATH"
fi
export PATH

T0=$SECONDS
PHASE=setup
PASSED=()
WORK=
MYSQL_STARTED=
REDIS_STARTED=
CHILD= # pid (and process group) of the running go command, see run()

say() { echo "==> test.sh: $*"; }

cleanup() {
	local rc=$? show_logs=
	trap - EXIT INT TERM
	set +e
	if [ -n "$CHILD" ]; then # interrupted while a go command was running
		kill -TERM -- "-$CHILD" 2>/dev/null || kill -TERM "$CHILD" 2>/dev/null
		local i
		for ((i = 0; i < 50; i++)); do
			kill -0 "$CHILD" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL -- "-$CHILD" 2>/dev/null || kill -KILL "$CHILD" 2>/dev/null
	fi
	if [ -n "$REDIS_STARTED" ]; then
		"$ROOT/scripts/redis.sh" stop "$WORK/redis" >/dev/null 2>&1 ||
			echo "test.sh: warning: could not stop redis in $WORK/redis" >&2
	fi
	if [ -n "$MYSQL_STARTED" ]; then
		"$ROOT/scripts/mariadb.sh" stop "$WORK/mysql" >/dev/null 2>&1 ||
			echo "test.sh: warning: could not stop mariadb in $WORK/mysql" >&2
	fi
	if [ -n "$WORK" ] && [ -d "$WORK" ]; then
		if [ "$rc" -eq 0 ]; then
			rm -rf "$WORK"
		else
			echo "test.sh: kept temp dir $WORK" >&2
			case $PHASE in setup | test | fuzz) show_logs=1 ;; *) show_logs= ;; esac
			if [ -n "$show_logs" ] && [ -f "$WORK/mysql/error.log" ]; then
				echo "--- tail of $WORK/mysql/error.log" >&2
				tail -n 30 "$WORK/mysql/error.log" >&2
			fi
			if [ -n "$show_logs" ] && [ -f "$WORK/redis/redis.log" ]; then
				echo "--- tail of $WORK/redis/redis.log" >&2
				tail -n 30 "$WORK/redis/redis.log" >&2
			fi
		fi
	fi
	local took=$((SECONDS - T0))
	if [ "$rc" -eq 0 ]; then
		echo "==> test.sh: PASS (${PASSED[*]}) in ${took}s"
	else
		echo "==> test.sh: FAIL in phase '$PHASE' (exit $rc) after ${took}s; passed: ${PASSED[*]:-none}" >&2
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# run CMD...: run a (long) command in its own process group and wait for it,
# so that INT/TERM sent to test.sh runs the cleanup at once and can stop the
# command together with its children (e.g. the test binary).
run() {
	if command -v setsid >/dev/null 2>&1; then
		setsid "$@" &
	else
		"$@" &
	fi
	CHILD=$!
	local rc=0
	wait "$CHILD" || rc=$?
	CHILD=
	return "$rc"
}

phase() { # phase NAME: start a new phase
	PHASE=$1
	say "$1"
}
done_phase() { PASSED+=("$PHASE"); }

die() {
	echo "test.sh: $*" >&2
	exit 1
}

# shellcheck source=scripts/ports.sh
. "$ROOT/scripts/ports.sh"

# start_service CTL DIR: start a private instance on a free port,
# retrying with another port when the chosen one was taken meanwhile.
# Sets SERVICE_PORT; free_port never hands out a port twice.
SERVICE_PORT=
start_service() {
	local ctl=$1 dir=$2 attempt port out
	for attempt in 1 2 3; do
		free_port
		port=$FREE_PORT
		if out=$("$ctl" start "$dir" "$port" 2>&1); then
			[ -z "$out" ] || echo "$out"
			SERVICE_PORT=$port
			return 0
		fi
		echo "$out" >&2
		case $out in
		*"already in use"* | *"answered by another"*) echo "test.sh: port $port taken, retrying ($attempt)" >&2 ;;
		*) return 1 ;;
		esac
	done
	return 1
}

phase setup
command -v go >/dev/null 2>&1 || {
	echo "test.sh: go not found (PATH=$PATH)" >&2
	exit 1
}
say "$(go version)"

# What this run may install, said before anything is: the scripts below
# install a Debian package only when it is missing, and only as root.
wanted=()
[ -n "${CHAT_TEST_MYSQL:-}" ] || wanted+=("mariadb-server (a private MariaDB; CHAT_TEST_MYSQL names yours instead)")
[ -n "${CHAT_TEST_REDIS:-}" ] || wanted+=("redis-server (a private Redis; CHAT_TEST_REDIS names yours instead)")
wanted+=("nginx libnginx-mod-stream (the cluster tests' front)")
wanted+=("chromium (the browser tests; CHAT_CHROMIUM names another browser)")
wanted+=("nodejs (the tests of the web client's logic, web/test/)")
say "needs, and installs with apt-get when missing and run as root:"
for w in "${wanted[@]}"; do say "  $w"; done
[ -z "${CHAT_PORTS:-}" ] || say "ports of the services and clusters it starts: $CHAT_PORTS (CHAT_PORTS)"

if [ -z "${CHAT_TEST_MYSQL:-}" ] || [ -z "${CHAT_TEST_REDIS:-}" ]; then
	WORK=$(mktemp -d "${TMPDIR:-/tmp}/chat-test.XXXXXX")
	WORK=$(cd "$WORK" && pwd -P)
fi

if [ -n "${CHAT_TEST_MYSQL:-}" ]; then
	say "using MySQL from CHAT_TEST_MYSQL"
else
	say "starting private MariaDB"
	MYSQL_STARTED=1
	start_service "$ROOT/scripts/mariadb.sh" "$WORK/mysql"
	export CHAT_TEST_MYSQL="root:@tcp(127.0.0.1:$SERVICE_PORT)/test"
	export CHAT_TEST_MYSQL_CTL="$ROOT/scripts/mariadb.sh"
	export CHAT_TEST_MYSQL_DIR="$WORK/mysql"
	export CHAT_TEST_MYSQL_PORT="$SERVICE_PORT"
	say "CHAT_TEST_MYSQL=$CHAT_TEST_MYSQL (dir $CHAT_TEST_MYSQL_DIR)"
fi

if [ -n "${CHAT_TEST_REDIS:-}" ]; then
	say "using Redis from CHAT_TEST_REDIS"
else
	say "starting private Redis"
	REDIS_STARTED=1
	start_service "$ROOT/scripts/redis.sh" "$WORK/redis"
	export CHAT_TEST_REDIS="127.0.0.1:$SERVICE_PORT"
	say "CHAT_TEST_REDIS=$CHAT_TEST_REDIS"
fi
say "nginx for the cluster tests: scripts/cluster.sh install"
run "$ROOT/scripts/cluster.sh" install
say "chromium for the browser tests: scripts/chromium.sh install"
run "$ROOT/scripts/chromium.sh" install
if ! command -v node >/dev/null 2>&1; then
	[ "$(id -u)" -eq 0 ] || die "node is missing; as root run: apt-get update && apt-get install -y nodejs"
	say "node is missing: installing the Debian package nodejs with apt-get"
	run apt-get update -q
	DEBIAN_FRONTEND=noninteractive run apt-get install -y -q --no-install-recommends nodejs
fi
say "node for the web client's tests: $(command -v node) $(node --version)"
if [ -z "${CHAT_SCREENSHOTS:-}" ]; then
	CHAT_SCREENSHOTS=$(mktemp -d "${TMPDIR:-/tmp}/chat-screenshots.XXXXXX")
fi
export CHAT_SCREENSHOTS
say "the browser tests' screenshots go to $CHAT_SCREENSHOTS (CHAT_SCREENSHOTS)"
export CHAT_TEST_REQUIRE=1
done_phase

phase gofmt
unformatted=$(gofmt -l . 2>&1) || {
	echo "$unformatted" >&2
	exit 1
}
if [ -n "$unformatted" ]; then
	echo "gofmt -l found unformatted files (run gofmt -w):" >&2
	echo "$unformatted" >&2
	exit 1
fi
done_phase

# optional build flavours: tag -> marker file at the root
extra_tags=()
[ -f main_client.go ] && extra_tags+=(client)
[ -f main_bench.go ] && extra_tags+=(bench)

phase vet
say "go vet ./..."
run go vet ./...
for tag in server "${extra_tags[@]}"; do
	say "go vet -tags $tag ./..."
	run go vet -tags "$tag" ./...
done
done_phase

phase build
for tag in server "${extra_tags[@]}"; do
	say "go build -tags $tag -o /dev/null ."
	run go build -tags "$tag" -o /dev/null .
done
done_phase

phase test
if [ "$(go env CGO_ENABLED)" != 1 ]; then
	echo "test.sh: warning: CGO_ENABLED is not 1; -race needs cgo and a C compiler (apt-get install gcc)" >&2
fi
say "go test -race -count=1 -timeout 30m ./... $*"
run go test -race -count=1 -timeout 30m ./... "$@"
say "node --test web/test/ (the web client's logic, without a browser)"
run node --test web/test/
done_phase

# fuzz_one NAME DIR: fuzz one target. Go 1.26's fuzzing coordinator can
# report "context deadline exceeded" as a failure when -fuzztime runs out
# while a worker is busy (go.dev/issue/75804, fixed in Go 1.27): such a run,
# with no failing input written, is tried once more. A real finding always
# writes its input under testdata/fuzz and fails at once.
fuzz_one() {
	local out rc=0
	out=$(mktemp)
	run go test -run '^$' -fuzz "^$1\$" -fuzztime "${CHAT_FUZZTIME:-5s}" "./$2" </dev/null >"$out" 2>&1 || rc=$?
	cat "$out"
	if [ "$rc" -ne 0 ] && grep -q 'context deadline exceeded' "$out" && ! grep -q 'Failing input written' "$out"; then
		say "$1: the fuzzing coordinator's deadline race (go.dev/issue/75804), no failing input: once more"
		rc=0
		run go test -run '^$' -fuzz "^$1\$" -fuzztime "${CHAT_FUZZTIME:-5s}" "./$2" </dev/null || rc=$?
	fi
	rm -f "$out"
	return "$rc"
}

if [ $# -gt 0 ]; then
	say "extra arguments given: skipping the fuzz phase"
else
	phase fuzz
	found=0
	shopt -s nullglob
	for dir in . internal/*/; do
		dir=${dir%/}
		test_files=("$dir"/*_test.go)
		[ ${#test_files[@]} -gt 0 ] || continue
		while IFS= read -r name; do
			[ -n "$name" ] || continue
			found=1
			say "go test -run '^\$' -fuzz '^$name\$' -fuzztime ${CHAT_FUZZTIME:-5s} ./$dir"
			fuzz_one "$name" "$dir"
		done < <(sed -nE 's/^func (Fuzz[A-Za-z0-9_]*)\(.*/\1/p' "${test_files[@]}" | sort -u)
	done
	shopt -u nullglob
	[ "$found" = 1 ] || say "no fuzz tests found"
	done_phase
fi

PHASE=done

# shellcheck shell=bash disable=SC2034 # FREE_PORT is read by the scripts that source this
# Free TCP ports for the scripts that start servers (sourced by
# scripts/test.sh, scripts/cluster.sh and scripts/bench.sh; the caller
# defines die). CHAT_PORTS=LO-HI confines them to a range.

port_free() { # port_free PORT: nothing listens on 127.0.0.1:PORT (or any address)
	if command -v python3 >/dev/null 2>&1; then
		python3 - "$1" 2>/dev/null <<'EOF'
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
finally:
    s.close()
EOF
		return
	fi
	! timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null
}

USED_PORTS=" "
FREE_PORT=
# port_range: print "LO HI", the range free ports are taken from: CHAT_PORTS
# (LO-HI) when set, else the ports below the kernel's ephemeral range (so
# that a node's port, free while the node is stopped, is not taken by some
# client connection's local port).
port_range() {
	local lo=20000 hi=32767 elo ehi
	if [ -n "${CHAT_PORTS:-}" ]; then
		if [[ $CHAT_PORTS =~ ^([0-9]+)-([0-9]+)$ ]] && ((BASH_REMATCH[1] >= 1024 && BASH_REMATCH[1] <= BASH_REMATCH[2] && BASH_REMATCH[2] <= 65535)); then
			echo "${BASH_REMATCH[1]} ${BASH_REMATCH[2]}"
			return 0
		fi
		die "CHAT_PORTS=$CHAT_PORTS: want LO-HI, 1024 <= LO <= HI <= 65535"
	fi
	if read -r elo ehi 2>/dev/null </proc/sys/net/ipv4/ip_local_port_range; then
		if [ "$elo" -gt 11024 ]; then
			lo=10000 hi=$((elo - 1))
		elif [ "$ehi" -lt 64511 ]; then
			lo=$((ehi + 1)) hi=65535
		fi
	fi
	echo "$lo $hi"
}

# free_port: set FREE_PORT to a free port of port_range, never one this run
# already handed out.
free_port() {
	local lo hi p i range
	range=$(port_range) || exit 1
	read -r lo hi <<<"$range"
	for ((i = 0; i < 500; i++)); do
		p=$((lo + (RANDOM * 32768 + RANDOM) % (hi - lo + 1)))
		case $USED_PORTS in *" $p "*) continue ;; esac
		if port_free "$p"; then
			USED_PORTS+="$p "
			FREE_PORT=$p
			return 0
		fi
	done
	die "no free port found in $lo-$hi"
}

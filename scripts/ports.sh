# shellcheck shell=bash disable=SC2034 # FREE_PORT is read by the scripts that source this
# Free TCP ports for the scripts that start servers (sourced by
# scripts/cluster.sh and scripts/bench.sh; the caller defines die).

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
# free_port: set FREE_PORT to a free port below the kernel's ephemeral range (so that a
# node's port, free while the node is stopped, is not taken by some client
# connection's local port), never one this run already handed out.
free_port() {
	local lo=20000 hi=32767 elo ehi p i
	if read -r elo ehi 2>/dev/null </proc/sys/net/ipv4/ip_local_port_range; then
		if [ "$elo" -gt 11024 ]; then
			lo=10000 hi=$((elo - 1))
		elif [ "$ehi" -lt 64511 ]; then
			lo=$((ehi + 1)) hi=65535
		fi
	fi
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

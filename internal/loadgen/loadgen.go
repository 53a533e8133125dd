// Package loadgen is the load generator (go run -tags bench .): a client of
// the wire protocol that drives a server, a node or an nginx front, and
// reports throughput, latency on its own clock, and what was lost,
// duplicated or reordered.
//
// The exported surface is what its callers need and no more: Run is the
// bench build's main (and what the root package's scenario tests call);
// Report and LatencySummary are the schema of the JSON line Run prints
// last; Histogram is the latency histogram, for benchmarks that time
// something else.
//
// Files, from the bottom: frame.go what it reads from frames (with
// wire.Scanner) and writes into texts; ws.go a WebSocket made to look like
// a TCP stream; conn.go one connection (over either) and its setup calls;
// hist.go and seq.go the accounting; proc.go the process figures;
// report.go the report; config.go the command line; run.go what a pairs or
// group run shares (clients, sending, reading, the measured window);
// scenarios.go the four scenarios.
package loadgen

import (
	"errors"
	"flag"
	"fmt"
	"io"
)

// Run is the load generator's command line: it parses args (-h lists every
// flag, on stderr), runs the scenario, prints progress lines on stderr
// (none with -quiet) and the report on stdout, its last line the Report as
// JSON. Exit status: 0, or 1 when a message was lost or reordered (lost
// to its user, or missed by one of the user's live sessions), a connection
// was lost, or the run could not be set up, 2 for a bad command line.
func Run(args []string, stdout, stderr io.Writer) int {
	cfg, err := parseConfig(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "chat-bench: %v\n", err)
		return 2
	}
	progress := stderr
	if cfg.quiet {
		progress = io.Discard
	}
	if len(cfg.pids) > 0 {
		// A wrong -pid would otherwise only leave the server's figures out.
		if _, err := readProcs(cfg.pids); err != nil {
			fmt.Fprintf(stderr, "chat-bench: %v\n", err)
			return 2
		}
	}
	rep, err := runScenario(cfg, progress)
	if err != nil {
		fmt.Fprintf(stderr, "chat-bench: %v\n", err)
		return 1
	}
	rep.print(stdout)
	if rep.Lost > 0 || rep.SessionMissed > 0 || rep.OutOfOrder > 0 || rep.ConnsLost > 0 {
		return 1
	}
	return 0
}

func runScenario(cfg config, progress io.Writer) (*Report, error) {
	switch cfg.scenario {
	case "pairs":
		return runPairs(cfg, progress)
	case "group":
		return runGroup(cfg, progress)
	case "conns":
		return runConns(cfg, progress)
	default:
		return runLogin(cfg, progress)
	}
}

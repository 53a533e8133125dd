package loadgen

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// The report's last line is its JSON, which scripts/bench.sh reads.
func TestReportPrintEndsWithJSON(t *testing.T) {
	for _, rep := range []Report{
		{Scenario: "pairs", Addrs: []string{"a:1"}, Clients: 2, Stored: 10, Acked: 10, Expected: 10,
			StoreLatency: &LatencySummary{N: 10, P50: 1}, E2ELatency: &LatencySummary{N: 10, P50: 2}, Errors: map[string]int64{"rate_limited": 1}},
		{Scenario: "conns", Addrs: []string{"a:1"}, Conns: 40, ServerRSSLogin: 1 << 20, ServerPIDs: []int{7}, Errors: map[string]int64{}},
		{Scenario: "login", Addrs: []string{"a:1"}, Registers: 3, Logins: 3, LoginLatency: &LatencySummary{N: 3}, Errors: map[string]int64{}},
	} {
		var out bytes.Buffer
		rep.print(&out)
		lines := strings.Split(strings.TrimSpace(out.String()), "\n")
		var back Report
		if err := json.Unmarshal([]byte(lines[len(lines)-1]), &back); err != nil {
			t.Fatalf("%s: last line not JSON: %v\n%s", rep.Scenario, err, out.String())
		}
		if !reflect.DeepEqual(back, rep) {
			t.Errorf("%s: JSON gives back\n%+v\nwant\n%+v", rep.Scenario, back, rep)
		}
	}
}

func TestBytesIEC(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 10239: "10239 B", 10240: "10.0 KiB", 16 << 20: "16 MiB"} {
		if got := bytesIEC(n); got != want {
			t.Errorf("bytesIEC(%d) = %q, want %q", n, got, want)
		}
	}
}

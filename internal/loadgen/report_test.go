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
		{Scenario: "pairs", Addrs: []string{"a:1", "ws://b:2/ws"}, Transport: "tcp+ws", Clients: 6, Users: 4, Devices: 2, Stored: 10, Delivered: 10, SessionDeliveries: 20,
			Acked: 10, Expected: 10, DeliveredTotal: 10, SessionExpected: 20, SessionDeliveriesTotal: 19, SessionMissed: 1,
			StoreLatency: &LatencySummary{N: 10, P50: 1}, E2ELatency: &LatencySummary{N: 10, P50: 2}, E2ELastLatency: &LatencySummary{N: 9, P50: 3},
			Errors: map[string]int64{}},
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

// The sessions' figures are printed only when a user has several.
func TestReportPrintSessions(t *testing.T) {
	rep := Report{Scenario: "pairs", Addrs: []string{"a:1"}, Clients: 2, Users: 2, Devices: 1, Errors: map[string]int64{}}
	var out bytes.Buffer
	rep.print(&out)
	text := out.String()[:strings.LastIndex(strings.TrimSpace(out.String()), "\n")] // the JSON has every field
	if strings.Contains(text, "session") || strings.Contains(text, "users,") {
		t.Errorf("one device per user prints session figures:\n%s", text)
	}
	rep.Devices, rep.Clients, rep.SessionExpected, rep.SessionDeliveriesTotal, rep.SessionMissed = 2, 3, 8, 7, 1
	rep.E2ELastLatency = &LatencySummary{N: 4, P50: 3, Max: 4}
	out.Reset()
	rep.print(&out)
	for _, want := range []string{"3 clients (2 users, 2 devices per receiving user)", "to sessions", "last session", "to sessions 7 of 8, missed 1"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("no %q in\n%s", want, out.String())
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

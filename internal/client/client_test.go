package client

import (
	"strings"
	"testing"
	"time"
)

func TestParseArgs(t *testing.T) {
	const host = "box"
	tests := []struct {
		args []string
		want Options
		err  bool
	}{
		{nil, Options{Addr: "127.0.0.1:6000", Device: host}, false},
		{[]string{"10.0.0.1:7000"}, Options{Addr: "10.0.0.1:7000", Device: host}, false},
		{[]string{":7000"}, Options{Addr: "127.0.0.1:7000", Device: host}, false},
		{[]string{"127.0.0.1", "8000"}, Options{Addr: "127.0.0.1:8000", Device: host}, false},
		{[]string{"[::1]:6000"}, Options{Addr: "[::1]:6000", Device: host}, false},
		{[]string{"-tls"}, Options{Addr: "127.0.0.1:6000", TLS: true, Device: host}, false},
		{[]string{"-tls", "chat.example.com:6000"}, Options{Addr: "chat.example.com:6000", TLS: true, Device: host}, false},
		{[]string{"--tls", "chat.example.com", "6000"}, Options{Addr: "chat.example.com:6000", TLS: true, Device: host}, false},
		{[]string{"-ca", "ca.pem", "localhost:6000"}, Options{Addr: "localhost:6000", TLS: true, CA: "ca.pem", Device: host}, false},
		{[]string{"-tls", "-ca=ca.pem", ":6000"}, Options{Addr: "127.0.0.1:6000", TLS: true, CA: "ca.pem", Device: host}, false},
		{[]string{"-device", "phone", ":6000"}, Options{Addr: "127.0.0.1:6000", Device: "phone"}, false},
		{[]string{"-device=", ":6000"}, Options{Addr: "127.0.0.1:6000"}, false}, // no device sent
		{[]string{"-device", "é" + strings.Repeat("x", 62)}, Options{Addr: "127.0.0.1:6000", Device: "é" + strings.Repeat("x", 62)}, false},
		{[]string{"-device", strings.Repeat("x", 65)}, Options{}, true},
		{[]string{"-device"}, Options{}, true},
		{[]string{"localhost"}, Options{}, true},
		{[]string{"a", "b", "c"}, Options{}, true},
		{[]string{"-x"}, Options{}, true},
		{[]string{"host", "1:2"}, Options{}, true},
		{[]string{"-ca"}, Options{}, true},
		{[]string{"127.0.0.1:6000", "-tls"}, Options{}, true}, // flags go first
	}
	for _, tt := range tests {
		got, err := parseArgs(tt.args, host)
		if (err != nil) != tt.err || !tt.err && got != tt.want {
			t.Errorf("%q: got %+v, %v", tt.args, got, err)
		}
	}
	for _, h := range []string{"-h", "-help", "--help"} {
		if _, err := parseArgs([]string{h}, host); err != errHelp {
			t.Errorf("%s: %v", h, err)
		}
	}
}

// The default device is the host name, cut to 64 bytes on a character
// boundary.
func TestDeviceName(t *testing.T) {
	long := strings.Repeat("a", 63) + "é" // 65 bytes
	for _, tt := range []struct{ host, want string }{
		{"box", "box"},
		{"", ""},
		{long, strings.Repeat("a", 63)},
		{strings.Repeat("b", 70), strings.Repeat("b", 64)},
		{"bad\xffname", "badname"},
	} {
		if got := deviceName(tt.host); got != tt.want {
			t.Errorf("deviceName(%q) = %q, want %q", tt.host, got, tt.want)
		}
	}
}

// A zero Options field takes its default; a set one wins.
func TestOptionsConfig(t *testing.T) {
	cfg := Options{}.config()
	if cfg.addr != defaultAddr || cfg.settle != 300*time.Millisecond || cfg.backoffMin != 200*time.Millisecond ||
		cfg.backoffMax != 10*time.Second || cfg.giveUp != 2*time.Minute || cfg.pingEvery != 25*time.Second ||
		cfg.readIdle != 70*time.Second || cfg.ackDelay != 100*time.Millisecond || cfg.dialTimeout != 5*time.Second {
		t.Errorf("defaults: %+v", cfg)
	}
	cfg = Options{Addr: "h:1", Settle: 1, BackoffMin: 2, BackoffMax: 3, GiveUp: 4}.config()
	if cfg.addr != "h:1" || cfg.settle != 1 || cfg.backoffMin != 2 || cfg.backoffMax != 3 || cfg.giveUp != 4 {
		t.Errorf("set: %+v", cfg)
	}
}

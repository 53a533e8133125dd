package client

import (
	"testing"
	"time"
)

func TestParseArgs(t *testing.T) {
	tests := []struct {
		args []string
		want Options
		err  bool
	}{
		{nil, Options{Addr: "127.0.0.1:6000"}, false},
		{[]string{"10.0.0.1:7000"}, Options{Addr: "10.0.0.1:7000"}, false},
		{[]string{":7000"}, Options{Addr: "127.0.0.1:7000"}, false},
		{[]string{"127.0.0.1", "8000"}, Options{Addr: "127.0.0.1:8000"}, false},
		{[]string{"[::1]:6000"}, Options{Addr: "[::1]:6000"}, false},
		{[]string{"-tls"}, Options{Addr: "127.0.0.1:6000", TLS: true}, false},
		{[]string{"-tls", "chat.example.com:6000"}, Options{Addr: "chat.example.com:6000", TLS: true}, false},
		{[]string{"--tls", "chat.example.com", "6000"}, Options{Addr: "chat.example.com:6000", TLS: true}, false},
		{[]string{"-ca", "ca.pem", "localhost:6000"}, Options{Addr: "localhost:6000", TLS: true, CA: "ca.pem"}, false},
		{[]string{"-tls", "-ca=ca.pem", ":6000"}, Options{Addr: "127.0.0.1:6000", TLS: true, CA: "ca.pem"}, false},
		{[]string{"localhost"}, Options{}, true},
		{[]string{"a", "b", "c"}, Options{}, true},
		{[]string{"-x"}, Options{}, true},
		{[]string{"host", "1:2"}, Options{}, true},
		{[]string{"-ca"}, Options{}, true},
		{[]string{"127.0.0.1:6000", "-tls"}, Options{}, true}, // flags go first
	}
	for _, tt := range tests {
		got, err := parseArgs(tt.args)
		if (err != nil) != tt.err || !tt.err && got != tt.want {
			t.Errorf("%q: got %+v, %v", tt.args, got, err)
		}
	}
	for _, h := range []string{"-h", "-help", "--help"} {
		if _, err := parseArgs([]string{h}); err != errHelp {
			t.Errorf("%s: %v", h, err)
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

package loadgen

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestCommandLine(t *testing.T) {
	cases := []struct {
		args []string
		code int
		err  string
	}{
		{[]string{"-scenario", "nope"}, 2, "want pairs, group, conns or login"},
		{[]string{"-pairs", "0"}, 2, "at least 1"},
		{[]string{"-size", "10"}, 2, "-size must be 40 to 4096 bytes"},
		{[]string{"-size", "4097"}, 2, "-size"},
		{[]string{"-pid", "x"}, 2, "not a process id"},
		{[]string{"-pid", "999999999"}, 2, "-pid 999999999"},
		{[]string{"-password", "\xff\xfe"}, 2, "UTF-8"},
		{[]string{"-prefix", strings.Repeat("p", 21)}, 2, "-prefix is at most 20 characters"},
		{[]string{"extra"}, 2, "unexpected argument"},
		{[]string{"-members", "1", "-scenario", "group"}, 2, "-members"},
		{[]string{"-devices", "0"}, 2, "-devices"},
		{[]string{"-devices", "256"}, 2, "-devices is at most 255"},
		{[]string{"-nope"}, 2, "flag provided but not defined"},
		{[]string{"-addr", "127.0.0.1:1", "-quiet"}, 1, "setup"},
		{[]string{"-h"}, 0, "usage: go run -tags bench . [flags]"},
	}
	for _, tc := range cases {
		var out, errb bytes.Buffer
		if code := Run(tc.args, &out, &errb); code != tc.code || !strings.Contains(errb.String(), tc.err) {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q", tc.args, code, errb.String(), tc.code, tc.err)
		}
	}
}

func TestHelpListsEveryFlag(t *testing.T) {
	var errb bytes.Buffer
	Run([]string{"-h"}, &bytes.Buffer{}, &errb)
	for _, f := range []string{"ack-delay", "addr", "ca", "cid", "concurrency", "conns", "devices", "drain", "duration", "groups", "insecure", "members",
		"pairs", "password", "pid", "prefix", "quiet", "rate", "scenario", "senders", "settle", "size", "warmup", "window"} {
		if !strings.Contains(errb.String(), "\n  -"+f+" ") && !strings.Contains(errb.String(), "\n  -"+f+"\n") {
			t.Errorf("-h does not list -%s:\n%s", f, errb.String())
		}
	}
}

func TestParseConfig(t *testing.T) {
	cfg, err := parseConfig([]string{"-addr", " a:1, b:2 ,", "-pid", "1, 2", "-scenario", "group", "-members", "3", "-senders", "3", "-duration", "1s"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.addrs) != 2 || cfg.addrFor(0) != "a:1" || cfg.addrFor(1) != "b:2" || cfg.addrFor(2) != "a:1" {
		t.Errorf("addrs %q", cfg.addrs)
	}
	if len(cfg.pids) != 2 || cfg.pids[1] != 2 || cfg.duration != time.Second || cfg.scenario != "group" {
		t.Errorf("config %+v", cfg)
	}
	if !strings.HasPrefix(cfg.prefix, "lg") || len(cfg.prefix) != 8 || cfg.password != "lg-secret" || !cfg.cid || cfg.devices != 1 {
		t.Errorf("defaults: prefix %q password %q cid %v devices %d", cfg.prefix, cfg.password, cfg.cid, cfg.devices)
	}
}

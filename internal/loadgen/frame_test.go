package loadgen

import (
	"bytes"
	"testing"
)

func TestScanFrame(t *testing.T) {
	cases := []struct {
		line string
		want frame
	}{
		{`{"type":"chat","rid":17,"ok":true,"message":{"id":981,"from":12,"from_name":"a\"b","to":13,"text":"lg x 1 2 3 ","ts":1}}`,
			frame{typ: []byte("chat"), rid: 17, hasRid: true, ok: true, msgID: 981, from: 12, text: []byte("lg x 1 2 3 ")}},
		{`{"type":"message","message":{"id":5,"from":2,"group":3,"text":"hi"},"backlog":true}`,
			frame{typ: []byte("message"), msgID: 5, from: 2, groupID: 3, text: []byte("hi"), backlog: true}},
		{`{ "type" : "login", "rid" : "abc", "ok" : true, "user" : {"id": 7, "name":"x"}, "friends":[{"id":9}], "groups":[{"id":4,"members":[{"id":1}]}]}`,
			frame{typ: []byte("login"), ok: true, userID: 7}},
		{`{"type":"chat","rid":1.5,"ok":false,"code":"rate_limited","error":"slow down"}`,
			frame{typ: []byte("chat"), code: []byte("rate_limited")}},
		{`{"type":"create_group","rid":3,"ok":true,"group":{"id":44,"name":"g","members":[]}}`,
			frame{typ: []byte("create_group"), rid: 3, hasRid: true, ok: true, groupID: 44}},
		{`{"type":"member_joined","group":44,"user":{"id":2}}` + "\r\n",
			frame{typ: []byte("member_joined"), groupID: 44, userID: 2}},
		{`{"type":"x","message":null,"user":"u","group":{"name":"no id"}}`,
			frame{typ: []byte("x")}},
	}
	for _, tc := range cases {
		var f frame
		if err := scanFrame([]byte(tc.line), &f); err != nil {
			t.Errorf("%s: %v", tc.line, err)
			continue
		}
		if !bytes.Equal(f.typ, tc.want.typ) || !bytes.Equal(f.code, tc.want.code) || !bytes.Equal(f.text, tc.want.text) ||
			f.rid != tc.want.rid || f.hasRid != tc.want.hasRid || f.ok != tc.want.ok || f.backlog != tc.want.backlog ||
			f.msgID != tc.want.msgID || f.from != tc.want.from || f.userID != tc.want.userID || f.groupID != tc.want.groupID {
			t.Errorf("%s:\n got %+v\nwant %+v", tc.line, f, tc.want)
		}
	}
	for _, bad := range []string{``, `[]`, `{"type":}`, `{"type":"x"`, `{"a":"unterminated}`, `{"a":{"b":[1,2}`, `{"message":{"id":1}`, `{"user":{"id":}}`} {
		var f frame
		if scanFrame([]byte(bad), &f) == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

// The frames the load generator reads most: a message push to a recipient
// and the ok reply to a sender's chat, each with a text of the default
// -size (64 bytes) as the pairs scenario writes it.
var (
	benchPush  = []byte(`{"type":"message","message":{"id":981234,"from":12,"from_name":"lg3f9a2cs12","to":1729,"text":"lg p3k2x 12 1234 987654321 xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx","ts":1795812345678}}` + "\n")
	benchReply = []byte(`{"type":"chat","rid":1234,"ok":true,"message":{"id":981234,"from":12,"from_name":"lg3f9a2cs12","to":1729,"text":"lg p3k2x 12 1234 987654321 xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx","ts":1795812345678}}` + "\n")
)

func TestScanFrameNoAllocs(t *testing.T) {
	for _, line := range [][]byte{benchPush, benchReply, []byte(`{"type":"create_group","rid":3,"ok":true,"group":{"id":44,"name":"g","members":[]}}`)} {
		var f frame
		if n := testing.AllocsPerRun(100, func() { scanFrame(line, &f) }); n != 0 {
			t.Errorf("scanFrame(%s) allocates %.0f times", line, n)
		}
	}
}

// BenchmarkScanFrame: the load generator's cost of reading one frame, paid
// for every reply and every push (see BENCHMARKS.md, loadgen_cpu_s).
func BenchmarkScanFrame(b *testing.B) {
	for _, bc := range []struct {
		name string
		line []byte
	}{{"push", benchPush}, {"reply", benchReply}} {
		b.Run(bc.name, func(b *testing.B) {
			var f frame
			b.ReportAllocs()
			b.SetBytes(int64(len(bc.line)))
			for b.Loop() {
				if err := scanFrame(bc.line, &f); err != nil {
					b.Fatal(err)
				}
			}
			if f.msgID != 981234 {
				b.Fatalf("msgID %d", f.msgID)
			}
		})
	}
}

func TestText(t *testing.T) {
	b := appendText(nil, "run7", 42, 1234, 987654321, 64)
	if len(b) != 64 {
		t.Errorf("len = %d, want the requested 64", len(b))
	}
	got, ok := parseText(b)
	if !ok || string(got.run) != "run7" || got.sender != 42 || got.seq != 1234 || got.sentNs != 987654321 {
		t.Errorf("parse(%q) = %+v, %v", b, got, ok)
	}
	for _, other := range []string{"hello", "lg ", "lg a b c d", "lg a 1 2", "lgx a 1 2 3"} {
		if _, ok := parseText([]byte(other)); ok {
			t.Errorf("parse(%q) ok", other)
		}
	}
	// The text in the benchmark frames is one the load generator writes.
	var f frame
	if err := scanFrame(benchPush, &f); err != nil {
		t.Fatal(err)
	}
	if tx, ok := parseText(f.text); !ok || len(f.text) != 64 || tx.seq != 1234 {
		t.Errorf("benchmark text %q: %+v, %v", f.text, tx, ok)
	}
}

func TestCredentialsQuoted(t *testing.T) {
	got := credentials(`a"b`, "p\\w\n")
	if want := `"name":"a\"b","password":"p\\w\n"`; got != want {
		t.Errorf("credentials = %s, want %s", got, want)
	}
}

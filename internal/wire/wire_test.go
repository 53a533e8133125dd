package wire

import (
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"testing"
)

func TestAppendStringMatchesEncodingJSON(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"", "hi", `quote " and \ back`, "tab\tnl\ncr\r", "\x00\x01\x1f", "<b>&amp;</b>", "张伟 🙂", "\u2028"} {
		got := AppendString(nil, s)
		var back string
		if err := json.Unmarshal(got, &back); err != nil {
			t.Fatalf("AppendString(%q) = %s: not JSON: %v", s, got, err)
		}
		if back != s {
			t.Errorf("AppendString(%q) decodes to %q", s, back)
		}
	}
}

func TestMessageRoundTrip(t *testing.T) {
	t.Parallel()
	for _, m := range []Message{
		{ID: 981, From: 12, FromName: "alice", To: 13, Text: "hi", TS: 1795812345678},
		{ID: 982, From: 12, FromName: "alice", Group: 3, Text: "line\none \"q\"", TS: 1795812345679},
		{ID: math.MaxInt64, From: 1<<53 + 1, FromName: "张伟", To: math.MaxInt64, Text: "\x00", TS: 1},
		{ID: 983, From: 12, FromName: "alice", To: 13, Text: "fixed", TS: 1795812345678, Edited: 1795812349999},
		{ID: 984, From: 12, FromName: "alice", Group: 3, TS: 1795812345678, Deleted: true},
		{ID: 985, From: 12, FromName: "alice", Group: 3, TS: 1, Edited: math.MaxInt64, Deleted: true},
	} {
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		var back Message
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		if back != m {
			t.Errorf("round trip of %+v gave %+v (%s)", m, back, b)
		}
	}
}

// TestMessageEncoding pins the hand-written encoder's bytes: edited and
// deleted appear only when set, after ts, and text stays even when empty.
func TestMessageEncoding(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		m    Message
		want string
	}{
		{Message{ID: 1, From: 2, FromName: "bob", To: 3, Text: "hi", TS: 10},
			`{"id":1,"from":2,"from_name":"bob","to":3,"text":"hi","ts":10}`},
		{Message{ID: 1, From: 2, FromName: "bob", To: 3, Text: "hi!", TS: 10, Edited: 20},
			`{"id":1,"from":2,"from_name":"bob","to":3,"text":"hi!","ts":10,"edited":20}`},
		{Message{ID: 1, From: 2, FromName: "bob", Group: 4, TS: 10, Deleted: true},
			`{"id":1,"from":2,"from_name":"bob","group":4,"text":"","ts":10,"deleted":true}`},
		{Message{ID: 1, From: 2, FromName: "bob", Group: 4, TS: 10, Edited: 20, Deleted: true},
			`{"id":1,"from":2,"from_name":"bob","group":4,"text":"","ts":10,"edited":20,"deleted":true}`},
	} {
		if got := string(tc.m.AppendJSON(nil)); got != tc.want {
			t.Errorf("AppendJSON(%+v)\n got %s\nwant %s", tc.m, got, tc.want)
		}
		// encoding/json, the struct tags alone, agrees on every field.
		var viaTags map[string]any
		type plain Message // no MarshalJSON: the tags decide
		b, _ := json.Marshal(plain(tc.m))
		json.Unmarshal(b, &viaTags)
		var viaEncoder map[string]any
		if err := json.Unmarshal([]byte(tc.want), &viaEncoder); err != nil {
			t.Fatal(err)
		}
		if len(viaTags) != len(viaEncoder) {
			t.Errorf("the tags give %v, the encoder %v", viaTags, viaEncoder)
		}
		for k, v := range viaEncoder {
			if viaTags[k] != v {
				t.Errorf("field %s: the tags give %v, the encoder %v", k, viaTags[k], v)
			}
		}
	}
}

func TestValidName(t *testing.T) {
	t.Parallel()
	for name, want := range map[string]bool{
		"alice": true, "a.b_c-d": true, "张伟": true, "é": true, "x1": true,
		"": false, "a b": false, "a@b": false, "01234567890123456789012345678901": true,
		"012345678901234567890123456789012": false, "🙂": false,
	} {
		if got := ValidName(name); got != want {
			t.Errorf("ValidName(%q) = %v, want %v", name, got, want)
		}
	}
}

// scanned is what the table test reads from each input.
type scanned struct {
	typ, text  string
	rid, msgID int64
	hasRid, ok bool
	raw        string
}

func scanTest(b []byte) (scanned, error) {
	var got scanned
	s := NewScanner(b)
	err := s.Object(func(key []byte) error {
		var err error
		switch string(key) {
		case "type":
			var v []byte
			v, err = s.Str()
			got.typ = string(v)
		case "rid":
			got.rid, got.hasRid, err = s.Int()
		case "ok":
			got.ok, err = s.Bool()
		case "raw":
			var v []byte
			v, err = s.Raw()
			got.raw = string(v)
		case "message":
			if s.Peek() != '{' {
				return s.Skip()
			}
			return s.Object(func(key []byte) error {
				switch string(key) {
				case "id":
					got.msgID, _, err = s.Int()
				case "text":
					var v []byte
					v, err = s.Str()
					got.text = string(v)
				default:
					err = s.Skip()
				}
				return err
			})
		default:
			err = s.Skip()
		}
		return err
	})
	return got, err
}

func TestScanner(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want scanned
		err  bool
	}{
		{in: `{}`},
		{in: ` { "type" : "ping" , "ok" : true } `, want: scanned{typ: "ping", ok: true}},
		{in: `{"type":"chat","rid":7,"ok":true,"message":{"id":981,"text":"hi \"x\"","to":2}}`,
			want: scanned{typ: "chat", rid: 7, hasRid: true, ok: true, msgID: 981, text: `hi \"x\"`}},
		{in: `{"rid":"abc"}`},
		{in: `{"rid":1.5}`},
		{in: `{"rid":-12}`, want: scanned{rid: -12, hasRid: true}},
		{in: `{"rid":9223372036854775807}`, want: scanned{rid: math.MaxInt64, hasRid: true}},
		{in: `{"rid":9223372036854775808}`},
		{in: `{"rid":1e3}`},
		{in: `{"raw":[1,{"a":"]}"},null],"ok":false}`, want: scanned{raw: `[1,{"a":"]}"},null]`}},
		{in: `{"raw":  "s"}`, want: scanned{raw: `"s"`}},
		{in: `{"message":null,"other":{"nested":[true]}}`},
		{in: `{"type":"a","type":"b"}`, want: scanned{typ: "b"}},
		{in: ``, err: true},
		{in: `[]`, err: true},
		{in: `{"type":"x"`, err: true},
		{in: `{"type":"x}`, err: true},
		{in: `{"type" "x"}`, err: true},
		{in: `{"raw":{"a":[}`, err: true},
		{in: `{"raw":}`, err: true},
		{in: `{"a":1 "b":2}`, err: true},
		{in: `{"type":"x\`, err: true},
	}
	for _, tt := range tests {
		got, err := scanTest([]byte(tt.in))
		if (err != nil) != tt.err {
			t.Errorf("%s: err = %v, want error %v", tt.in, err, tt.err)
			continue
		}
		if err != nil {
			if !errors.Is(err, ErrSyntax) {
				t.Errorf("%s: err = %v, want ErrSyntax", tt.in, err)
			}
			continue
		}
		if got != tt.want {
			t.Errorf("%s:\n got %+v\nwant %+v", tt.in, got, tt.want)
		}
	}
}

func TestScannerAllocatesNothing(t *testing.T) {
	line := []byte(`{"type":"message","message":{"id":981,"from":12,"from_name":"alice","to":13,"text":"lg r 1 2 3","ts":1795812345678},"backlog":true}`)
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := scanTest(line); err != nil {
			t.Fatal(err)
		}
	})
	// scanTest itself converts two strings for the comparison.
	if allocs > 2 {
		t.Errorf("%v allocations per scan", allocs)
	}
}

// FuzzScanner: the scanner never panics, and on valid JSON objects it
// agrees with encoding/json about which top-level keys exist.
func FuzzScanner(f *testing.F) {
	for _, s := range []string{`{}`, `{"type":"ping","rid":1}`, `{"a":[1,{"b":"}"}],"c":null}`, `{"a":"\"}"}`, `{"x`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s := NewScanner(b)
		var keys []string
		err := s.Object(func(key []byte) error {
			keys = append(keys, string(key))
			return s.Skip()
		})
		var m map[string]json.RawMessage
		if err != nil || json.Unmarshal(b, &m) != nil {
			return
		}
		for _, k := range keys {
			unq, uerr := strconv.Unquote(`"` + k + `"`)
			if uerr != nil {
				continue // JSON escapes strconv does not know
			}
			if _, ok := m[unq]; !ok {
				t.Fatalf("%s: scanner saw key %q that encoding/json did not", b, k)
			}
		}
	})
}

package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"chat/internal/wire"
)

// Unit tests of the wire layer: protocol.go's decoding, field helpers and
// encoders, and ratelimit.go's token bucket. No server, no store.

// protoCodes is every error code docs/protocol.md lists.
var protoCodes = map[wire.Code]bool{
	wire.CodeBadFrame: true, wire.CodeFrameTooLarge: true, wire.CodeUnknownType: true,
	wire.CodeBadRequest: true, wire.CodeNotLoggedIn: true, wire.CodeBadCredentials: true,
	wire.CodeNameTaken: true, wire.CodeInvalidName: true, wire.CodeInvalidPass: true,
	wire.CodeNoSuchUser: true, wire.CodeNoSuchGroup: true, wire.CodeNotMember: true,
	wire.CodeTooLong: true, wire.CodeRateLimited: true, wire.CodeUnavailable: true,
	wire.CodeInternal: true,
}

func TestProtoCodesMatchProtocol(t *testing.T) {
	want := []string{"bad_frame", "frame_too_large", "unknown_type", "bad_request",
		"not_logged_in", "bad_credentials", "name_taken", "invalid_name",
		"invalid_password", "no_such_user", "no_such_group", "not_member",
		"too_long", "rate_limited", "unavailable", "internal"}
	var got []string
	for c := range protoCodes {
		got = append(got, string(c))
	}
	sort.Strings(got)
	sort.Strings(want)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("codes %v, want %v", got, want)
	}
}

// --- names ---

func TestValidName(t *testing.T) {
	cases := []struct {
		name string
		in   string
		want bool
	}{
		{"ascii", "alice", true},
		{"single letter", "a", true},
		{"upper case", "Alice", true},
		{"digits only", "12345", true},
		{"single digit", "0", true},
		{"underscore dot dash", "a_b.c-d", true},
		{"only punctuation allowed", "_.-", true},
		{"leading dot", ".alice", true},
		{"polish", "Łukasz", true},
		{"german", "Jürgen", true},
		{"chinese", "张伟", true},
		{"arabic", "محمد", true},
		{"hebrew", "שלום", true},
		{"cyrillic", "Дмитрий", true},
		{"greek", "Αλέξανδρος", true},
		{"devanagari with marks", "देवनागरी", true},
		{"thai with marks", "สมชาย", true},
		{"japanese", "たなか太郎", true},
		{"korean", "김민준", true},
		{"decomposed e acute", "e\u0301mile", true},
		{"arabic-indic digits", "٠١٢٣", true},
		{"devanagari digits", "१२३", true},
		{"32 ascii", strings.Repeat("a", 32), true},
		{"33 ascii", strings.Repeat("a", 33), false},
		{"32 two-byte runes", strings.Repeat("ł", 32), true},
		{"33 two-byte runes", strings.Repeat("ł", 33), false},
		{"32 three-byte runes", strings.Repeat("张", 32), true},
		{"33 three-byte runes", strings.Repeat("张", 33), false},
		{"32 runes of 96 bytes", strings.Repeat("伟", 32), true},
		{"32 four-byte letters", strings.Repeat("\U00020000", 32), true}, // CJK ext B
		{"33 four-byte letters", strings.Repeat("\U00020000", 33), false},
		{"marks count as code points", strings.Repeat("e\u0301", 16), true},
		{"marks count as code points, 33", strings.Repeat("e\u0301", 16) + "e", false},
		{"empty", "", false},
		{"space", " ", false},
		{"inner space", "al ice", false},
		{"leading space", " alice", false},
		{"trailing space", "alice ", false},
		{"nbsp", "al\u00a0ice", false},
		{"ideographic space", "张\u3000伟", false},
		{"tab", "al\tice", false},
		{"newline", "alice\n", false},
		{"nul", "al\x00ice", false},
		{"del", "al\x7fice", false},
		{"c1 control", "al\u0085ice", false},
		{"at", "alice@example", false},
		{"plus", "a+b", false},
		{"slash", "a/b", false},
		{"quote", `a"b`, false},
		{"backslash", `a\b`, false},
		{"comma", "a,b", false},
		{"colon", "a:b", false},
		{"exclamation", "hi!", false},
		{"apostrophe", "o'brien", false},
		{"emoji", "alice😀", false},
		{"emoji only", "😀", false},
		{"zero-width joiner", "a\u200db", false},
		{"zero-width non-joiner", "a\u200cb", false},
		{"zero-width space", "a\u200bb", false},
		{"bom", "\ufeffalice", false},
		{"rtl override", "a\u202eb", false},
		{"fullwidth punctuation", "a！", false},
		{"math symbol", "a∑b", false},
		{"currency", "a$b", false},
		{"invalid utf-8", "a\xffb", false},
		{"truncated utf-8", "\xe5\xbc", false},
		{"replacement char", "a\ufffdb", false},
		{"surrogate half encoded", "a\xed\xa0\x80b", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := wire.ValidName(tc.in); got != tc.want {
				t.Errorf("wire.ValidName(%q) = %v, want %v", tc.in, got, tc.want)
			}
			perr := checkName(tc.in)
			if tc.want != (perr == nil) {
				t.Errorf("checkName(%q) = %v, want ok=%v", tc.in, perr, tc.want)
			}
			if perr != nil && perr.Code != wire.CodeInvalidName {
				t.Errorf("checkName(%q) code %s, want %s", tc.in, perr.Code, wire.CodeInvalidName)
			}
		})
	}
}

func TestCheckPasswordAndText(t *testing.T) {
	pw := []struct {
		in   string
		want wire.Code // "" for ok
	}{
		{"", wire.CodeInvalidPass},
		{"12345", wire.CodeInvalidPass},
		{"123456", ""},
		{strings.Repeat("p", 72), ""},
		{strings.Repeat("p", 73), wire.CodeInvalidPass},
		{"ééé", ""}, // 6 bytes, 3 characters: bytes count
		{"éé", wire.CodeInvalidPass},
		{strings.Repeat("张", 24), ""},                         // 72 bytes
		{strings.Repeat("张", 24) + "x", wire.CodeInvalidPass}, // 73 bytes
		{"pass word", ""},                                     // anything goes inside
	}
	for _, tc := range pw {
		perr := checkPassword(tc.in)
		if got := perrCode(perr); got != tc.want {
			t.Errorf("checkPassword(%d bytes) = %v, want %q", len(tc.in), perr, tc.want)
		}
	}
	txt := []struct {
		in   string
		want wire.Code
	}{
		{"x", ""},
		{strings.Repeat("x", wire.MaxTextBytes), ""},
		{strings.Repeat("x", wire.MaxTextBytes+1), wire.CodeTooLong},
		{strings.Repeat("张", wire.MaxTextBytes/3), ""},                 // 4095 bytes
		{strings.Repeat("张", wire.MaxTextBytes/3+1), wire.CodeTooLong}, // 4098 bytes
		{"line\nbreak \"quoted\" \\ \u2028", ""},
		// white space only counts as empty (unicode.IsSpace), checked
		// before the length; anything else is kept as it is
		{" ", wire.CodeBadRequest},
		{"\t\n\r\v\f", wire.CodeBadRequest},
		{"\u3000", wire.CodeBadRequest},
		{"\u00a0 \u2003\u0085\u2028\u2029", wire.CodeBadRequest},
		{strings.Repeat(" ", wire.MaxTextBytes+1), wire.CodeBadRequest},
		{" x ", ""},
		{"\nline\n", ""},
		{"\u200b", ""}, // zero width space is not unicode.IsSpace
		{"\u00a0.\u00a0", ""},
	}
	for _, tc := range txt {
		perr := checkText(tc.in)
		if got := perrCode(perr); got != tc.want {
			t.Errorf("checkText(%d bytes) = %v, want %q", len(tc.in), perr, tc.want)
		}
	}
}

func perrCode(perr *ProtoError) wire.Code {
	if perr == nil {
		return ""
	}
	return perr.Code
}

// --- frames ---

// decodeCase is one decodeFrame table row; the fuzz tests seed from them.
type decodeCase struct {
	name  string
	in    string
	blank bool      // nil, nil
	code  wire.Code // expected error code, "" for none
	typ   string    // expected Type when decoded
	rid   string    // expected RID bytes, "" for absent
}

var decodeFrameCases = []decodeCase{
	// blank lines are ignored
	{name: "empty", in: "", blank: true},
	{name: "spaces", in: "  ", blank: true},
	{name: "cr", in: "\r", blank: true},
	{name: "cr cr", in: "\r\r", blank: true},
	{name: "tab", in: "\t", blank: true},
	{name: "spaces and cr", in: " \t \r", blank: true},

	// well-formed
	{name: "ping", in: `{"type":"ping"}`, typ: "ping"},
	{name: "trailing cr", in: `{"type":"ping","rid":1}` + "\r", typ: "ping", rid: "1"},
	{name: "leading and trailing blanks", in: " \t{\"type\":\"ping\"} \t", typ: "ping"},
	{name: "spaces inside", in: `{ "type" : "ping" , "rid" : 7 }`, typ: "ping", rid: "7"},
	{name: "unknown type decodes", in: `{"type":"frobnicate","rid":"x"}`, typ: "frobnicate", rid: `"x"`},
	{name: "unknown fields ignored", in: `{"type":"ping","zzz":[1,{"a":null}],"rid":3}`, typ: "ping", rid: "3"},
	{name: "escaped type", in: `{"type":"p\u0069ng"}`, typ: "ping"},
	{name: "non-ascii type", in: `{"type":"пинг"}`, typ: "пинг"},
	{name: "chat", in: `{"type":"chat","rid":42,"to":17,"text":"hello","cid":"c1"}`, typ: "chat", rid: "42"},
	{name: "duplicate key, last wins", in: `{"type":"x","type":"ping"}`, typ: "ping"},

	// rid byte for byte
	{name: "rid big integer", in: `{"type":"ping","rid":123456789012345678901234567890}`, typ: "ping", rid: "123456789012345678901234567890"},
	{name: "rid beyond float precision", in: `{"type":"ping","rid":9007199254740993}`, typ: "ping", rid: "9007199254740993"},
	{name: "rid decimal", in: `{"type":"ping","rid":1.50}`, typ: "ping", rid: "1.50"},
	{name: "rid exponent", in: `{"type":"ping","rid":1E+02}`, typ: "ping", rid: "1E+02"},
	{name: "rid negative zero", in: `{"type":"ping","rid":-0.0}`, typ: "ping", rid: "-0.0"},
	{name: "rid zero", in: `{"type":"ping","rid":0}`, typ: "ping", rid: "0"},
	{name: "rid string", in: `{"type":"ping","rid":"abc"}`, typ: "ping", rid: `"abc"`},
	{name: "rid empty string", in: `{"type":"ping","rid":""}`, typ: "ping", rid: `""`},
	{name: "rid string with escapes", in: `{"type":"ping","rid":"a\"b\\c\u00e9\n\/"}`, typ: "ping", rid: `"a\"b\\c\u00e9\n\/"`},
	{name: "rid string non-ascii", in: `{"type":"ping","rid":"ключ-张"}`, typ: "ping", rid: `"ключ-张"`},
	{name: "rid null is absent", in: `{"type":"ping","rid":null}`, typ: "ping"},
	{name: "rid before type", in: `{"rid":5,"type":"ping"}`, typ: "ping", rid: "5"},

	// not JSON objects: bad_frame
	{name: "array", in: `[{"type":"ping"}]`, code: wire.CodeBadFrame},
	{name: "string", in: `"ping"`, code: wire.CodeBadFrame},
	{name: "number", in: `42`, code: wire.CodeBadFrame},
	{name: "true", in: `true`, code: wire.CodeBadFrame},
	{name: "null", in: `null`, code: wire.CodeBadFrame},
	{name: "truncated", in: `{"type":"ping"`, code: wire.CodeBadFrame},
	{name: "truncated string", in: `{"type":"pi`, code: wire.CodeBadFrame},
	{name: "just brace", in: `{`, code: wire.CodeBadFrame},
	{name: "trailing garbage", in: `{"type":"ping"} x`, code: wire.CodeBadFrame},
	{name: "two objects", in: `{"type":"ping"}{"type":"ping"}`, code: wire.CodeBadFrame},
	{name: "trailing comma", in: `{"type":"ping",}`, code: wire.CodeBadFrame},
	{name: "single quotes", in: `{'type':'ping'}`, code: wire.CodeBadFrame},
	{name: "unquoted key", in: `{type:"ping"}`, code: wire.CodeBadFrame},
	{name: "plain text", in: `hello`, code: wire.CodeBadFrame},
	{name: "bom", in: "\ufeff{\"type\":\"ping\"}", code: wire.CodeBadFrame},
	{name: "invalid utf-8 in string", in: "{\"type\":\"ping\",\"text\":\"\xff\"}", code: wire.CodeBadFrame},
	{name: "invalid utf-8 in type", in: "{\"type\":\"p\xc3\"}", code: wire.CodeBadFrame},
	{name: "invalid utf-8 outside strings", in: "{\"type\":\"ping\"}\xff", code: wire.CodeBadFrame},
	{name: "invalid utf-8 only", in: "\xff\xfe", code: wire.CodeBadFrame},
	{name: "encoded surrogate", in: "{\"type\":\"\xed\xa0\x80\"}", code: wire.CodeBadFrame},
	{name: "raw control char in string", in: "{\"type\":\"pi\x01ng\"}", code: wire.CodeBadFrame},
	{name: "bad number in rid", in: `{"type":"ping","rid":01}`, code: wire.CodeBadFrame},
	{name: "nul byte", in: "\x00", code: wire.CodeBadFrame},

	// objects without a usable type: bad_request, rid kept
	{name: "empty object", in: `{}`, code: wire.CodeBadRequest},
	{name: "no type, rid kept", in: `{"rid":9}`, code: wire.CodeBadRequest, rid: "9"},
	{name: "type number", in: `{"type":1,"rid":"r"}`, code: wire.CodeBadRequest, rid: `"r"`},
	{name: "type null", in: `{"type":null,"rid":2}`, code: wire.CodeBadRequest, rid: "2"},
	{name: "type bool", in: `{"type":true,"rid":1.50}`, code: wire.CodeBadRequest, rid: "1.50"},
	{name: "type array", in: `{"type":["ping"],"rid":3}`, code: wire.CodeBadRequest, rid: "3"},
	{name: "type object", in: `{"type":{"a":"ping"},"rid":4}`, code: wire.CodeBadRequest, rid: "4"},
	{name: "type empty", in: `{"type":"","rid":"e"}`, code: wire.CodeBadRequest, rid: `"e"`},
	{name: "type empty, rid big", in: `{"type":"","rid":123456789012345678901234567890}`, code: wire.CodeBadRequest, rid: "123456789012345678901234567890"},
}

func TestDecodeFrame(t *testing.T) {
	for _, tc := range decodeFrameCases {
		t.Run(tc.name, func(t *testing.T) {
			r, perr := decodeFrame([]byte(tc.in))
			switch {
			case tc.blank:
				if r != nil || perr != nil {
					t.Fatalf("decodeFrame(%q) = %+v, %v; want nil, nil", tc.in, r, perr)
				}
				return
			case tc.code != "":
				if perr == nil || perr.Code != tc.code {
					t.Fatalf("decodeFrame(%q) error %v, want code %s", tc.in, perr, tc.code)
				}
				if perr.Msg == "" {
					t.Errorf("error without a message")
				}
				if tc.code == wire.CodeBadFrame && r != nil {
					t.Errorf("bad_frame with a request %+v", r)
				}
				if tc.code == wire.CodeBadRequest {
					if r == nil {
						t.Fatalf("bad_request without the request (rid lost)")
					}
					if r.Type != "" {
						t.Errorf("Type %q, want empty", r.Type)
					}
				}
			default:
				if perr != nil || r == nil {
					t.Fatalf("decodeFrame(%q) = %+v, %v; want a request", tc.in, r, perr)
				}
				if r.Type != tc.typ {
					t.Errorf("Type %q, want %q", r.Type, tc.typ)
				}
			}
			var rid []byte
			if r != nil {
				rid = r.RID
			}
			if tc.rid == "" {
				if rid != nil {
					t.Errorf("RID %q, want absent", rid)
				}
			} else if string(rid) != tc.rid {
				t.Errorf("RID %q, want %q", rid, tc.rid)
			}
			// Whatever came back, the error frame built from it is one valid line.
			if perr != nil {
				checkFrameLine(t, errReply("error", rid, perr))
			}
		})
	}
}

// TestDecodeFrameCopies checks that a Request does not alias the line, which
// the connection's reader reuses for the next frame.
func TestDecodeFrameCopies(t *testing.T) {
	line := []byte(`{"type":"chat","rid":"abc","to":5,"text":"hello"}`)
	r, perr := decodeFrame(line)
	if perr != nil {
		t.Fatal(perr)
	}
	for i := range line {
		line[i] = 'X'
	}
	if string(r.RID) != `"abc"` || string(r.f.Text) != `"hello"` || string(r.f.To) != "5" {
		t.Fatalf("request aliases the input line: rid %q text %q to %q", r.RID, r.f.Text, r.f.To)
	}
}

// TestDecodeFrameFieldsCaseSensitive: docs/protocol.md names fields exactly and
// says unknown fields are ignored, so "TYPE" or "Text" are unknown fields.
// encoding/json matches struct fields case-insensitively, so decodeFrame
// takes {"TYPE":"ping"} as a ping and lets "Text" override "text".
func TestDecodeFrameFieldsCaseSensitive(t *testing.T) {
	r, perr := decodeFrame([]byte(`{"TYPE":"ping","rid":1}`))
	if perr == nil || perr.Code != wire.CodeBadRequest {
		t.Errorf(`{"TYPE":"ping"}: got %+v, %v; want bad_request (no "type")`, r, perr)
	}
	r, perr = decodeFrame([]byte(`{"type":"chat","to":2,"text":"real","Text":"shadow"}`))
	if perr != nil || string(r.f.Text) != `"real"` {
		t.Errorf(`"Text" overrides "text": got %q, %v`, r.f.Text, perr)
	}
}

// checkFrameLine checks that b is one JSON object on one line, ended by \n,
// and returns it decoded (numbers as json.Number).
func checkFrameLine(t testing.TB, b []byte) map[string]any {
	t.Helper()
	if len(b) == 0 || b[len(b)-1] != '\n' {
		t.Fatalf("frame does not end with \\n: %q", b)
	}
	body := b[:len(b)-1]
	if bytes.IndexByte(body, '\n') >= 0 || bytes.IndexByte(body, '\r') >= 0 {
		t.Fatalf("frame spans lines: %q", b)
	}
	if !utf8.Valid(body) {
		t.Fatalf("frame is not valid UTF-8: %q", b)
	}
	if !json.Valid(body) {
		t.Fatalf("frame is not valid JSON: %q", b)
	}
	d := json.NewDecoder(bytes.NewReader(body))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil || m == nil {
		t.Fatalf("frame is not a JSON object: %q (%v)", b, err)
	}
	return m
}

// rawFields decodes a frame's top-level fields undecoded, keeping key order.
func rawFields(t testing.TB, b []byte) (map[string]json.RawMessage, []string) {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%q: %v", b, err)
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.Token() // {
	var keys []string
	for d.More() {
		k, err := d.Token()
		if err != nil {
			t.Fatalf("%q: %v", b, err)
		}
		keys = append(keys, k.(string))
		var skip json.RawMessage
		if err := d.Decode(&skip); err != nil {
			t.Fatalf("%q: %v", b, err)
		}
	}
	return m, keys
}

// --- JSON strings ---

// stdlibString is what encoding/json makes of s, with HTML escaping off.
func stdlibString(t testing.TB, s string) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte{'\n'})
}

// stdlibEscapesDifferently reports whether encoding/json spells s with escapes
// appendString does not use: \b and \f (Go 1.22+), and U+2028/U+2029, which
// encoding/json escapes for JavaScript. Both spellings are valid JSON.
func stdlibEscapesDifferently(s string) bool {
	return strings.ContainsAny(s, "\b\f\u2028\u2029")
}

func TestAppendString(t *testing.T) {
	cases := []string{
		"",
		"plain",
		`"`,
		`\`,
		`say "hi" \o/`,
		`\"`,
		`\\u0041`,
		"/slash/ </script> & < > '", // no HTML escaping
		"tab\there",
		"new\nline",
		"carriage\rreturn",
		"\r\n",
		"\b\f",
		"\x00",
		"a\x00b",
		"\x1f",
		"\x7f", // DEL needs no escape
		"\u0080\u009f",
		"\u2028",
		"a\u2028b\u2029c",
		"Łukasz",
		"张伟",
		"محمد",
		"देवनागरी",
		"😀👍🏽",
		"\ufeff",
		"\ufffd",
		"\U0010ffff",
		"mixed \x01 ü \" 张 \\ \n 😀 \x7f",
	}
	var all strings.Builder
	for c := 0; c < 0x80; c++ {
		cases = append(cases, string(rune(c)), "x"+string(rune(c))+"y")
		all.WriteByte(byte(c))
	}
	cases = append(cases, all.String(), strings.Repeat(all.String(), 3))
	for _, s := range cases {
		got := wire.AppendString(nil, s)
		if !json.Valid(got) {
			t.Errorf("wire.AppendString(%q) = %s: not valid JSON", s, got)
			continue
		}
		var back string
		if err := json.Unmarshal(got, &back); err != nil || back != s {
			t.Errorf("wire.AppendString(%q) = %s: decodes to %q, %v", s, got, back, err)
		}
		for _, c := range got {
			if c < 0x20 {
				t.Errorf("wire.AppendString(%q) = %q: raw control byte %#x", s, got, c)
				break
			}
		}
		if want := stdlibString(t, s); !stdlibEscapesDifferently(s) && !bytes.Equal(got, want) {
			t.Errorf("wire.AppendString(%q) = %s, encoding/json says %s", s, got, want)
		}
	}
	// It appends.
	if got := string(wire.AppendString([]byte("x="), "y")); got != `x="y"` {
		t.Errorf("appendString appends: got %s", got)
	}
}

// --- messages and replies ---

func TestMessageJSON(t *testing.T) {
	cases := []struct {
		name string
		m    Message
		keys []string
	}{
		{
			"private",
			Message{Message: wire.Message{ID: 981, From: 12, FromName: "alice", To: 13, Text: "hi", TS: 1795812345678}, Topic: 77, Seq: 5},
			[]string{"id", "from", "from_name", "to", "text", "ts"},
		},
		{
			"group",
			Message{Message: wire.Message{ID: 982, From: 12, FromName: "alice", Group: 3, Text: "hello all", TS: 1795812345679}, Topic: 3, Seq: 9},
			[]string{"id", "from", "from_name", "group", "text", "ts"},
		},
		{
			"awkward text and name",
			Message{Message: wire.Message{ID: 1<<62 + 1, From: 1<<53 + 1, FromName: "张伟", To: 9223372036854775807, Text: "\"quotes\" \\ \n\r\t \x00\x1f\x7f \u2028 </script>& 😀", TS: 0}},
			[]string{"id", "from", "from_name", "to", "text", "ts"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := tc.m
			body := m.AppendJSON(nil)
			checkMessageObject(t, body, &m, tc.keys)

			// messagePush wraps it: {"type":"message","message":{...}}\n, no rid.
			push := messagePush(&m, false)
			checkFrameLine(t, push)
			fields, keys := rawFields(t, push[:len(push)-1])
			if !reflect.DeepEqual(keys, []string{"type", "message"}) {
				t.Errorf("push keys %v, want [type message]", keys)
			}
			if string(fields["type"]) != `"message"` {
				t.Errorf("push type %s", fields["type"])
			}
			checkMessageObject(t, fields["message"], &m, tc.keys)

			// Inside a reply built with encoding/json (the chat reply).
			reply, err := okReply("chat", json.RawMessage("7"), messageResult{&m})
			if err != nil {
				t.Fatal(err)
			}
			checkFrameLine(t, reply)
			fields, keys = rawFields(t, reply[:len(reply)-1])
			if !reflect.DeepEqual(keys, []string{"type", "rid", "ok", "message"}) {
				t.Errorf("reply keys %v", keys)
			}
			checkMessageObject(t, fields["message"], &m, tc.keys)
		})
	}
}

func checkMessageObject(t *testing.T, body []byte, m *Message, wantKeys []string) {
	t.Helper()
	if !json.Valid(body) {
		t.Fatalf("message is not valid JSON: %s", body)
	}
	fields, keys := rawFields(t, body)
	sortedKeys := append([]string(nil), keys...)
	sort.Strings(sortedKeys)
	want := append([]string(nil), wantKeys...)
	sort.Strings(want)
	if !reflect.DeepEqual(sortedKeys, want) {
		t.Fatalf("message keys %v, want %v: %s", keys, wantKeys, body)
	}
	_, hasTo := fields["to"]
	_, hasGroup := fields["group"]
	if hasTo == hasGroup {
		t.Fatalf("want exactly one of to/group: %s", body)
	}
	var got struct {
		ID       json.Number `json:"id"`
		From     json.Number `json:"from"`
		FromName string      `json:"from_name"`
		To       json.Number `json:"to"`
		Group    json.Number `json:"group"`
		Text     string      `json:"text"`
		TS       json.Number `json:"ts"`
	}
	d := json.NewDecoder(bytes.NewReader(body))
	d.UseNumber()
	if err := d.Decode(&got); err != nil {
		t.Fatal(err)
	}
	num := func(n json.Number) string { return string(n) }
	if num(got.ID) != fmt.Sprint(m.ID) || num(got.From) != fmt.Sprint(m.From) || num(got.TS) != fmt.Sprint(m.TS) {
		t.Errorf("id/from/ts %s/%s/%s, want %d/%d/%d", got.ID, got.From, got.TS, m.ID, m.From, m.TS)
	}
	if got.FromName != m.FromName || got.Text != m.Text {
		t.Errorf("from_name/text %q/%q, want %q/%q", got.FromName, got.Text, m.FromName, m.Text)
	}
	if hasGroup && num(got.Group) != fmt.Sprint(m.Group) {
		t.Errorf("group %s, want %d", got.Group, m.Group)
	}
	if hasTo && num(got.To) != fmt.Sprint(m.To) {
		t.Errorf("to %s, want %d", got.To, m.To)
	}
}

func TestOkReply(t *testing.T) {
	type users struct {
		Users []User `json:"users"`
		Total int    `json:"total"`
	}
	cases := []struct {
		name     string
		typ      string
		rid      string // "" for none
		result   any
		wantKeys []string
		check    func(t *testing.T, f map[string]json.RawMessage)
	}{
		{name: "no result", typ: "ping", rid: "1", wantKeys: []string{"type", "rid", "ok"}},
		{name: "no rid", typ: "ping", wantKeys: []string{"type", "ok"}},
		{name: "empty struct", typ: "logout", rid: `"x"`, result: struct{}{}, wantKeys: []string{"type", "rid", "ok"}},
		{name: "big rid", typ: "ping", rid: "123456789012345678901234567890", wantKeys: []string{"type", "rid", "ok"}},
		{name: "decimal rid", typ: "ping", rid: "1.50", wantKeys: []string{"type", "rid", "ok"}},
		{name: "escaped rid", typ: "ping", rid: `"a\"b\u00e9\\"`, wantKeys: []string{"type", "rid", "ok"}},
		{
			name: "empty list", typ: "online", rid: "2", result: users{Users: []User{}, Total: 0},
			wantKeys: []string{"type", "rid", "ok", "users", "total"},
			check: func(t *testing.T, f map[string]json.RawMessage) {
				if string(f["users"]) != "[]" || string(f["total"]) != "0" {
					t.Errorf("users %s total %s, want [] and 0", f["users"], f["total"])
				}
			},
		},
		{
			name: "user online flag", typ: "whois", rid: "3",
			result: struct {
				User User `json:"user"`
			}{User{ID: 5, Name: "bob", Online: wire.Bool(false)}},
			wantKeys: []string{"type", "rid", "ok", "user"},
			check: func(t *testing.T, f map[string]json.RawMessage) {
				if got := string(f["user"]); got != `{"id":5,"name":"bob","online":false}` {
					t.Errorf("user %s", got)
				}
			},
		},
		{
			name: "user online unknown", typ: "register", rid: "4",
			result: struct {
				User User `json:"user"`
			}{User{ID: 6, Name: "carol"}},
			wantKeys: []string{"type", "rid", "ok", "user"},
			check: func(t *testing.T, f map[string]json.RawMessage) {
				if got := string(f["user"]); got != `{"id":6,"name":"carol"}` {
					t.Errorf("user %s", got)
				}
			},
		},
		{
			name: "group with members", typ: "create_group", rid: "5",
			result: groupResult{Group{ID: 3, Name: "gophers", Desc: "<b>&</b>", Members: []Member{
				{ID: 1, Name: "a", Role: wire.RoleCreator, Online: true},
				{ID: 2, Name: "b", Role: wire.RoleMember},
			}}},
			wantKeys: []string{"type", "rid", "ok", "group"},
			check: func(t *testing.T, f map[string]json.RawMessage) {
				want := `{"id":3,"name":"gophers","desc":"<b>&</b>","private":false,"members":[` +
					`{"id":1,"name":"a","role":"creator","online":true},` +
					`{"id":2,"name":"b","role":"member","online":false}]}`
				if got := string(f["group"]); got != want {
					t.Errorf("group %s\nwant  %s", got, want)
				}
			},
		},
		{
			name: "group without members", typ: "join_group", rid: "6",
			result:   groupResult{Group{ID: 4, Name: "empty", Members: []Member{}}},
			wantKeys: []string{"type", "rid", "ok", "group"},
			check: func(t *testing.T, f map[string]json.RawMessage) {
				if got := string(f["group"]); got != `{"id":4,"name":"empty","desc":"","private":false,"members":[]}` {
					t.Errorf("group %s", got)
				}
			},
		},
		{
			name: "empty history", typ: "history", rid: "7",
			result: struct {
				Messages []*Message `json:"messages"`
			}{[]*Message{}},
			wantKeys: []string{"type", "rid", "ok", "messages"},
			check: func(t *testing.T, f map[string]json.RawMessage) {
				if string(f["messages"]) != "[]" {
					t.Errorf("messages %s, want []", f["messages"])
				}
			},
		},
		{
			name: "login with nothing", typ: "login", rid: "8",
			result: struct {
				User    User    `json:"user"`
				Friends []User  `json:"friends"`
				Groups  []Group `json:"groups"`
			}{User{ID: 1, Name: "a", Online: wire.Bool(true)}, []User{}, []Group{}},
			wantKeys: []string{"type", "rid", "ok", "user", "friends", "groups"},
			check: func(t *testing.T, f map[string]json.RawMessage) {
				if string(f["friends"]) != "[]" || string(f["groups"]) != "[]" {
					t.Errorf("friends %s groups %s, want []", f["friends"], f["groups"])
				}
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var rid json.RawMessage
			if tc.rid != "" {
				rid = json.RawMessage(tc.rid)
			}
			b, err := okReply(tc.typ, rid, tc.result)
			if err != nil {
				t.Fatal(err)
			}
			m := checkFrameLine(t, b)
			fields, keys := rawFields(t, b[:len(b)-1])
			if !reflect.DeepEqual(keys, tc.wantKeys) {
				t.Errorf("keys %v, want %v: %s", keys, tc.wantKeys, b)
			}
			if m["type"] != tc.typ || m["ok"] != true {
				t.Errorf("type/ok: %s", b)
			}
			if string(fields["rid"]) != tc.rid {
				t.Errorf("rid %s, want %s byte for byte", fields["rid"], tc.rid)
			}
			if bytes.Contains(b, []byte("null")) {
				t.Errorf("null in reply: %s", b)
			}
			if tc.check != nil {
				tc.check(t, fields)
			}
		})
	}
}

func TestErrReply(t *testing.T) {
	cases := []struct {
		typ  string
		rid  string
		perr *ProtoError
	}{
		{"error", "", protoErr(wire.CodeBadFrame, "frame is not a JSON object")},
		{"error", "12345678901234567890", protoErr(wire.CodeUnknownType, "unknown request type %q", "fr\"ob\n")},
		{"chat", `"r-1"`, protoErr(wire.CodeTooLong, "text is longer than %d bytes", wire.MaxTextBytes)},
		{"login", "1.50", protoErr(wire.CodeBadCredentials, "wrong name or password")},
		{"register", "-3", protoErr(wire.CodeInvalidName, "bad name: %q", "a\x00\u2028b")},
		{"history", "0", protoErr(wire.CodeBadRequest, "%q must be an integer", "limit")},
	}
	for _, tc := range cases {
		var rid json.RawMessage
		if tc.rid != "" {
			rid = json.RawMessage(tc.rid)
		}
		b := errReply(tc.typ, rid, tc.perr)
		m := checkFrameLine(t, b)
		fields, keys := rawFields(t, b[:len(b)-1])
		want := []string{"type", "rid", "ok", "code", "error"}
		if tc.rid == "" {
			want = []string{"type", "ok", "code", "error"}
		}
		if !reflect.DeepEqual(keys, want) {
			t.Errorf("keys %v, want %v: %s", keys, want, b)
		}
		if m["type"] != tc.typ || m["ok"] != false || m["code"] != string(tc.perr.Code) || m["error"] != tc.perr.Msg {
			t.Errorf("errReply(%q, %s, %v) = %s", tc.typ, tc.rid, tc.perr, b)
		}
		if string(fields["rid"]) != tc.rid {
			t.Errorf("rid %s, want %s byte for byte", fields["rid"], tc.rid)
		}
	}
}

func TestPushFrame(t *testing.T) {
	b := pushFrame("kicked", struct {
		Reason string `json:"reason"`
	}{"you logged in <elsewhere> & \"again\""})
	m := checkFrameLine(t, b)
	_, keys := rawFields(t, b[:len(b)-1])
	if !reflect.DeepEqual(keys, []string{"type", "reason"}) || m["type"] != "kicked" ||
		m["reason"] != "you logged in <elsewhere> & \"again\"" {
		t.Errorf("kicked push %s", b)
	}
	if bytes.Contains(b, []byte(`\u003c`)) {
		t.Errorf("HTML-escaped: %s", b)
	}

	b = pushFrame("member_joined", struct {
		Group int64 `json:"group"`
		User  User  `json:"user"`
	}{3, User{ID: 4, Name: "d", Online: wire.Bool(true)}})
	checkFrameLine(t, b)
	if want := `{"type":"member_joined","group":3,"user":{"id":4,"name":"d","online":true}}` + "\n"; string(b) != want {
		t.Errorf("member_joined push %s, want %s", b, want)
	}

	if b = pushFrame("bare", struct{}{}); string(b) != "{\"type\":\"bare\"}\n" {
		t.Errorf("empty push %q", b)
	}
}

// --- field helpers ---

func rawField(s string) json.RawMessage {
	if s == "" {
		return nil // absent
	}
	return json.RawMessage(s)
}

func TestOptInt(t *testing.T) {
	cases := []struct {
		in   string // "" is absent
		n    int64
		ok   bool
		code wire.Code
	}{
		{in: ""},
		{in: "null"},
		{in: "0", ok: true},
		{in: "1", n: 1, ok: true},
		{in: "-5", n: -5, ok: true},
		{in: "-0", n: 0, ok: true},
		{in: "9223372036854775807", n: 9223372036854775807, ok: true},
		{in: "-9223372036854775808", n: -9223372036854775808, ok: true},
		{in: "9223372036854775808", code: wire.CodeBadRequest},
		{in: "-9223372036854775809", code: wire.CodeBadRequest},
		{in: "123456789012345678901234567890", code: wire.CodeBadRequest},
		{in: "1.5", code: wire.CodeBadRequest},
		{in: "1.0", code: wire.CodeBadRequest},
		{in: "1e3", code: wire.CodeBadRequest},
		{in: "1E3", code: wire.CodeBadRequest},
		{in: `"1"`, code: wire.CodeBadRequest},
		{in: `""`, code: wire.CodeBadRequest},
		{in: "true", code: wire.CodeBadRequest},
		{in: "false", code: wire.CodeBadRequest},
		{in: "[1]", code: wire.CodeBadRequest},
		{in: `{"n":1}`, code: wire.CodeBadRequest},
	}
	for _, tc := range cases {
		n, ok, perr := optInt(rawField(tc.in), "limit")
		if n != tc.n || ok != tc.ok || perrCode(perr) != tc.code {
			t.Errorf("optInt(%s) = %d, %v, %v; want %d, %v, %q", tc.in, n, ok, perr, tc.n, tc.ok, tc.code)
		}
		if perr != nil && !strings.Contains(perr.Msg, `"limit"`) {
			t.Errorf("optInt(%s) error does not name the field: %q", tc.in, perr.Msg)
		}
		// id is optInt made required.
		n, perr = id(rawField(tc.in), "to")
		wantCode := tc.code
		if !tc.ok && tc.code == "" {
			wantCode = wire.CodeBadRequest // absent
		}
		if perrCode(perr) != wantCode || (perr == nil && n != tc.n) {
			t.Errorf("id(%s) = %d, %v; want %d, %q", tc.in, n, perr, tc.n, wantCode)
		}
	}
	// Through a real frame, with the spacing a client may use.
	r, perr := decodeFrame([]byte(`{"type":"chat", "to" : 17 , "group": 1.5}`))
	if perr != nil {
		t.Fatal(perr)
	}
	if n, perr := id(r.f.To, "to"); perr != nil || n != 17 {
		t.Errorf("to: %d, %v", n, perr)
	}
	if _, perr := id(r.f.Group, "group"); perrCode(perr) != wire.CodeBadRequest {
		t.Errorf("group 1.5: %v", perr)
	}
}

func TestStrAndOptStr(t *testing.T) {
	cases := []struct {
		in      string
		s       string
		ok      bool
		optCode wire.Code // optStr
		strCode wire.Code // str
	}{
		{in: "", strCode: wire.CodeBadRequest},
		{in: "null", strCode: wire.CodeBadRequest},
		{in: `"alice"`, s: "alice", ok: true},
		{in: `"a\"b\\c\n\u00e9\ud83d\ude00"`, s: "a\"b\\c\né😀", ok: true},
		{in: `"\ud800"`, s: "\ufffd", ok: true}, // lone surrogate: replaced, still valid UTF-8
		{in: `" "`, s: " ", ok: true},
		{in: `""`, optCode: wire.CodeBadRequest, strCode: wire.CodeBadRequest},
		{in: "5", optCode: wire.CodeBadRequest, strCode: wire.CodeBadRequest},
		{in: "true", optCode: wire.CodeBadRequest, strCode: wire.CodeBadRequest},
		{in: `["a"]`, optCode: wire.CodeBadRequest, strCode: wire.CodeBadRequest},
		{in: `{"a":"b"}`, optCode: wire.CodeBadRequest, strCode: wire.CodeBadRequest},
	}
	for _, tc := range cases {
		s, ok, perr := optStr(rawField(tc.in), "name")
		if s != tc.s || ok != tc.ok || perrCode(perr) != tc.optCode {
			t.Errorf("optStr(%s) = %q, %v, %v; want %q, %v, %q", tc.in, s, ok, perr, tc.s, tc.ok, tc.optCode)
		}
		s, perr = str(rawField(tc.in), "name")
		if perrCode(perr) != tc.strCode || (perr == nil && s != tc.s) {
			t.Errorf("str(%s) = %q, %v; want %q, %q", tc.in, s, perr, tc.s, tc.strCode)
		}
		if perr != nil && !strings.Contains(perr.Msg, `"name"`) {
			t.Errorf("str(%s) error does not name the field: %q", tc.in, perr.Msg)
		}
	}
}

func TestIntList(t *testing.T) {
	many := func(n int) string {
		var b strings.Builder
		b.WriteByte('[')
		for i := 0; i < n; i++ {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprint(&b, i+1)
		}
		b.WriteByte(']')
		return b.String()
	}
	cases := []struct {
		in   string
		want []int64
		code wire.Code
	}{
		{in: "", code: wire.CodeBadRequest},
		{in: "null", code: wire.CodeBadRequest},
		{in: "[]", want: []int64{}},
		{in: "[1]", want: []int64{1}},
		{in: "[1,2,3]", want: []int64{1, 2, 3}},
		{in: "[ 1 , 2 ,\t3 ]", want: []int64{1, 2, 3}},
		{in: "[-1,0,9223372036854775807]", want: []int64{-1, 0, 9223372036854775807}},
		{in: "[1,1]", want: []int64{1, 1}},
		{in: "1", code: wire.CodeBadRequest},
		{in: `"[1]"`, code: wire.CodeBadRequest},
		{in: `{"0":1}`, code: wire.CodeBadRequest},
		{in: "true", code: wire.CodeBadRequest},
		{in: "[1.5]", code: wire.CodeBadRequest},
		{in: "[1,2.0]", code: wire.CodeBadRequest},
		{in: "[1e3]", code: wire.CodeBadRequest},
		{in: `["1"]`, code: wire.CodeBadRequest},
		{in: "[null]", code: wire.CodeBadRequest},
		{in: "[true]", code: wire.CodeBadRequest},
		{in: "[[1]]", code: wire.CodeBadRequest},
		{in: `[{"id":1}]`, code: wire.CodeBadRequest},
		{in: "[9223372036854775808]", code: wire.CodeBadRequest},
		{in: many(wire.MaxAckIDs), want: nil}, // checked by length below
		{in: many(wire.MaxAckIDs + 1), code: wire.CodeTooLong},
	}
	for _, tc := range cases {
		got, perr := intList(rawField(tc.in), "ids")
		short := tc.in
		if len(short) > 40 {
			short = short[:40] + "..."
		}
		if perrCode(perr) != tc.code {
			t.Errorf("intList(%s) error %v, want %q", short, perr, tc.code)
			continue
		}
		if perr != nil {
			if !strings.Contains(perr.Msg, `"ids"`) {
				t.Errorf("intList(%s) error does not name the field: %q", short, perr.Msg)
			}
			continue
		}
		if got == nil {
			t.Errorf("intList(%s) = nil, want a non-nil slice", short)
		}
		if tc.want == nil {
			if len(got) != wire.MaxAckIDs || got[0] != 1 || got[wire.MaxAckIDs-1] != wire.MaxAckIDs {
				t.Errorf("intList(%s): %d ids", short, len(got))
			}
			continue
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("intList(%s) = %v, want %v", short, got, tc.want)
		}
	}
}

func TestClamp(t *testing.T) {
	cases := []struct {
		in   string
		want int
		code wire.Code
	}{
		{in: "", want: 50},
		{in: "null", want: 50},
		{in: "1", want: 1},
		{in: "0", want: 1},
		{in: "-1", want: 1},
		{in: "-9223372036854775808", want: 1},
		{in: "50", want: 50},
		{in: "199", want: 199},
		{in: "200", want: 200},
		{in: "201", want: 200},
		{in: "9223372036854775807", want: 200},
		{in: "1.5", code: wire.CodeBadRequest},
		{in: "1e2", code: wire.CodeBadRequest},
		{in: `"10"`, code: wire.CodeBadRequest},
		{in: "9223372036854775808", code: wire.CodeBadRequest},
		{in: "[10]", code: wire.CodeBadRequest},
	}
	for _, tc := range cases {
		got, perr := clamp(rawField(tc.in), "limit", wire.DefaultHistory, wire.MaxHistory)
		if perrCode(perr) != tc.code || (perr == nil && got != tc.want) {
			t.Errorf("clamp(%s) = %d, %v; want %d, %q", tc.in, got, perr, tc.want, tc.code)
		}
	}
	// The online limits.
	if got, _ := clamp(nil, "limit", wire.DefaultOnline, wire.MaxOnline); got != 100 {
		t.Errorf("online default %d", got)
	}
	if got, _ := clamp(rawField("5000"), "limit", wire.DefaultOnline, wire.MaxOnline); got != 1000 {
		t.Errorf("online max %d", got)
	}
}

// --- rate limiter ---

func TestRateLimiter(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	fresh := func(rate float64) *rateLimiter {
		l := newRateLimiter(rate)
		l.last = t0
		return &l
	}
	take := func(l *rateLimiter, now time.Time, n int) int {
		got := 0
		for i := 0; i < n; i++ {
			if l.allow(now) {
				got++
			}
		}
		return got
	}

	t.Run("burst is twice the rate", func(t *testing.T) {
		l := fresh(10)
		if got := take(l, t0, 100); got != 20 {
			t.Fatalf("burst: %d allowed, want 20", got)
		}
		if l.allow(t0) {
			t.Fatal("allowed past the burst")
		}
	})
	t.Run("refill", func(t *testing.T) {
		l := fresh(10)
		take(l, t0, 20)
		if l.allow(at(50 * time.Millisecond)) {
			t.Error("half a token after 50ms allowed a request")
		}
		if !l.allow(at(100 * time.Millisecond)) {
			t.Error("a token after 100ms was refused")
		}
		if l.allow(at(100 * time.Millisecond)) {
			t.Error("two requests on one token")
		}
		// One second refills rate tokens.
		if got := take(l, at(1100*time.Millisecond), 100); got != 10 {
			t.Errorf("after 1s: %d allowed, want 10", got)
		}
	})
	t.Run("refill caps at burst", func(t *testing.T) {
		l := fresh(10)
		take(l, t0, 20)
		if got := take(l, at(time.Hour), 100); got != 20 {
			t.Errorf("after an hour idle: %d allowed, want 20", got)
		}
	})
	t.Run("steady rate", func(t *testing.T) {
		l := fresh(100)
		take(l, t0, 200)
		allowed := 0
		for i := 1; i <= 10000; i++ { // 10 s in 1 ms steps
			if l.allow(at(time.Duration(i) * time.Millisecond)) {
				allowed++
			}
		}
		if allowed < 990 || allowed > 1000 {
			t.Errorf("10 s at 1000 tries/s with rate 100: %d allowed, want ~1000", allowed)
		}
	})
	t.Run("denied requests cost nothing", func(t *testing.T) {
		l := fresh(1)
		take(l, t0, 2)
		take(l, at(500*time.Millisecond), 50) // all refused
		if !l.allow(at(time.Second)) {
			t.Error("refused requests used up tokens")
		}
	})
	t.Run("rate 0 is unlimited", func(t *testing.T) {
		l := fresh(0)
		if got := take(l, t0, 100000); got != 100000 {
			t.Errorf("rate 0: %d of 100000 allowed", got)
		}
	})
	t.Run("fractional rate", func(t *testing.T) {
		l := fresh(0.5) // one request per 2 s, burst 1
		if !l.allow(t0) {
			t.Fatal("first request refused")
		}
		if l.allow(at(time.Second)) {
			t.Error("allowed after 1 s at rate 0.5")
		}
		if !l.allow(at(2 * time.Second)) {
			t.Error("refused after 2 s at rate 0.5")
		}
	})
	t.Run("rate below 0.5 still allows requests", func(t *testing.T) {
		// With burst = 2*rate < 1 the bucket never holds a whole token, so
		// every request is refused forever. -rate accepts any value >= 0.
		l := fresh(0.25)
		if got := take(l, at(time.Minute), 1); got != 1 {
			t.Errorf("rate 0.25: refused after a minute idle")
		}
	})
}

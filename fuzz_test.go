package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"chat/internal/wire"
)

// Fuzz tests of the wire layer. Plain `go test` runs their seeds; the full
// test script fuzzes each for a few seconds:
//
//	go test -run '^$' -fuzz '^FuzzDecodeFrame$' -fuzztime 5s .

// fuzzSeedLines are request lines beyond decodeFrameCases that reach the
// field helpers and the handlers.
var fuzzSeedLines = []string{
	`{"type":"register","rid":1,"name":"alice","password":"password1"}`,
	`{"type":"register","rid":2,"name":"Łukasz.张-伟_9","password":"ééé"}`,
	`{"type":"register","rid":3,"name":"a b","password":"12345"}`,
	`{"type":"login","rid":4,"name":"alice","password":"password1"}`,
	`{"type":"login","rid":5,"id":1,"password":"password1"}`,
	`{"type":"login","rid":6,"id":-1,"password":"x"}`,
	`{"type":"login","rid":7,"name":"","password":""}`,
	`{"type":"chat","rid":8,"to":2,"text":"hi \"there\" \u2028","cid":"c-1"}`,
	`{"type":"chat","rid":9,"to":"2","text":5}`,
	`{"type":"group_chat","rid":10,"group":3,"text":"x","cid":""}`,
	`{"type":"ack","rid":11,"ids":[1,2,3]}`,
	`{"type":"ack","rid":12,"ids":[1.5,"2",null,[3]]}`,
	`{"type":"ack","rid":13,"ids":{}}`,
	`{"type":"history","rid":14,"with":2,"before":100,"limit":500}`,
	`{"type":"history","rid":15,"group":3,"limit":-1}`,
	`{"type":"history","rid":16,"group":3,"limit":1e2}`,
	`{"type":"history","rid":50,"with":2,"after":7,"before":100,"limit":5}`,
	`{"type":"history","rid":51,"group":3,"after":"7"}`,
	`{"type":"chat","rid":52,"to":2,"text":" \t\n\u3000\u00a0\u2003"}`,
	`{"type":"chat","rid":53,"to":2,"text":"\n x \n"}`,
	`{"type":"online","rid":17,"limit":0}`,
	`{"type":"add_friend","rid":18,"name":"bob"}`,
	`{"type":"add_friend","rid":19,"friend":9223372036854775808}`,
	`{"type":"create_group","rid":20,"name":"gophers","desc":"all about Go"}`,
	`{"type":"create_group","rid":21,"name":"g","desc":7}`,
	`{"type":"join_group","rid":22,"group":0}`,
	`{"type":"leave_group","rid":23,"group":1}`,
	`{"type":"whois","rid":24,"id":1}`,
	`{"type":"friends","rid":25}`,
	`{"type":"groups","rid":26}`,
	`{"type":"logout","rid":27}`,
	`{"type":"ping","rid":{"nested":[1,2,{"a":null}]}}`,
	`{"type":"ping","rid":[1, 2]}`,
	`{"type":"ping","rid":true}`,
	`{"TYPE":"ping","Rid":1}`,
	"{\"type\":\"ping\"}\n{\"type\":\"ping\",\"rid\":2}\n\n{\"type\":1}",
	"{\"type\":\"ping\"}\r\n \r\n[]",
	strings.Repeat("[", 100) + strings.Repeat("]", 100),
	`{"type":"ping","text":"` + strings.Repeat("x", 1100) + `"}`, // over FuzzServerFrames's -max-frame
}

func addDecodeSeeds(f *testing.F) {
	for _, tc := range decodeFrameCases {
		f.Add([]byte(tc.in))
	}
	for _, s := range fuzzSeedLines {
		f.Add([]byte(s))
	}
}

// isBlank is the blank-line rule, written independently of decodeFrame: a
// trailing \r is dropped, and spaces, tabs and \r make a line blank.
func isBlank(line []byte) bool {
	line = bytes.TrimSuffix(line, []byte{'\r'})
	return len(bytes.Trim(line, " \t\r")) == 0
}

// checkErrFrame checks an error frame built for a decode failure.
func checkErrFrame(t *testing.T, rid json.RawMessage, perr *ProtoError) {
	t.Helper()
	b := errReply("error", rid, perr)
	if len(b) == 0 || b[len(b)-1] != '\n' || bytes.IndexByte(b[:len(b)-1], '\n') >= 0 {
		t.Fatalf("error frame is not one line ended by \\n: %q", b)
	}
	if !json.Valid(b[:len(b)-1]) {
		t.Fatalf("error frame is not valid JSON: %q", b)
	}
}

func FuzzDecodeFrame(f *testing.F) {
	addDecodeSeeds(f)
	f.Fuzz(func(t *testing.T, line []byte) {
		if bytes.IndexByte(line, '\n') >= 0 {
			return // the line reader splits at '\n': no line holds one
		}
		in := append([]byte(nil), line...)
		r, perr := decodeFrame(line)
		if !bytes.Equal(in, line) {
			t.Fatalf("decodeFrame changed its input")
		}
		switch {
		case r == nil && perr == nil:
			if !isBlank(line) {
				t.Fatalf("decodeFrame(%q) = nil, nil for a line that is not blank", line)
			}
			return
		case isBlank(line):
			t.Fatalf("decodeFrame(%q) = %+v, %v for a blank line", line, r, perr)
		}
		body := bytes.TrimSuffix(line, []byte{'\r'})
		checkScanMatchesMap(t, body)
		if perr != nil {
			if !protoCodes[perr.Code] {
				t.Fatalf("decodeFrame(%q): unknown code %q", line, perr.Code)
			}
			if perr.Code != wire.CodeBadFrame && perr.Code != wire.CodeBadRequest {
				t.Fatalf("decodeFrame(%q): code %s, want bad_frame or bad_request", line, perr.Code)
			}
			if perr.Code == wire.CodeBadFrame {
				if r != nil {
					t.Fatalf("decodeFrame(%q): bad_frame with a request", line)
				}
				// Only lines that are not a valid JSON object (or not UTF-8).
				var obj map[string]json.RawMessage
				if utf8.Valid(body) && json.Unmarshal(body, &obj) == nil && obj != nil {
					t.Fatalf("decodeFrame(%q): bad_frame for a valid JSON object", line)
				}
			}
			if perr.Code == wire.CodeBadRequest {
				if r == nil || r.Type != "" {
					t.Fatalf("decodeFrame(%q): bad_request with request %+v", line, r)
				}
			}
			var rid json.RawMessage
			if r != nil {
				rid = r.RID
			}
			checkErrFrame(t, rid, perr)
		} else {
			if r == nil || r.Type == "" {
				t.Fatalf("decodeFrame(%q) = %+v with no error", line, r)
			}
			if !utf8.Valid(line) || !json.Valid(body) {
				t.Fatalf("decodeFrame(%q) accepted a line that is not valid UTF-8 JSON", line)
			}
			if !utf8.ValidString(r.Type) {
				t.Fatalf("decodeFrame(%q): Type %q is not valid UTF-8", line, r.Type)
			}
			// The reply echoes type and rid: one valid line, rid byte for byte.
			b, err := okReply(r.Type, r.RID, nil)
			if err != nil {
				t.Fatal(err)
			}
			if b[len(b)-1] != '\n' || bytes.IndexByte(b[:len(b)-1], '\n') >= 0 || !json.Valid(b[:len(b)-1]) {
				t.Fatalf("reply to %q is not one valid JSON line: %q", line, b)
			}
			var back struct {
				Type string          `json:"type"`
				RID  json.RawMessage `json:"rid"`
			}
			if err := json.Unmarshal(b, &back); err != nil || back.Type != r.Type || !bytes.Equal(back.RID, r.RID) {
				t.Fatalf("reply to %q is %q: type/rid do not come back (%v)", line, b, err)
			}
		}
		if r != nil && r.RID != nil {
			if !json.Valid(r.RID) || bytes.Equal(r.RID, []byte("null")) {
				t.Fatalf("decodeFrame(%q): RID %q", line, r.RID)
			}
			if !bytes.Contains(line, r.RID) {
				t.Fatalf("decodeFrame(%q): RID %q is not the bytes the client sent", line, r.RID)
			}
		}
	})
}

// FuzzRequest runs every field helper the handlers use over every field of
// any frame that decodes, checking that none panics, that errors carry
// protocol codes, and that each agrees with encoding/json.
func FuzzRequest(f *testing.F) {
	addDecodeSeeds(f)
	f.Fuzz(func(t *testing.T, line []byte) {
		r, _ := decodeFrame(line)
		if r == nil {
			return
		}
		w := &r.f
		fields := map[string]json.RawMessage{
			"type": w.Type, "rid": w.RID, "name": w.Name, "password": w.Password,
			"id": w.ID, "to": w.To, "text": w.Text, "cid": w.CID, "group": w.Group,
			"friend": w.Friend, "desc": w.Desc, "limit": w.Limit, "with": w.With,
			"before": w.Before, "after": w.After, "ids": w.IDs,
		}
		for name, raw := range fields {
			if raw != nil && !json.Valid(raw) {
				t.Fatalf("field %s holds invalid JSON %q", name, raw)
			}
			fuzzFieldHelpers(t, name, raw)
		}
	})
}

func checkCode(t *testing.T, what string, perr *ProtoError, allowed ...wire.Code) {
	t.Helper()
	if perr == nil {
		return
	}
	if !protoCodes[perr.Code] || perr.Msg == "" {
		t.Fatalf("%s: bad error %+v", what, perr)
	}
	for _, c := range allowed {
		if perr.Code == c {
			return
		}
	}
	t.Fatalf("%s: code %s, want one of %v", what, perr.Code, allowed)
}

func fuzzFieldHelpers(t *testing.T, name string, raw json.RawMessage) {
	present := raw != nil && string(raw) != "null"

	// Strings: optStr, str, and the checks applied to them.
	s, ok, perr := optStr(raw, name)
	checkCode(t, "optStr", perr, wire.CodeBadRequest)
	var want string
	wantOK := present && raw[0] == '"' && json.Unmarshal(raw, &want) == nil && want != ""
	if ok != wantOK || (ok && s != want) || (perr == nil) != (wantOK || !present) {
		t.Fatalf("optStr(%q) = %q, %v, %v; encoding/json says %q", raw, s, ok, perr, want)
	}
	s2, perr2 := str(raw, name)
	checkCode(t, "str", perr2, wire.CodeBadRequest)
	if (perr2 == nil) != ok || s2 != s {
		t.Fatalf("str(%q) = %q, %v; optStr said %q, %v", raw, s2, perr2, s, ok)
	}
	if ok {
		if !utf8.ValidString(s) {
			t.Fatalf("string field %q decoded to invalid UTF-8 %q", raw, s)
		}
		back := wire.AppendString(nil, s)
		var got string
		if err := json.Unmarshal(back, &got); err != nil || got != s {
			t.Fatalf("wire.AppendString(%q) = %q does not decode back (%v)", s, back, err)
		}
		if wire.ValidName(s) != (refValidName(s) && utf8.RuneCountInString(s) <= wire.MaxNameRunes) {
			t.Fatalf("wire.ValidName(%q) = %v", s, wire.ValidName(s))
		}
		if perr := checkName(s); (perr == nil) != wire.ValidName(s) {
			t.Fatalf("checkName(%q) = %v, validName %v", s, perr, wire.ValidName(s))
		} else {
			checkCode(t, "checkName", perr, wire.CodeInvalidName)
		}
		perr := checkPassword(s)
		checkCode(t, "checkPassword", perr, wire.CodeInvalidPass)
		if (perr == nil) != (len(s) >= wire.MinPasswordBytes && len(s) <= wire.MaxPasswordBytes) {
			t.Fatalf("checkPassword(%d bytes) = %v", len(s), perr)
		}
		perr = checkText(s)
		checkCode(t, "checkText", perr, wire.CodeTooLong, wire.CodeBadRequest)
		if (perr == nil) != (len(s) <= wire.MaxTextBytes && strings.TrimFunc(s, unicode.IsSpace) != "") {
			t.Fatalf("checkText(%d bytes) = %v", len(s), perr)
		}
	}

	// Integers: optInt, id, clamp.
	n, ok, perr := optInt(raw, name)
	checkCode(t, "optInt", perr, wire.CodeBadRequest)
	var wantN int64
	wantOK = present && json.Unmarshal(raw, &wantN) == nil
	if ok != wantOK || (ok && n != wantN) || (perr == nil) != (wantOK || !present) {
		t.Fatalf("optInt(%q) = %d, %v, %v; encoding/json says %d, %v", raw, n, ok, perr, wantN, wantOK)
	}
	n2, perr2 := id(raw, name)
	checkCode(t, "id", perr2, wire.CodeBadRequest)
	if (perr2 == nil) != ok || n2 != n {
		t.Fatalf("id(%q) = %d, %v; optInt said %d, %v", raw, n2, perr2, n, ok)
	}
	lim, perr := clamp(raw, name, wire.DefaultHistory, wire.MaxHistory)
	checkCode(t, "clamp", perr, wire.CodeBadRequest)
	if perr == nil {
		if lim < 1 || lim > wire.MaxHistory {
			t.Fatalf("clamp(%q) = %d, out of 1..%d", raw, lim, wire.MaxHistory)
		}
		if !ok && lim != wire.DefaultHistory {
			t.Fatalf("clamp(absent) = %d", lim)
		}
		if ok && n >= 1 && n <= wire.MaxHistory && int64(lim) != n {
			t.Fatalf("clamp(%q) = %d, want %d", raw, lim, n)
		}
	} else if ok {
		t.Fatalf("clamp(%q) failed on an integer: %v", raw, perr)
	}

	// Integer lists.
	ids, perr := intList(raw, name)
	checkCode(t, "intList", perr, wire.CodeBadRequest, wire.CodeTooLong)
	var wantIDs []int64
	listOK := present && raw[0] == '[' && json.Unmarshal(raw, &wantIDs) == nil
	// encoding/json takes null elements as 0; the protocol does not.
	if listOK && bytes.Contains(raw, []byte("null")) {
		var items []json.RawMessage
		json.Unmarshal(raw, &items)
		for _, it := range items {
			if string(it) == "null" {
				listOK = false
			}
		}
	}
	if listOK && len(wantIDs) > wire.MaxAckIDs {
		if perr == nil || perr.Code != wire.CodeTooLong {
			t.Fatalf("intList with %d ids: %v", len(wantIDs), perr)
		}
		return
	}
	if (perr == nil) != listOK {
		t.Fatalf("intList(%q) = %v, %v; encoding/json says %v, ok=%v", raw, ids, perr, wantIDs, listOK)
	}
	if perr == nil {
		if ids == nil || len(ids) != len(wantIDs) {
			t.Fatalf("intList(%q) = %v, want %v", raw, ids, wantIDs)
		}
		for i := range ids {
			if ids[i] != wantIDs[i] {
				t.Fatalf("intList(%q) = %v, want %v", raw, ids, wantIDs)
			}
		}
	}
}

// refValidName is docs/protocol.md's name rule, but for the length, written out
// again with the unicode tables.
func refValidName(s string) bool {
	if s == "" || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if !(r == '_' || r == '.' || r == '-' || unicode.In(r, unicode.L, unicode.M, unicode.Nd)) {
			return false
		}
	}
	return true
}

// FuzzServerFrames sends each input, as a line, to a real server on a fresh
// connection, then a ping. Every line up to -max-frame gets exactly one reply
// (none if blank), in order, echoing its rid byte for byte; the connection
// survives and the ping is answered. A longer line gets frame_too_large and
// the connection is closed. Everything the server sends is valid JSON.
func FuzzServerFrames(f *testing.F) {
	addDecodeSeeds(f)
	const maxFrame = 1024
	ts := startServer(f, sqliteURL(f), func(c *Config) { c.MaxFrame = maxFrame })
	addr := ts.addr
	f.Fuzz(func(t *testing.T, data []byte) {
		nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		defer nc.Close()
		nc.SetDeadline(time.Now().Add(20 * time.Second))

		// What the server should answer, line by line.
		type expect struct {
			typ  string          // reply type
			code wire.Code       // the error code if known; "" allows any outcome
			ok   bool            // must succeed (ping)
			rid  json.RawMessage // echoed byte for byte; nil: no rid
			line []byte          // the request, for messages
		}
		var want []expect
		tooLarge := false
		for _, line := range bytes.Split(data, []byte{'\n'}) {
			if len(bytes.TrimSuffix(line, []byte{'\r'})) > maxFrame {
				tooLarge = true
				break
			}
			r, perr := decodeFrame(line)
			switch {
			case r == nil && perr == nil:
				continue
			case perr != nil:
				e := expect{typ: "error", code: perr.Code, line: line}
				if r != nil {
					e.rid = r.RID
				}
				want = append(want, e)
			default:
				e := expect{typ: r.Type, rid: r.RID, line: line}
				if _, known := commands[r.Type]; !known {
					e.typ, e.code = "error", wire.CodeUnknownType
				} else if r.Type == "ping" {
					e.ok = true
				}
				want = append(want, e)
			}
		}
		if !tooLarge {
			want = append(want, expect{typ: "ping", ok: true, rid: json.RawMessage(`"end"`)})
		}

		out := append(append([]byte(nil), data...), '\n')
		out = append(out, `{"type":"ping","rid":"end"}`+"\n"...)
		go func() {
			// Written concurrently: a long input must not block on a server
			// that writes replies we have not read yet.
			nc.Write(out)
		}()

		br := bufio.NewReaderSize(nc, 1<<16)
		got := 0
		for {
			line, err := br.ReadBytes('\n')
			if err != nil {
				if tooLarge && len(line) == 0 && got == len(want)+1 {
					return // frame_too_large came, then the close
				}
				t.Fatalf("read after %d of %d replies (too large: %v): %v (partial %q)", got, len(want), tooLarge, err, line)
			}
			var fr map[string]json.RawMessage
			if err := json.Unmarshal(line, &fr); err != nil || fr == nil {
				t.Fatalf("server sent a frame that is not a JSON object: %q", line)
			}
			if bytes.IndexByte(line[:len(line)-1], '\n') >= 0 || !utf8.Valid(line) {
				t.Fatalf("bad frame %q", line)
			}
			if _, isReply := fr["ok"]; !isReply {
				if _, hasRID := fr["rid"]; hasRID {
					t.Fatalf("push with a rid: %q", line)
				}
				continue // a push (only if the input logged in)
			}
			if got == len(want) {
				if !tooLarge {
					t.Fatalf("unexpected frame after the ping reply: %q", line)
				}
				if string(fr["code"]) != `"frame_too_large"` || string(fr["type"]) != `"error"` {
					t.Fatalf("want frame_too_large, got %q", line)
				}
				got++
				continue
			}
			e := want[got]
			got++
			if err := checkReply(fr, e.typ, e.code, e.ok, e.rid); err != nil {
				t.Fatalf("reply %d to %q: %v: %q", got, e.line, err, line)
			}
			if !tooLarge && got == len(want) {
				return // the ping was answered
			}
		}
	})
}

func checkReply(fr map[string]json.RawMessage, typ string, code wire.Code, ok bool, rid json.RawMessage) error {
	var gotType string
	if err := json.Unmarshal(fr["type"], &gotType); err != nil || gotType != typ {
		return fmt.Errorf("type %s, want %q", fr["type"], typ)
	}
	if !bytes.Equal(fr["rid"], rid) {
		return fmt.Errorf("rid %s, want %s", fr["rid"], rid)
	}
	switch string(fr["ok"]) {
	case "true":
		if code != "" {
			return fmt.Errorf("ok, want %s", code)
		}
		if _, has := fr["code"]; has {
			return fmt.Errorf("ok reply with a code")
		}
	case "false":
		if ok {
			return fmt.Errorf("failed, want ok")
		}
		var c wire.Code
		if err := json.Unmarshal(fr["code"], &c); err != nil || !protoCodes[c] {
			return fmt.Errorf("code %s is not a protocol code", fr["code"])
		}
		if code != "" && c != code {
			return fmt.Errorf("code %s, want %s", c, code)
		}
		var msg string
		if err := json.Unmarshal(fr["error"], &msg); err != nil || msg == "" {
			return fmt.Errorf("error text %s", fr["error"])
		}
		if c == wire.CodeInternal {
			return fmt.Errorf("internal error")
		}
	default:
		return fmt.Errorf("ok is %s", fr["ok"])
	}
	return nil
}

// checkScanMatchesMap: the hand-written field scanner must find exactly what
// encoding/json finds, for every valid object it does not hand back.
func checkScanMatchesMap(t *testing.T, body []byte) {
	trimmed := bytes.TrimLeft(body, " \t\r")
	if !utf8.Valid(body) || !json.Valid(body) || len(trimmed) == 0 || trimmed[0] != '{' {
		return
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("json.Valid but Unmarshal failed: %v", err)
	}
	var viaMap, viaScan wireRequest
	viaMap.fill(m)
	if viaScan.scan(body) && !reflect.DeepEqual(viaMap, viaScan) {
		t.Fatalf("scan(%q) = %+v, encoding/json finds %+v", body, viaScan, viaMap)
	}
}

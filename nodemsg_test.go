package main

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"chat/internal/wire"
)

func TestNodeMsgRoundTrip(t *testing.T) {
	t.Parallel()
	frame := []byte(`{"type":"message","message":{"id":981,"from":12,"from_name":"alice","to":13,"text":"hi","ts":1}}` + "\n")
	msgs := []nodeMsg{
		{kind: nodeUserPush, user: 13, push: &Push{Kind: pushMessage, MsgID: 981, At: topicSeq{77, 5}, Frame: frame}},
		{kind: nodeUserPush, user: 1<<62 + 3, push: &Push{Kind: pushFriendAdded, Ref: 12, Frame: []byte(`{"type":"friend_added"}` + "\n")}},
		{kind: nodeGroupPush, group: 3, except: 12, push: &Push{Kind: pushMessage, MsgID: 982, At: topicSeq{3, 9}, Frame: frame}},
		{kind: nodeGroupPush, group: 4, push: &Push{Kind: pushPlain, Frame: []byte(`{"type":"member_joined","group":4}` + "\n")}},
		{kind: nodeUserPush, user: 13, push: &Push{Kind: pushPlain, Except: 1<<61 + 5, Frame: []byte(`{"type":"typing"}` + "\n")}},
		{kind: nodeGroupPush, group: 4, push: &Push{Kind: pushMessage, MsgID: 983, At: topicSeq{3, 10}, Except: 99, Frame: frame}},
		{kind: nodeUserPush, user: 14, push: &Push{Kind: pushFriendRemoved, Ref: 13}}, // state only: no frame
		{kind: nodeKick, user: 13, session: 1<<63 + 7},
		{kind: nodeRedeliver},
	}
	// One envelope of all of them, as flush builds it, read back in order.
	var env []byte
	for i := range msgs {
		env = msgs[i].append(env)
	}
	rest := env
	for i, want := range msgs {
		got, r, err := decodeNodeMsg(rest)
		if err != nil {
			t.Fatalf("record %d: %v (rest %q)", i, err, rest)
		}
		rest = r
		if !reflect.DeepEqual(got, want) {
			t.Errorf("record %d:\n got %+v %+v\nwant %+v %+v", i, got, got.push, want, want.push)
		}
	}
	if len(rest) != 0 {
		t.Errorf("left over: %q", rest)
	}
	if !bytes.Equal(redeliverEnvelope, []byte("r\n")) {
		t.Errorf("redeliverEnvelope = %q", redeliverEnvelope)
	}
}

// An older node sends fewer numbers; a newer one may send more. Garbage is
// an error, never a panic.
func TestDecodeNodeMsg(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want nodeMsg
		err  bool
	}{
		{in: "u 5 0 0\n{}\n", want: nodeMsg{kind: nodeUserPush, user: 5, push: &Push{Frame: []byte("{}\n")}}},
		{in: "g 3 1 0 9 8 7 6 5 4\n{\"a\":[1]}\n", want: nodeMsg{kind: nodeGroupPush, group: 3, except: 1, push: &Push{MsgID: 9, At: topicSeq{8, 7}, Except: 6, Frame: []byte("{\"a\":[1]}\n")}}},
		{in: "k 5\n", want: nodeMsg{kind: nodeKick, user: 5}},
		{in: "r\n", want: nodeMsg{kind: nodeRedeliver}},
		{in: "", err: true},
		{in: "u 5 0 0", err: true},
		{in: "u 5 0 0\n{}", err: true},
		{in: "x 1\n", err: true},
		{in: "uu 1\n", err: true},
		{in: "\n", err: true},
	}
	for _, tt := range tests {
		got, _, err := decodeNodeMsg([]byte(tt.in))
		if (err != nil) != tt.err {
			t.Errorf("%q: err = %v, want error %v", tt.in, err, tt.err)
			continue
		}
		if err == nil && !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%q:\n got %+v %+v\nwant %+v %+v", tt.in, got, got.push, tt.want, tt.want.push)
		}
	}
}

// A push whose frame is not one JSON object in UTF-8 is dropped, never
// passed on to clients; the records after it are still read.
func TestDecodeNodeMsgBadFrame(t *testing.T) {
	t.Parallel()
	for _, frame := range []string{
		"F",                       // not JSON
		" {}",                     // not starting with the object
		"[1,2]",                   // JSON, not an object
		`"text"`,                  // likewise
		`{"type":"message"`,       // cut short
		`{"type":"message"}{}`,    // two values
		`{"type":"message"}x`,     // trailing garbage
		"{\"text\":\"\xff\xfe\"}", // not UTF-8
		"{\"text\":\"\x00\"}",     // a raw control character
	} {
		env := "u 5 0 0\n" + frame + "\nk 7 9\n"
		m, rest, err := decodeNodeMsg([]byte(env))
		if !errors.Is(err, errNodeMsgFrame) || m.push != nil {
			t.Errorf("frame %q: got %+v, %v; want errNodeMsgFrame", frame, m, err)
			continue
		}
		next, rest, err := decodeNodeMsg(rest)
		if err != nil || next != (nodeMsg{kind: nodeKick, user: 7, session: 9}) || len(rest) != 0 {
			t.Errorf("frame %q: the next record: %+v, %v, rest %q", frame, next, err, rest)
		}
	}
	// A group push likewise.
	if _, _, err := decodeNodeMsg([]byte("g 3 1 0\nnot json\n")); !errors.Is(err, errNodeMsgFrame) {
		t.Errorf("group push with a bad frame: %v", err)
	}
}

func FuzzDecodeNodeMsg(f *testing.F) {
	f.Add([]byte("u 5 0 0 9 8 7\n{}\nk 1 2\nr\n"))
	f.Add([]byte("g 3 1 0\nF\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		for len(data) > 0 {
			m, rest, err := decodeNodeMsg(data)
			if err != nil {
				return
			}
			if len(rest) >= len(data) {
				t.Fatalf("no progress on %q", data)
			}
			// What was decoded encodes and decodes to the same record.
			again, _, err := decodeNodeMsg(m.append(nil))
			if err != nil || !reflect.DeepEqual(again, m) {
				t.Fatalf("%+v re-encoded decodes to %+v, %v", m, again, err)
			}
			data = rest
		}
	})
}

// BenchmarkDecodeNodeMsg decodes one message push as a node receives it:
// a short chat, and one at the largest text (4096 bytes); and times the
// frame check (validFrame) alone.
func BenchmarkDecodeNodeMsg(b *testing.B) {
	for _, n := range []int{16, 4096} {
		text := strings.Repeat("see you at 6, \"the usual\" place? ", n/32+1)[:n]
		msg := &Message{Message: wire.Message{ID: 981, From: 12, FromName: "alice", To: 13, Text: text, TS: 1764300000000}, Topic: 77, Seq: 5}
		m := nodeMsg{kind: nodeUserPush, user: 13, push: &Push{Kind: pushMessage, MsgID: 981, At: topicSeq{77, 5}, Frame: messagePush(msg, false)}}
		env := m.append(nil)
		b.Run(fmt.Sprintf("text=%d", n), func(b *testing.B) {
			b.SetBytes(int64(len(env)))
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := decodeNodeMsg(env); err != nil {
					b.Fatal(err)
				}
			}
		})
		// The frame check alone: what validating costs of the above.
		frame := m.push.Frame[:len(m.push.Frame)-1]
		b.Run(fmt.Sprintf("text=%d/validFrame", n), func(b *testing.B) {
			b.SetBytes(int64(len(frame)))
			for b.Loop() {
				if !validFrame(frame) {
					b.Fatal("invalid")
				}
			}
		})
	}
}

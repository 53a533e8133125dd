package main

import (
	"bytes"
	"reflect"
	"testing"
)

func TestNodeMsgRoundTrip(t *testing.T) {
	t.Parallel()
	frame := []byte(`{"type":"message","message":{"id":981,"from":12,"from_name":"alice","to":13,"text":"hi","ts":1}}` + "\n")
	msgs := []nodeMsg{
		{kind: nodeUserPush, user: 13, push: &Push{Kind: pushMessage, MsgID: 981, At: topicSeq{77, 5}, Frame: frame}},
		{kind: nodeUserPush, user: 1<<62 + 3, push: &Push{Kind: pushFriendAdded, Friend: 12, Frame: []byte(`{"type":"friend_added"}` + "\n")}},
		{kind: nodeGroupPush, group: 3, except: 12, push: &Push{Kind: pushMessage, MsgID: 982, At: topicSeq{3, 9}, Frame: frame}},
		{kind: nodeGroupPush, group: 4, push: &Push{Kind: pushPlain, Frame: []byte(`{"type":"member_joined","group":4}` + "\n")}},
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
		{in: "u 5 0 0\nF\n", want: nodeMsg{kind: nodeUserPush, user: 5, push: &Push{Frame: []byte("F\n")}}},
		{in: "g 3 1 0 9 8 7 6 5\nF\n", want: nodeMsg{kind: nodeGroupPush, group: 3, except: 1, push: &Push{MsgID: 9, At: topicSeq{8, 7}, Frame: []byte("F\n")}}},
		{in: "k 5\n", want: nodeMsg{kind: nodeKick, user: 5}},
		{in: "r\n", want: nodeMsg{kind: nodeRedeliver}},
		{in: "", err: true},
		{in: "u 5 0 0", err: true},
		{in: "u 5 0 0\nF", err: true},
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

package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"unicode/utf8"
)

// A node-to-node message travels through Redis pub/sub. A PUBLISH carries
// an envelope of one or more records, each a head line of space-separated
// fields, and for a push the frame as the recipients get it (ending in
// '\n') on the line after:
//
//	u USER KIND REF MSGID TOPIC SEQ EXCEPTCONN\n FRAME         a push to a user
//	g GROUP EXCEPTUSER KIND MSGID TOPIC SEQ EXCEPTCONN\n FRAME  a push to a group's members but one
//	k USER SESSION\n                             close that session of the user
//	r\n                                          push every session what is pending
//
// Numbers missing at the end of a head read as 0, so a node may add fields
// at the end and an older node still reads the rest. The encoder and the
// decoder are side by side here; nodemsg_test.go holds them to each other.
//
// A frame goes to clients as it came, so the decoder checks that it is one
// JSON object in UTF-8, as the server checks a client's frames: whatever
// else reaches the channel (another program, a garbled publish) is
// dropped, never written to a client, where it would break the framing.

// nodeMsgKind is a record's first field.
type nodeMsgKind byte

const (
	nodeUserPush  nodeMsgKind = 'u'
	nodeGroupPush nodeMsgKind = 'g'
	nodeKick      nodeMsgKind = 'k'
	nodeRedeliver nodeMsgKind = 'r'
)

// nodeMsg is one record of an envelope.
type nodeMsg struct {
	kind    nodeMsgKind
	user    int64  // nodeUserPush, nodeKick
	group   int64  // nodeGroupPush
	except  int64  // nodeGroupPush: the member who does not get it
	session uint64 // nodeKick
	push    *Push  // nodeUserPush, nodeGroupPush (Friend only for a user)
}

// redeliverEnvelope asks every node to push each session what is pending.
var redeliverEnvelope = (&nodeMsg{kind: nodeRedeliver}).append(nil)

// append appends the record's wire form.
func (m *nodeMsg) append(b []byte) []byte {
	b = append(b, byte(m.kind))
	num := func(n int64) {
		b = append(b, ' ')
		b = strconv.AppendInt(b, n, 10)
	}
	switch m.kind {
	case nodeUserPush:
		num(m.user)
		num(int64(m.push.Kind))
		num(m.push.Ref)
	case nodeGroupPush:
		num(m.group)
		num(m.except)
		num(int64(m.push.Kind))
	case nodeKick:
		num(m.user)
		num(int64(m.session))
	}
	if m.push != nil {
		num(m.push.MsgID)
		num(m.push.At.topic)
		num(m.push.At.seq)
		num(int64(m.push.Except))
		b = append(b, '\n')
		if len(m.push.Frame) == 0 {
			return append(b, '\n') // a push that changes state only
		}
		return append(b, m.push.Frame...) // ends in '\n'
	}
	return append(b, '\n')
}

var (
	errNodeMsg = errors.New("malformed node message")
	// errNodeMsgFrame: the record's head is sound but its frame is not one
	// JSON object; the record is dropped and the next one can be read.
	errNodeMsgFrame = errors.New("node message whose frame is not a JSON object")
)

// decodeNodeMsg reads the first record of data and returns the rest. A push's
// frame is copied: it outlives the envelope. With errNodeMsgFrame the rest
// is still returned: only that record is lost. With errNodeMsg the rest is
// nil: the envelope cannot be read further.
func decodeNodeMsg(data []byte) (m nodeMsg, rest []byte, err error) {
	head, rest, ok := bytes.Cut(data, []byte{'\n'})
	if !ok {
		return m, nil, errNodeMsg
	}
	f := bytes.Fields(head)
	if len(f) == 0 || len(f[0]) != 1 {
		return m, nil, errNodeMsg
	}
	num := func(i int) int64 {
		if i >= len(f) {
			return 0
		}
		n, _ := strconv.ParseInt(string(f[i]), 10, 64)
		return n
	}
	m.kind = nodeMsgKind(f[0][0])
	switch m.kind {
	case nodeRedeliver:
		return m, rest, nil
	case nodeKick:
		m.user, m.session = num(1), uint64(num(2))
		return m, rest, nil
	case nodeUserPush:
		m.user = num(1)
		m.push = &Push{Kind: pushKind(num(2)), Ref: num(3), MsgID: num(4), At: topicSeq{num(5), num(6)}, Except: uint64(num(7))}
	case nodeGroupPush:
		m.group, m.except = num(1), num(2)
		m.push = &Push{Kind: pushKind(num(3)), MsgID: num(4), At: topicSeq{num(5), num(6)}, Except: uint64(num(7))}
	default:
		return m, nil, errNodeMsg
	}
	frame, rest, ok := bytes.Cut(rest, []byte{'\n'})
	if !ok {
		return m, nil, errNodeMsg
	}
	if len(frame) == 0 {
		return m, rest, nil // state only
	}
	if !validFrame(frame) {
		return nodeMsg{}, rest, errNodeMsgFrame
	}
	m.push.Frame = append(make([]byte, 0, len(frame)+1), frame...)
	m.push.Frame = append(m.push.Frame, '\n')
	return m, rest, nil
}

// validFrame reports whether frame (without its newline) is one JSON object
// in UTF-8. encoding/json's Valid does not check UTF-8 inside strings.
func validFrame(frame []byte) bool {
	return len(frame) > 0 && frame[0] == '{' && utf8.Valid(frame) && json.Valid(frame)
}

package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"time"
	"unicode"
	"unicode/utf8"

	"chat/internal/wire"
)

// The wire objects are shared with the client and the load generator.
type (
	User   = wire.User
	Member = wire.Member
	Group  = wire.Group
)

// Message is a stored chat message: its wire form and where it is stored.
type Message struct {
	wire.Message
	Topic int64 // conversation the message belongs to; never sent
	Seq   int64 // position within the topic; never sent
}

// Role is a member's role within a topic, as the store keeps it. The
// numbers are stored (members.role): append, never renumber.
type Role uint8

const (
	RolePeer    Role = iota // one side of a private conversation
	RoleMember              // a group member
	RoleCreator             // the group's creator
	RoleAdmin               // a group admin, named by the creator
)

// Wire is the role as a member's "role" field.
func (r Role) Wire() wire.Role {
	switch r {
	case RoleCreator:
		return wire.RoleCreator
	case RoleAdmin:
		return wire.RoleAdmin
	}
	return wire.RoleMember
}

// manages reports whether the role may invite to a private group, kick,
// and update the group: the creator's and an admin's.
func (r Role) manages() bool { return r == RoleCreator || r == RoleAdmin }

// messagePush is the frame pushed to each recipient of m. backlog marks a
// message pushed from the pending backlog (at login, or after the cluster
// lost pushes) rather than live: clients may show it as sent while away.
func messagePush(m *Message, backlog bool) []byte {
	b := make([]byte, 0, 144+len(m.Text)+len(m.FromName))
	b = append(b, `{"type":"message","message":`...)
	b = m.AppendJSON(b)
	if backlog {
		b = append(b, `,"backlog":true`...)
	}
	return append(b, "}\n"...)
}

// wireRequest holds every request field undecoded, so that each handler can
// tell a missing field from one of the wrong kind. Unknown fields are ignored,
// and so are fields named in another case.
type wireRequest struct {
	Type     json.RawMessage
	RID      json.RawMessage
	Name     json.RawMessage
	Password json.RawMessage
	ID       json.RawMessage
	To       json.RawMessage
	Text     json.RawMessage
	CID      json.RawMessage
	Group    json.RawMessage
	Friend   json.RawMessage
	Desc     json.RawMessage
	Limit    json.RawMessage
	With     json.RawMessage
	Before   json.RawMessage
	After    json.RawMessage
	IDs      json.RawMessage
	Device   json.RawMessage
	All      json.RawMessage
	User     json.RawMessage
	Role     json.RawMessage
	Private  json.RawMessage
	Query    json.RawMessage
	Old      json.RawMessage // change_password
	New      json.RawMessage // change_password
}

// scan fills w from a line that json.Valid accepted and that starts with
// '{', without encoding/json: it finds each top-level key and the bytes of
// its value, copied out of the line (whose buffer the reader reuses). A
// repeated key keeps its last value, as encoding/json does. It returns
// false, having filled nothing reliable, for a key with escapes in it.
func (w *wireRequest) scan(line []byte) bool {
	s := wire.NewScanner(bytes.Clone(line))
	err := s.Object(func(key []byte) error {
		if bytes.IndexByte(key, '\\') >= 0 {
			return errEscapedKey
		}
		v, err := s.Raw()
		if err != nil {
			return err
		}
		w.set(key, v)
		return nil
	})
	return err == nil
}

var errEscapedKey = errors.New("a key with escapes")

func (w *wireRequest) set(key []byte, v json.RawMessage) {
	switch string(key) {
	case "type":
		w.Type = v
	case "rid":
		w.RID = v
	case "name":
		w.Name = v
	case "password":
		w.Password = v
	case "id":
		w.ID = v
	case "to":
		w.To = v
	case "text":
		w.Text = v
	case "cid":
		w.CID = v
	case "group":
		w.Group = v
	case "friend":
		w.Friend = v
	case "desc":
		w.Desc = v
	case "limit":
		w.Limit = v
	case "with":
		w.With = v
	case "before":
		w.Before = v
	case "after":
		w.After = v
	case "ids":
		w.IDs = v
	case "device":
		w.Device = v
	case "all":
		w.All = v
	case "user":
		w.User = v
	case "role":
		w.Role = v
	case "private":
		w.Private = v
	case "query":
		w.Query = v
	case "old":
		w.Old = v
	case "new":
		w.New = v
	}
}

// unquote decodes a JSON string value; one without escapes is copied as
// it is (the frame was checked to be valid JSON and UTF-8).
func unquote(raw []byte, s *string) error {
	if bytes.IndexByte(raw, '\\') < 0 && len(raw) >= 2 {
		*s = string(raw[1 : len(raw)-1])
		return nil
	}
	return json.Unmarshal(raw, s)
}

func (w *wireRequest) fill(m map[string]json.RawMessage) {
	w.Type, w.RID, w.Name, w.Password = m["type"], m["rid"], m["name"], m["password"]
	w.ID, w.To, w.Text, w.CID = m["id"], m["to"], m["text"], m["cid"]
	w.Group, w.Friend, w.Desc, w.Limit = m["group"], m["friend"], m["desc"], m["limit"]
	w.With, w.Before, w.After, w.IDs = m["with"], m["before"], m["after"], m["ids"]
	w.Device, w.All = m["device"], m["all"]
	w.User, w.Role, w.Private, w.Query = m["user"], m["role"], m["private"], m["query"]
	w.Old, w.New = m["old"], m["new"]
}

// Request is one decoded frame. Type is empty when the frame had no usable
// type; Err then says why.
type Request struct {
	Type string
	RID  json.RawMessage // echoed byte for byte; nil when absent
	f    wireRequest
}

// decodeFrame parses one line (without its '\n'). It returns nil, nil for a
// blank line. A frame that is not a JSON object is a bad_frame; one whose type
// is missing or not a string comes back with Type "" and a bad_request error.
func decodeFrame(line []byte) (*Request, *ProtoError) {
	line = bytes.TrimSuffix(line, []byte{'\r'})
	trimmed := bytes.TrimLeft(line, " \t\r")
	if len(trimmed) == 0 {
		return nil, nil
	}
	if !utf8.Valid(line) {
		return nil, protoErr(wire.CodeBadFrame, "frame is not valid UTF-8")
	}
	if trimmed[0] != '{' {
		return nil, protoErr(wire.CodeBadFrame, "frame is not a JSON object")
	}
	if !json.Valid(line) {
		return nil, protoErr(wire.CodeBadFrame, "frame is not a JSON object")
	}
	r := &Request{}
	if !r.f.scan(line) {
		// A key with escapes in it: let encoding/json unescape the keys.
		// A map, not a struct: encoding/json matches struct fields without
		// regard to case, and "Text" must not stand in for "text".
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(line, &fields); err != nil {
			return nil, protoErr(wire.CodeBadFrame, "frame is not a JSON object")
		}
		r.f = wireRequest{}
		r.f.fill(fields)
	}
	if len(r.f.RID) > 0 && !bytes.Equal(r.f.RID, []byte("null")) {
		r.RID = r.f.RID
	}
	if len(r.f.Type) == 0 || r.f.Type[0] != '"' || unquote(r.f.Type, &r.Type) != nil {
		return r, protoErr(wire.CodeBadRequest, `"type" must be a string`)
	}
	if r.Type == "" {
		return r, protoErr(wire.CodeBadRequest, `"type" must not be empty`)
	}
	return r, nil
}

func present(raw json.RawMessage) bool {
	return len(raw) > 0 && !bytes.Equal(raw, []byte("null"))
}

// str returns a required, non-empty string field.
func str(raw json.RawMessage, field string) (string, *ProtoError) {
	s, ok, perr := optStr(raw, field)
	if perr != nil {
		return "", perr
	}
	if !ok {
		return "", protoErr(wire.CodeBadRequest, "%q is required", field)
	}
	return s, nil
}

// optStr returns an optional string field; ok is false when it is absent.
// Present but empty is a bad_request: no field here has "" as a meaning.
func optStr(raw json.RawMessage, field string) (s string, ok bool, perr *ProtoError) {
	if !present(raw) {
		return "", false, nil
	}
	if raw[0] != '"' || unquote(raw, &s) != nil {
		return "", false, protoErr(wire.CodeBadRequest, "%q must be a string", field)
	}
	if s == "" {
		return "", false, protoErr(wire.CodeBadRequest, "%q must not be empty", field)
	}
	return s, true, nil
}

// optInt returns an optional integer field; ok is false when it is absent.
func optInt(raw json.RawMessage, field string) (n int64, ok bool, perr *ProtoError) {
	if !present(raw) {
		return 0, false, nil
	}
	n, err := strconv.ParseInt(string(raw), 10, 64)
	if err != nil {
		return 0, false, protoErr(wire.CodeBadRequest, "%q must be an integer", field)
	}
	return n, true, nil
}

// id returns a required id field. Ids that cannot exist (zero, negative) are
// left for the existence check, which answers no_such_user or no_such_group.
func id(raw json.RawMessage, field string) (int64, *ProtoError) {
	n, ok, perr := optInt(raw, field)
	if perr != nil {
		return 0, perr
	}
	if !ok {
		return 0, protoErr(wire.CodeBadRequest, "%q is required", field)
	}
	return n, nil
}

func intList(raw json.RawMessage, field string) ([]int64, *ProtoError) {
	if !present(raw) {
		return nil, protoErr(wire.CodeBadRequest, "%q is required", field)
	}
	var items []json.RawMessage
	if raw[0] != '[' || json.Unmarshal(raw, &items) != nil {
		return nil, protoErr(wire.CodeBadRequest, "%q must be an array of integers", field)
	}
	if len(items) > wire.MaxAckIDs {
		return nil, protoErr(wire.CodeTooLong, "%q holds more than %d ids", field, wire.MaxAckIDs)
	}
	out := make([]int64, 0, len(items))
	for _, item := range items {
		v, err := strconv.ParseInt(string(item), 10, 64)
		if err != nil {
			return nil, protoErr(wire.CodeBadRequest, "%q must be an array of integers", field)
		}
		out = append(out, v)
	}
	return out, nil
}

// clamp applies an optional limit field's default and range.
func clamp(raw json.RawMessage, field string, def, max int64) (int, *ProtoError) {
	n, ok, perr := optInt(raw, field)
	if perr != nil {
		return 0, perr
	}
	switch {
	case !ok:
		n = def
	case n < 1:
		n = 1
	case n > max:
		n = max
	}
	return int(n), nil
}

func checkName(s string) *ProtoError {
	if !wire.ValidName(s) {
		return protoErr(wire.CodeInvalidName, "names are 1-%d letters, marks and digits, and _ . -", wire.MaxNameRunes)
	}
	return nil
}

func checkPassword(p string) *ProtoError {
	if len(p) < wire.MinPasswordBytes || len(p) > wire.MaxPasswordBytes {
		return protoErr(wire.CodeInvalidPass, "passwords are %d-%d bytes", wire.MinPasswordBytes, wire.MaxPasswordBytes)
	}
	return nil
}

// checkText checks a message text (chat, group_chat, and later edit): one
// of white space only counts as empty, like "" (which str refuses), and is
// checked first, being a bad_request (docs/protocol.md, "Check order").
// Any other text is kept byte for byte, never trimmed.
func checkText(s string) *ProtoError {
	if allSpace(s) {
		return protoErr(wire.CodeBadRequest, "%q must not be empty", "text")
	}
	if len(s) > wire.MaxTextBytes {
		return protoErr(wire.CodeTooLong, "text is longer than %d bytes", wire.MaxTextBytes)
	}
	return nil
}

// allSpace reports whether s is empty or all white space (unicode.IsSpace).
// It stops at the first other character, so a long text costs little.
func allSpace(s string) bool {
	for _, r := range s {
		if !unicode.IsSpace(r) {
			return false
		}
	}
	return true
}

// replyHead starts a reply frame: {"type":T,"rid":R
func replyHead(b []byte, typ string, rid json.RawMessage) []byte {
	b = append(b, `{"type":`...)
	b = wire.AppendString(b, typ)
	if rid != nil {
		b = append(b, `,"rid":`...)
		b = append(b, rid...)
	}
	return b
}

// okReply encodes a successful reply. result is nil or a struct whose JSON
// fields are spliced into the reply object.
func okReply(typ string, rid json.RawMessage, result any) ([]byte, error) {
	b := replyHead(make([]byte, 0, 128), typ, rid)
	b = append(b, `,"ok":true`...)
	if fa, ok := result.(fieldAppender); ok {
		return append(fa.appendFields(b), "}\n"...), nil
	}
	if result != nil {
		fields, err := marshalNoEscape(result)
		if err != nil {
			return nil, err
		}
		if len(fields) > 2 { // strip the braces of {...}
			b = append(b, ',')
			b = append(b, fields[1:len(fields)-1]...)
		}
	}
	return append(b, "}\n"...), nil
}

// fieldAppender is a result that writes its own fields (",k":v...), for the
// replies on the hot path.
type fieldAppender interface {
	appendFields(b []byte) []byte
}

// errReply encodes a failed reply.
func errReply(typ string, rid json.RawMessage, e *ProtoError) []byte {
	b := replyHead(make([]byte, 0, 96+len(e.Msg)), typ, rid)
	b = append(b, `,"ok":false,"code":`...)
	b = wire.AppendString(b, string(e.Code))
	b = append(b, `,"error":`...)
	b = wire.AppendString(b, e.Msg)
	if e.RetryAfter > 0 {
		b = append(b, `,"retry_after":`...)
		b = strconv.AppendInt(b, retryAfterMS(e.RetryAfter), 10)
	}
	return append(b, "}\n"...)
}

// retryAfterMS is d in whole milliseconds, rounded up: a client that waits
// that long is not early.
func retryAfterMS(d time.Duration) int64 {
	return int64((d + time.Millisecond - 1) / time.Millisecond)
}

// pushFrame encodes a push: {"type":T, ...fields of v}.
func pushFrame(typ string, v any) []byte {
	b, err := okReplyFields(typ, v)
	if err != nil {
		panic(err) // push payloads are server-built values that always encode
	}
	return b
}

func okReplyFields(typ string, v any) ([]byte, error) {
	fields, err := marshalNoEscape(v)
	if err != nil {
		return nil, err
	}
	b := append(make([]byte, 0, 32+len(fields)), `{"type":`...)
	b = wire.AppendString(b, typ)
	if len(fields) > 2 {
		b = append(b, ',')
		b = append(b, fields[1:len(fields)-1]...)
	}
	return append(b, "}\n"...), nil
}

func marshalNoEscape(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte{'\n'}), nil
}

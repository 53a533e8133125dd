package wire

import "strconv"

// User is a user as the wire carries it. Online is nil where it is not known.
type User struct {
	ID     int64  `json:"id"`
	Name   string `json:"name"`
	Online *bool  `json:"online,omitempty"`
}

// Role is a member's role within a group, as a wire string.
type Role string

const (
	RoleCreator Role = "creator"
	RoleAdmin   Role = "admin"
	RoleMember  Role = "member"
)

// Member is a user within a group.
type Member struct {
	ID     int64  `json:"id"`
	Name   string `json:"name"`
	Role   Role   `json:"role"`
	Online bool   `json:"online"`
}

// Group is a group as the wire carries it. Members is never nil when a
// server sends a group with members.
type Group struct {
	ID      int64    `json:"id"`
	Name    string   `json:"name"`
	Desc    string   `json:"desc"`
	Private bool     `json:"private"`
	Members []Member `json:"members"`
}

// GroupInfo is a group without its members, where the wire says "group
// without members" (the invited push, find_groups).
type GroupInfo struct {
	ID      int64  `json:"id"`
	Name    string `json:"name"`
	Desc    string `json:"desc"`
	Private bool   `json:"private"`
}

// Message is a chat message. Exactly one of To and Group is set.
type Message struct {
	ID       int64  `json:"id"`
	From     int64  `json:"from"`
	FromName string `json:"from_name"`
	To       int64  `json:"to,omitempty"`
	Group    int64  `json:"group,omitempty"`
	Text     string `json:"text"`
	TS       int64  `json:"ts"` // server time, Unix milliseconds
	// Edited is the time of the last edit, Unix milliseconds; 0 (and left
	// out) until the message is edited.
	Edited int64 `json:"edited,omitempty"`
	// Deleted: the message is a tombstone and Text is "".
	Deleted bool `json:"deleted,omitempty"`
}

// AppendJSON appends the message's wire form, by hand: it is on every push.
func (m *Message) AppendJSON(b []byte) []byte {
	b = append(b, `{"id":`...)
	b = strconv.AppendInt(b, m.ID, 10)
	b = append(b, `,"from":`...)
	b = strconv.AppendInt(b, m.From, 10)
	b = append(b, `,"from_name":`...)
	b = AppendString(b, m.FromName)
	if m.Group != 0 {
		b = append(b, `,"group":`...)
		b = strconv.AppendInt(b, m.Group, 10)
	} else {
		b = append(b, `,"to":`...)
		b = strconv.AppendInt(b, m.To, 10)
	}
	b = append(b, `,"text":`...)
	b = AppendString(b, m.Text)
	b = append(b, `,"ts":`...)
	b = strconv.AppendInt(b, m.TS, 10)
	if m.Edited != 0 {
		b = append(b, `,"edited":`...)
		b = strconv.AppendInt(b, m.Edited, 10)
	}
	if m.Deleted {
		b = append(b, `,"deleted":true`...)
	}
	return append(b, '}')
}

// MarshalJSON lets a Message sit inside values encoded with encoding/json.
func (m Message) MarshalJSON() ([]byte, error) { return m.AppendJSON(nil), nil }

// Bool returns a pointer to b, for User.Online.
func Bool(b bool) *bool { return &b }

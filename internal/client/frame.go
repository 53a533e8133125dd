package client

import (
	"encoding/json"
	"strconv"

	"chat/internal/wire"
)

// Frames as the client decodes them.

// frame is any frame from the server: a reply (it has a rid, or is an
// error) or a push. Group is an object in replies (and in the invited and
// group_updated pushes) and an id in other pushes; With is always an id
// (the other side of a private conversation, as this session sees it).
type frame struct {
	Type          string          `json:"type"`
	RID           json.RawMessage `json:"rid"`
	OK            bool            `json:"ok"`
	Code          wire.Code       `json:"code"`
	Error         string          `json:"error"`
	User          *wire.User      `json:"user"`
	Friend        *wire.User      `json:"friend"`
	Friends       []wire.User     `json:"friends"`
	Users         []wire.User     `json:"users"`
	Total         int             `json:"total"`
	Groups        []group         `json:"groups"`
	Group         json.RawMessage `json:"group"`
	Message       *message        `json:"message"`
	Messages      []message       `json:"messages"`
	Reason        string          `json:"reason"`
	Backlog       bool            `json:"backlog"`  // a message push from the pending backlog
	Requests      []wire.User     `json:"requests"` // login: incoming friend requests
	Incoming      []wire.User     `json:"incoming"`
	Outgoing      []wire.User     `json:"outgoing"`
	Status        string          `json:"status"` // add_friend: "requested" or "friends"
	Sessions      []session       `json:"sessions"`
	Conversations []conv          `json:"conversations"`
	ID            int64           `json:"id"`   // read, deleted: a message id
	With          int64           `json:"with"` // read, typing, deleted
	By            *wire.User      `json:"by"`   // invited, member_removed
}

// message is a message as the client reads it: the wire's, and the state
// version 2 adds. The fields are the client's own rather than
// wire.Message's so that the client reads them whatever that type holds;
// being shallower, they win over fields of the same JSON name there. (The
// client only decodes messages: wire.Message's MarshalJSON, promoted here,
// would encode the wire's fields alone.)
type message struct {
	wire.Message
	Edited  int64 `json:"edited"`  // ms: the time of the last edit; 0 if never edited
	Deleted bool  `json:"deleted"` // a tombstone: Text is ""
}

// group is a group as the client reads it, with the fields of version 2:
// Private, and Count in find_groups.
type group struct {
	wire.Group
	Private bool `json:"private"`
	Count   int  `json:"count"`
}

// session is one of the user's sessions, in the sessions reply.
type session struct {
	Device string `json:"device"`
	Since  int64  `json:"since"` // ms
}

// conv is one conversation of the conversations reply: With or Group.
type conv struct {
	With   *wire.User `json:"with"`
	Group  *group     `json:"group"`
	Last   *message   `json:"last"`
	Read   int64      `json:"read"`
	Unread int        `json:"unread"`
}

// decodeFrame decodes one line from the server.
func decodeFrame(line []byte) (*frame, error) {
	var f frame
	if err := json.Unmarshal(line, &f); err != nil {
		return nil, err
	}
	return &f, nil
}

// rid returns the frame's rid when it is one of ours (an integer).
func (f *frame) rid() (int64, bool) {
	if len(f.RID) == 0 || string(f.RID) == "null" {
		return 0, false
	}
	n, err := strconv.ParseInt(string(f.RID), 10, 64)
	return n, err == nil
}

// groupObj returns the group object of a reply.
func (f *frame) groupObj() *group {
	var g group
	if len(f.Group) == 0 || f.Group[0] != '{' || json.Unmarshal(f.Group, &g) != nil {
		return nil
	}
	return &g
}

// groupID returns the group id of a push.
func (f *frame) groupID() int64 {
	n, _ := strconv.ParseInt(string(f.Group), 10, 64)
	return n
}

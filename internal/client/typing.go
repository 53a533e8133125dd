package client

import (
	"sort"
	"strings"
	"time"

	"chat/internal/wire"
)

// Typing notices, on the core goroutine.
//
// Sending: on a terminal, each key typed on the input line reaches the
// core (termUI.keys); when the line is a message being typed (a plain line
// with a conversation open, or /msg USER TEXT, /g GROUP TEXT and their seed
// forms, once some TEXT is there, to a user or group known without a
// lookup), a typing notice goes to that conversation, at most one every
// typingEvery per conversation. Notices are never queued: one that cannot
// go now (disconnected, logging in again, too many requests in flight) is
// dropped, as stale by the time it could go. Plain mode sends none: no one
// types there.
//
// Showing: on a terminal, who is typing is shown before the prompt
// ("[typing: bob, carol (#3 gophers)] bob> ") until typingShow passes
// without a notice from them or their message arrives; the line being
// typed is redrawn intact. In plain mode each notice is a line
// ("typing bob -> you").

const (
	typingEvery = 3 * time.Second // at most one notice a conversation this often
	typingShow  = 5 * time.Second // a notice shows for this long
	maxTypers   = 100             // notices shown at once; past it the oldest go
)

// typerKey is one user typing in one conversation.
type typerKey struct {
	user int64
	conv convKey
}

// typingState is what the client sends and shows of typing notices.
type typingState struct {
	sent   map[convKey]time.Time // when a notice last went to each conversation
	off    bool                  // the server does not know "typing": send none
	typers map[typerKey]typer    // who is typing where, shown until when
	status string                // as last shown
}

type typer struct {
	name  string
	until time.Time
}

// typed takes in the line being typed on the terminal (with the key just
// typed), and sends a typing notice when it is due.
func (c *core) typed(line string, now time.Time) {
	t := &c.typing
	if c.me == nil || !c.ready() || t.off || len(c.inflight) >= maxInflight {
		return
	}
	k, ok := c.typingTarget(line)
	if !ok {
		return
	}
	if last, ok := t.sent[k]; ok && now.Sub(last) < typingEvery {
		return
	}
	if t.sent == nil || len(t.sent) >= maxMarks {
		t.sent = map[convKey]time.Time{}
	}
	t.sent[k] = now
	c.write(&request{typ: "typing", fields: k.fields(), onReply: func(f *frame) {
		if !f.OK && f.Code == wire.CodeUnknownType {
			c.typing.off = true
		}
	}})
}

// typingTarget is the conversation a line being typed goes to, when it is
// a message with some text already and its conversation is known without
// a lookup.
func (c *core) typingTarget(line string) (convKey, bool) {
	cmd, a, err := parseLine(line)
	if err != nil || cmd == nil {
		return convKey{}, false
	}
	var k convKey
	switch {
	case cmd == say:
		if c.open == nil {
			return convKey{}, false
		}
		if c.open.Group {
			k.group = c.open.ID
		} else {
			k.with = c.open.ID
		}
	case cmd.name == "msg":
		k.with = a.Target.ID
		if k.with == 0 {
			k.with, _ = c.names.userID(a.Target.Name)
		}
	case cmd.name == "g":
		k.group = a.Target.ID
		if k.group == 0 {
			k.group, _ = c.names.groupID(a.Target.Name)
		}
	}
	if k.with == 0 && k.group == 0 || k.with == c.me.ID {
		return convKey{}, false
	}
	return k, true
}

// messageSent lets the next key typed to k send a notice at once: a new
// message is being typed.
func (c *core) messageSent(k convKey) {
	delete(c.typing.sent, k)
}

// onTypingPush takes in a typing notice: a line in plain mode, the status
// before the prompt on a terminal.
func (c *core) onTypingPush(f *frame, now time.Time) {
	if f.User == nil || c.me != nil && f.User.ID == c.me.ID {
		return
	}
	c.names.addUser(f.User.ID, f.User.Name)
	if c.cfg.plain {
		c.showPush(outNotice, pushNeeds(c.me, f), func() string { return fmtPush(c.names, f) })
		return
	}
	t := &c.typing
	if t.typers == nil {
		t.typers = map[typerKey]typer{}
	}
	if len(t.typers) >= maxTypers {
		clear(t.typers)
	}
	t.typers[typerKey{f.User.ID, pushConv(f)}] = typer{name: f.User.Name, until: now.Add(typingShow)}
	c.showTyping(now)
}

// stoppedTyping drops the notice of a user whose message in k arrived.
func (c *core) stoppedTyping(user int64, k convKey, now time.Time) {
	if _, ok := c.typing.typers[typerKey{user, k}]; ok {
		delete(c.typing.typers, typerKey{user, k})
		c.showTyping(now)
	}
}

// showTyping drops the notices that expired, shows the others, and sets
// the timer for the next to expire.
func (c *core) showTyping(now time.Time) {
	t := &c.typing
	var next time.Time
	for k, ty := range t.typers {
		if !ty.until.After(now) {
			delete(t.typers, k)
		} else if next.IsZero() || ty.until.Before(next) {
			next = ty.until
		}
	}
	if s := typingStatus(c.names, t.typers); s != t.status {
		t.status = s
		c.out.setStatus(s)
	}
	c.typingDue = nil
	if !next.IsZero() {
		c.typingDue = time.After(next.Sub(now))
	}
}

// typingStatus is the status shown for the notices:
// "typing: bob, carol (#3 gophers)", or "" for none.
func typingStatus(n *names, typers map[typerKey]typer) string {
	if len(typers) == 0 {
		return ""
	}
	parts := make([]string, 0, len(typers))
	for k, ty := range typers {
		s := clean(ty.name)
		if k.conv.group != 0 {
			s += " (" + n.group(k.conv.group) + ")"
		}
		parts = append(parts, s)
	}
	sort.Strings(parts)
	return "typing: " + strings.Join(parts, ", ")
}

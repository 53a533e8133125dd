package client

// Push lines that name a user or a group the client does not know yet, on
// the core goroutine.
//
// Some pushes carry an id without the name, and with several devices a
// session may not have met it: one's own message copied from another
// device names its recipient by id; a group created or joined on another
// device is not pushed to this one (the protocol pushes one's own actions
// to one's other sessions only for messages, reads, edits and deletions),
// so its messages, edits and members' comings and goings name it by id.
// Rather than print "user 12" or "#3", the client looks the name up (whois
// by id; groups for a group) and holds that line, and every push line
// after it, until the answer comes: the lines keep the order of the
// pushes. A lookup that fails (a deleted account, a group left meanwhile)
// prints the number after all, and that id is not looked up again. Held
// lines are printed anyway when the session ends (kicked, given up) or the
// client exits.

// holdState is the push lines waiting for names.
type holdState struct {
	lines   []heldLine
	pending map[convKey]bool // users and groups being looked up
	unknown map[convKey]bool // those whose lookup failed
}

// heldLine is one push line held; line makes it when it is printed, with
// the names known by then ("" prints nothing).
type heldLine struct {
	kind outKind
	line func() string
}

// maxHeld bounds the lines held (a lookup that takes long while pushes
// pour in); past it they are printed as they are.
const maxHeld = 10000

// showPush prints a push's line now, or once the names being looked up
// are known. need is a user or group the line names (the zero key: none).
func (c *core) showPush(kind outKind, need convKey, line func() string) {
	h := &c.hold
	if c.unknownName(need) {
		c.lookUp(need)
	}
	if len(h.pending) == 0 && len(h.lines) == 0 {
		if s := line(); s != "" {
			c.out.print(kind, s)
		}
		return
	}
	h.lines = append(h.lines, heldLine{kind, line})
	if len(h.lines) >= maxHeld {
		c.releaseHeld()
	}
}

// showLine is showPush for a line made now.
func (c *core) showLine(kind outKind, line string) {
	c.showPush(kind, convKey{}, func() string { return line })
}

// unknownName reports whether k is worth looking up.
func (c *core) unknownName(k convKey) bool {
	switch {
	case c.me == nil || c.hold.unknown[k]:
		return false
	case k.group != 0:
		return !c.names.knowsGroup(k.group)
	case k.with != 0:
		return !c.names.knows(k.with)
	}
	return false
}

// lookUp asks the server for a user's name (whois), or for the user's
// groups (a group's name), once at a time for each.
func (c *core) lookUp(k convKey) {
	h := &c.hold
	if h.pending[k] {
		return
	}
	if h.pending == nil {
		h.pending = map[convKey]bool{}
	}
	h.pending[k] = true
	r := &request{typ: "whois", fields: map[string]any{"id": k.with}, retry: true}
	if k.group != 0 {
		r.typ, r.fields = "groups", nil
	}
	r.onReply = func(f *frame) {
		if f.OK && f.User != nil {
			c.names.addUser(f.User.ID, f.User.Name)
		}
		if f.OK {
			for i := range f.Groups {
				c.names.addGroup(&f.Groups[i])
			}
		}
		if k.with != 0 && !c.names.knows(k.with) || k.group != 0 && !c.names.knowsGroup(k.group) {
			if h.unknown == nil || len(h.unknown) >= maxNames {
				h.unknown = map[convKey]bool{}
			}
			h.unknown[k] = true
		}
		delete(h.pending, k)
		if len(h.pending) == 0 {
			c.releaseHeld()
		}
	}
	c.submit(r)
}

// releaseHeld prints the lines held, with the names known now, and stops
// waiting for the lookups still out (their answers only add names).
func (c *core) releaseHeld() {
	h := &c.hold
	lines := h.lines
	h.lines = nil
	clear(h.pending)
	for _, l := range lines {
		if s := l.line(); s != "" {
			c.out.print(l.kind, s)
		}
	}
}

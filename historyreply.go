package main

// historyPage is the result of a history reply: its messages, oldest
// first, encoded once while the reply was fitted to -send-buffer.
type historyPage struct {
	enc []byte // the messages' JSON objects, comma-separated
}

func (p historyPage) appendFields(b []byte) []byte {
	b = append(b, `,"messages":[`...)
	b = append(b, p.enc...)
	return append(b, ']')
}

// pageDir is the way a history page runs from its bound, and so which end
// of it a reply too big for -send-buffer keeps.
type pageDir uint8

const (
	pageBack    pageDir = iota // the newest below "before": keep the newest
	pageForward                // the oldest above "after": keep the oldest
)

func (d pageDir) String() string {
	if d == pageForward {
		return "forward"
	}
	return "back"
}

// historyReply builds the result of r, a history request, from msgs, the
// page the store returned (oldest first), so that the whole reply frame is
// at most -send-buffer bytes (docs/protocol.md, "Limits and abuse": a reply
// that could not fit at all is made smaller, never dropped).
//
// The rule: the end of the page nearest its bound is kept, the far end
// left out. History without "after" (pageBack) is the newest messages
// below "before": the OLDEST are left out and the newest kept, and the
// client pages on with "before" = the first id it got. History with
// "after" (pageForward) is the oldest messages above "after": the NEWEST
// are left out and the oldest kept, and the client pages on with "after" =
// the last id it got. Either way it misses nothing; it cannot tell a cut
// page from a short one, and need not. The message at the kept end is
// always there: one message fits any -send-buffer the server accepts,
// unless -max-frame is set near its minimum (a 4096-byte text escaped is
// at most 24.6 KB).
func (s *Server) historyReply(r *Request, msgs []*Message, dir pageDir) historyPage {
	empty, _ := okReply(r.Type, r.RID, historyPage{}) // a fieldAppender: no error
	room := int(s.cfg.SendBuffer) - len(empty)
	// Measure from the kept end inwards; then encode the ones kept, oldest
	// first.
	var scratch []byte
	size, keep := 0, 0
	for k := range msgs {
		i := k
		if dir == pageBack {
			i = len(msgs) - 1 - k
		}
		scratch = msgs[i].AppendJSON(scratch[:0])
		n := len(scratch)
		if keep > 0 {
			n++ // the comma
			if size+n > room {
				break
			}
		}
		size += n
		keep++
	}
	if keep < len(msgs) {
		s.metrics.historyShrunk.Add(1)
	}
	kept := msgs[:keep]
	if dir == pageBack {
		kept = msgs[len(msgs)-keep:]
	}
	enc := make([]byte, 0, size)
	for i, m := range kept {
		if i > 0 {
			enc = append(enc, ',')
		}
		enc = m.AppendJSON(enc)
	}
	return historyPage{enc: enc}
}

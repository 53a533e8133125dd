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

// historyReply builds the result of r, a history request, from msgs, the
// page the store returned (oldest first), so that the whole reply frame is
// at most -send-buffer bytes (docs/protocol.md, "Limits and abuse": a reply
// that could not fit at all is made smaller, never dropped).
//
// The rule: history without "after" is the newest messages below "before",
// so when they do not all fit, the OLDEST are left out and the newest
// kept. A client then pages on as usual, with "before" = the first id it
// got, and misses nothing; it cannot tell a cut page from a short one, and
// need not. (With "after", paging forwards, version 2, not built yet, the
// newest would be left out instead.) The newest message is always kept: one
// message fits any -send-buffer the server accepts, unless -max-frame is
// set near its minimum (a 4096-byte text escaped is at most 24.6 KB).
func (s *Server) historyReply(r *Request, msgs []*Message) historyPage {
	empty, _ := okReply(r.Type, r.RID, historyPage{}) // a fieldAppender: no error
	room := int(s.cfg.SendBuffer) - len(empty)
	// Measure from the newest back; then encode the ones kept, oldest first.
	var scratch []byte
	size, keep := 0, 0
	for i := len(msgs) - 1; i >= 0; i-- {
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
	enc := make([]byte, 0, size)
	for i, m := range msgs[len(msgs)-keep:] {
		if i > 0 {
			enc = append(enc, ',')
		}
		enc = m.AppendJSON(enc)
	}
	return historyPage{enc: enc}
}

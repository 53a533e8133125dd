package main

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"
)

// Tests of history with "after" (paging forwards), of the shrinking of a
// page to -send-buffer from either end, and of the rule that a text of
// white space only counts as empty.

// historyConv is one conversation of a history test: how history names it,
// and its message ids in order.
type historyConv struct {
	name   string
	fields map[string]any
	ids    []int64
}

// historyIDs returns the ids of a history reply's messages, failing the
// test unless the reply is ok with a list (never null).
func historyIDs(t *testing.T, f frame) []int64 {
	t.Helper()
	if !f.ok() {
		t.Fatalf("history: %v", f)
	}
	if _, isList := f["messages"].([]any); !isList {
		t.Fatalf("history: messages is not a list: %v", f)
	}
	var ids []int64
	for _, m := range f.list("messages") {
		ids = append(ids, m.num("id"))
	}
	return ids
}

// chats sends n messages of text from c to user, pipelined, and returns
// their ids in order.
func chats(t *testing.T, c *testClient, to int64, text string, n int) []int64 {
	t.Helper()
	rids := make([]int, n)
	for i := range rids {
		rids[i] = c.send("chat", map[string]any{"to": to, "text": text})
	}
	ids := make([]int64, n)
	for i, rid := range rids {
		f := c.reply(rid)
		if !f.ok() {
			t.Fatalf("chat %d: %v", i, f)
		}
		ids[i] = f.obj("message").num("id")
	}
	return ids
}

// checkPage checks a history reply: ok, and its messages the newest of
// want (want's tail), at least one, whole.
func checkPage(t *testing.T, f frame, want []int64) []frame {
	t.Helper()
	if !f.ok() {
		t.Fatalf("history: %v", f)
	}
	msgs := f.list("messages")
	if len(msgs) == 0 || len(msgs) > len(want) {
		t.Fatalf("history: %d messages of %d", len(msgs), len(want))
	}
	tail := want[len(want)-len(msgs):]
	for i, m := range msgs {
		if m.num("id") != tail[i] {
			t.Fatalf("history message %d: id %d, want %d (the newest kept, oldest first)", i, m.num("id"), tail[i])
		}
	}
	return msgs
}

// with returns base and more in one new map.
func with(base map[string]any, more map[string]any) map[string]any {
	m := make(map[string]any, len(base)+len(more))
	for k, v := range base {
		m[k] = v
	}
	for k, v := range more {
		m[k] = v
	}
	return m
}

// historySetup makes a private conversation of a with b and a group of
// both, seven messages each, interleaved with a's messages to c, so that
// no conversation's ids are consecutive. It returns a and the two
// conversations, and c's conversation's ids (another conversation's).
func historySetup(t *testing.T, addr string) (a *testClient, convs []historyConv, other []int64) {
	t.Helper()
	a = newUser(t, addr, "ha")
	b := newUser(t, addr, "hb")
	c := newUser(t, addr, "hc")
	g := a.must("create_group", map[string]any{"name": "forward"}).obj("group").num("id")
	b.must("join_group", map[string]any{"group": g})
	private := historyConv{name: "private", fields: map[string]any{"with": b.user}}
	group := historyConv{name: "group", fields: map[string]any{"group": g}}
	for i := range 7 {
		private.ids = append(private.ids, a.must("chat", map[string]any{"to": b.user, "text": fmt.Sprint("p", i)}).obj("message").num("id"))
		other = append(other, a.must("chat", map[string]any{"to": c.user, "text": fmt.Sprint("o", i)}).obj("message").num("id"))
		group.ids = append(group.ids, b.must("group_chat", map[string]any{"group": g, "text": fmt.Sprint("g", i)}).obj("message").num("id"))
	}
	return a, []historyConv{private, group}, other
}

func TestHistoryAfter(t *testing.T) {
	t.Parallel()
	// Each case gets the conversation's ids and another conversation's,
	// and gives the request's fields and the ids wanted, oldest first.
	tests := []struct {
		name string
		req  func(ids, other []int64) map[string]any
		want func(ids, other []int64) []int64
	}{
		{"after alone",
			func(ids, _ []int64) map[string]any { return map[string]any{"after": ids[1]} },
			func(ids, _ []int64) []int64 { return ids[2:] }},
		{"after 0 is from the start",
			func(ids, _ []int64) map[string]any { return map[string]any{"after": 0} },
			func(ids, _ []int64) []int64 { return ids }},
		{"after negative is from the start",
			func(ids, _ []int64) map[string]any { return map[string]any{"after": -5} },
			func(ids, _ []int64) []int64 { return ids }},
		{"after, limit smaller: the oldest",
			func(ids, _ []int64) map[string]any { return map[string]any{"after": ids[0], "limit": 3} },
			func(ids, _ []int64) []int64 { return ids[1:4] }},
		{"after, limit 0 clamps to 1",
			func(ids, _ []int64) map[string]any { return map[string]any{"after": ids[2], "limit": 0} },
			func(ids, _ []int64) []int64 { return ids[3:4] }},
		{"after and before",
			func(ids, _ []int64) map[string]any { return map[string]any{"after": ids[1], "before": ids[5]} },
			func(ids, _ []int64) []int64 { return ids[2:5] }},
		{"after and before, limit smaller: the oldest",
			func(ids, _ []int64) map[string]any {
				return map[string]any{"after": ids[0], "before": ids[6], "limit": 2}
			},
			func(ids, _ []int64) []int64 { return ids[1:3] }},
		{"after and before next to each other",
			func(ids, _ []int64) map[string]any { return map[string]any{"after": ids[2], "before": ids[3]} },
			func(ids, _ []int64) []int64 { return nil }},
		{"after and before one apart",
			func(ids, _ []int64) map[string]any { return map[string]any{"after": ids[2], "before": ids[2] + 2} },
			func(ids, _ []int64) []int64 { return nil }}, // ids[2]+1 is another conversation's
		{"after above before",
			func(ids, _ []int64) map[string]any { return map[string]any{"after": ids[5], "before": ids[2]} },
			func(ids, _ []int64) []int64 { return nil }},
		{"after and before 0",
			func(ids, _ []int64) map[string]any { return map[string]any{"after": 0, "before": 0} },
			func(ids, _ []int64) []int64 { return nil }},
		{"after the last id",
			func(ids, _ []int64) map[string]any { return map[string]any{"after": ids[len(ids)-1]} },
			func(ids, _ []int64) []int64 { return nil }},
		{"after beyond every id",
			func(ids, _ []int64) map[string]any { return map[string]any{"after": ids[len(ids)-1] + 1000} },
			func(ids, _ []int64) []int64 { return nil }},
		{"after the largest id there can be",
			func(ids, _ []int64) map[string]any { return map[string]any{"after": int64(math.MaxInt64)} },
			func(ids, _ []int64) []int64 { return nil }},
		{"after another conversation's id",
			func(ids, other []int64) map[string]any { return map[string]any{"after": other[3]} },
			func(ids, other []int64) []int64 { // by id order within this conversation
				return slices.DeleteFunc(slices.Clone(ids), func(id int64) bool { return id <= other[3] })
			}},
		{"after null is absent: the newest page",
			func(ids, _ []int64) map[string]any { return map[string]any{"after": nil, "limit": 2} },
			func(ids, _ []int64) []int64 { return ids[len(ids)-2:] }},
		{"before alone is unchanged: the newest below",
			func(ids, _ []int64) map[string]any { return map[string]any{"before": ids[5], "limit": 2} },
			func(ids, _ []int64) []int64 { return ids[3:5] }},
	}
	forEachStore(t, func(t *testing.T, db string) {
		ts := startServer(t, db)
		a, convs, other := historySetup(t, ts.addr)
		for _, conv := range convs {
			// "after another conversation's id" needs ids on both sides of it.
			if conv.ids[0] > other[3] || conv.ids[len(conv.ids)-1] < other[3] {
				t.Fatalf("the setup does not interleave: %v and %v", conv.ids, other)
			}
			for _, tc := range tests {
				t.Run(conv.name+"/"+tc.name, func(t *testing.T) {
					fields := tc.req(conv.ids, other)
					want := tc.want(conv.ids, other)
					got := historyIDs(t, a.must("history", with(conv.fields, fields)))
					if !slices.Equal(got, want) {
						t.Fatalf("history %v: got %v, want %v", fields, got, want)
					}
				})
			}
			t.Run(conv.name+"/after not an integer", func(t *testing.T) {
				for _, after := range []any{"7", 1.5, true, json.RawMessage(`1e2`), json.RawMessage(`9223372036854775808`), []int{1}, map[string]any{}} {
					f := a.fails("bad_request", "history", with(conv.fields, map[string]any{"after": after}))
					if !strings.Contains(f.str("error"), `"after"`) {
						t.Fatalf("after %v: error %q does not name the field", after, f.str("error"))
					}
				}
			})
		}
	})
}

func TestHistoryAfterPaging(t *testing.T) {
	// Paging forwards from the start, with after = the last id got, sees
	// every message once, in order, and ends with an empty page.
	t.Parallel()
	forEachStore(t, func(t *testing.T, db string) {
		ts := startServer(t, db)
		a, convs, _ := historySetup(t, ts.addr)
		for _, conv := range convs {
			for _, limit := range []int{1, 2, 3, 7, 50} {
				t.Run(fmt.Sprintf("%s/limit %d", conv.name, limit), func(t *testing.T) {
					var got []int64
					after := int64(0)
					for page := 0; ; page++ {
						if page > len(conv.ids)+1 {
							t.Fatalf("no end after %d pages: %v", page, got)
						}
						ids := historyIDs(t, a.must("history", with(conv.fields, map[string]any{"after": after, "limit": limit})))
						if len(ids) == 0 {
							break
						}
						if len(ids) > limit {
							t.Fatalf("page %d: %d messages, limit %d", page, len(ids), limit)
						}
						got = append(got, ids...)
						after = ids[len(ids)-1]
					}
					if !slices.Equal(got, conv.ids) {
						t.Fatalf("paged forwards: %v, want %v", got, conv.ids)
					}
				})
			}
		}
	})
}

// shrinkCase is a history reply that may not fit in -send-buffer: n
// messages of text, with -send-buffer sendBuf and -max-frame maxFrame.
type shrinkCase struct {
	name              string
	sendBuf, maxFrame int
	text              string
	n                 int
	wantShrunk        bool
}

// forEachShrinkCase runs check on each store for three cases: a page that
// fits whole, one that does not (named shrunk), and one message over a
// tiny buffer. check gets ids, the tc.n messages of tc.text stored from a
// user to with, and raw, logged in as that user, to see each reply as sent.
// Then chat_history_shrunk_total must say whether a reply was shrunk.
func forEachShrinkCase(t *testing.T, shrunk, prefix string, check func(t *testing.T, tc shrinkCase, raw *rawConn, with int64, ids []int64)) {
	tests := []shrinkCase{
		{"fits whole", 4 << 20, 64 << 10, bigText, 40, false},
		{shrunk, 256 << 10, 64 << 10, bigText, 200, true},
		{"one message over a tiny buffer", 257, 256, strings.Repeat("z", 200), 3, true},
	}
	forEachStore(t, func(t *testing.T, db string) {
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				ts, a, b := twoUsers(t, db, tc.sendBuf, prefix, func(c *Config) { c.MaxFrame = tc.maxFrame })
				ids := chats(t, a, b.user, tc.text, tc.n)
				a.must("logout", nil)
				raw := dialRaw(t, ts.addr)
				raw.repliesOnly = true
				raw.login(a.user)
				check(t, tc, raw, b.user, ids)
				if shrunk := ts.srv.metrics.historyShrunk.Load(); (shrunk > 0) != tc.wantShrunk {
					t.Fatalf("chat_history_shrunk_total %d, want shrunk %v", shrunk, tc.wantShrunk)
				}
			})
		}
	})
}

func TestLimitHistoryShrunkToSendBuffer(t *testing.T) {
	// A history reply that could not fit in -send-buffer comes back with
	// the newest messages that fit; paging on with before gets the rest.
	t.Parallel()
	forEachShrinkCase(t, "cut to the newest", "hs", func(t *testing.T, tc shrinkCase, raw *rawConn, with int64, ids []int64) {
		var got []int64 // every page, newest first
		before := int64(0)
		for page := 0; ; page++ {
			req := fmt.Sprintf(`{"type":"history","with":%d,"limit":200,"rid":%d`, with, page)
			if before > 0 {
				req += fmt.Sprintf(`,"before":%d`, before)
			}
			fmt.Fprintln(raw, req+"}")
			line := raw.line()
			f := decodeLine(t, line)
			msgs := f.list("messages")
			if len(msgs) == 0 {
				break
			}
			if len(line)+1 > tc.sendBuf && len(msgs) > 1 {
				t.Fatalf("page %d: %d bytes with %d messages, over -send-buffer %d", page, len(line)+1, len(msgs), tc.sendBuf)
			}
			rest := ids[:len(ids)-len(got)]
			checkPage(t, f, rest)
			if page == 0 && (len(msgs) < len(ids)) != tc.wantShrunk {
				t.Fatalf("first page: %d of %d messages, shrunk want %v", len(msgs), len(ids), tc.wantShrunk)
			}
			for i := len(msgs) - 1; i >= 0; i-- {
				got = append(got, msgs[i].num("id"))
			}
			before = msgs[0].num("id")
		}
		if len(got) != len(ids) {
			t.Fatalf("paging got %d messages, want %d", len(got), len(ids))
		}
	})
}

func TestHistoryAfterShrunkToSendBuffer(t *testing.T) {
	// A history page with "after" that could not fit in -send-buffer comes
	// back with its OLDEST messages that fit; paging on with after = the
	// last id got misses nothing.
	t.Parallel()
	forEachShrinkCase(t, "cut to the oldest", "hf", func(t *testing.T, tc shrinkCase, raw *rawConn, with int64, ids []int64) {
		// page asks for the page after after (and below before, if not
		// 0), checks it is the oldest of want that fit, whole, and
		// returns its ids.
		page := func(rid int, after, before int64, want []int64) []int64 {
			t.Helper()
			req := fmt.Sprintf(`{"type":"history","with":%d,"after":%d,"limit":200,"rid":%d`, with, after, rid)
			if before > 0 {
				req += fmt.Sprintf(`,"before":%d`, before)
			}
			fmt.Fprintln(raw, req+"}")
			line := raw.line()
			got := historyIDs(t, decodeLine(t, line))
			if len(got) > 1 && len(line)+1 > tc.sendBuf {
				t.Fatalf("page %d: %d bytes with %d messages, over -send-buffer %d", rid, len(line)+1, len(got), tc.sendBuf)
			}
			if len(want) > 0 && len(got) == 0 {
				t.Fatalf("page %d: empty, want the oldest of %d", rid, len(want))
			}
			if !slices.Equal(got, want[:len(got)]) {
				t.Fatalf("page %d: %v, want the oldest of %v (a head)", rid, got, want)
			}
			return got
		}
		var got []int64
		after := int64(0)
		for rid := 0; ; rid++ {
			p := page(rid, after, 0, ids[len(got):])
			if len(p) == 0 {
				break
			}
			if rid == 0 && (len(p) < len(ids)) != tc.wantShrunk {
				t.Fatalf("first page: %d of %d messages, shrunk want %v", len(p), len(ids), tc.wantShrunk)
			}
			got = append(got, p...)
			after = p[len(p)-1]
		}
		if !slices.Equal(got, ids) {
			t.Fatalf("paging forwards got %d messages, want %d", len(got), len(ids))
		}
		// With before too: the oldest of the interval still.
		if len(ids) >= 3 {
			page(1000, ids[0], ids[len(ids)-1], ids[1:len(ids)-1])
		}
	})
}

func TestHistoryReplyKeepsEnd(t *testing.T) {
	// historyReply cuts a page too big for -send-buffer from the end away
	// from its bound: the oldest go from a page back, the newest from a
	// page forward; the message at the kept end always stays.
	t.Parallel()
	msgs := make([]*Message, 10)
	for i := range msgs {
		msgs[i] = &Message{}
		msgs[i].ID, msgs[i].From, msgs[i].FromName, msgs[i].To = int64(11+i), 1, "a", 2 // ids of one length
		msgs[i].Text, msgs[i].TS = strings.Repeat("x", 100), 1
	}
	one := len(msgs[0].AppendJSON(nil))
	r := &Request{Type: "history", RID: json.RawMessage(`1`)}
	head, _ := okReply(r.Type, r.RID, historyPage{})
	tests := []struct {
		name     string
		room     int // bytes for the messages, commas included
		dir      pageDir
		from, to int // msgs[from:to] kept
	}{
		{"all fit, back", 10*one + 9, pageBack, 0, 10},
		{"all fit, forward", 10*one + 9, pageForward, 0, 10},
		{"one byte short, back", 10*one + 8, pageBack, 1, 10},
		{"one byte short, forward", 10*one + 8, pageForward, 0, 9},
		{"three, back", 3*one + 2, pageBack, 7, 10},
		{"three, forward", 3*one + 2, pageForward, 0, 3},
		{"none fits, back", 1, pageBack, 9, 10},
		{"none fits, forward", 1, pageForward, 0, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var want []int64
			for _, m := range msgs[tc.from:tc.to] {
				want = append(want, m.ID)
			}
			s := &Server{cfg: Config{SendBuffer: byteSize(len(head) + tc.room)}, metrics: newMetrics()}
			p := s.historyReply(r, msgs, tc.dir)
			b, err := okReply(r.Type, r.RID, p)
			if err != nil {
				t.Fatal(err)
			}
			if len(want) > 1 && len(b) > int(s.cfg.SendBuffer) {
				t.Fatalf("%d bytes, over -send-buffer %d", len(b), s.cfg.SendBuffer)
			}
			got := historyIDs(t, decodeLine(t, b[:len(b)-1]))
			if !slices.Equal(got, want) {
				t.Fatalf("%s: kept %v, want %v", tc.dir, got, want)
			}
			if shrunk := s.metrics.historyShrunk.Load(); (shrunk > 0) != (len(want) < len(msgs)) {
				t.Fatalf("historyShrunk %d with %d of %d kept", shrunk, len(got), len(msgs))
			}
		})
	}
	// An empty page stays an empty list.
	s := &Server{cfg: Config{SendBuffer: 1 << 20}, metrics: newMetrics()}
	for _, dir := range []pageDir{pageBack, pageForward} {
		b, _ := okReply(r.Type, r.RID, s.historyReply(r, []*Message{}, dir))
		if got := historyIDs(t, decodeLine(t, b[:len(b)-1])); len(got) != 0 {
			t.Fatalf("%s: empty page gave %v", dir, got)
		}
	}
}

func TestTextWhiteSpaceOnly(t *testing.T) {
	// A text of white space only counts as empty: bad_request, nothing
	// stored. Any other text is stored and comes back byte for byte,
	// leading and trailing white space included.
	t.Parallel()
	blanks := []string{" ", "\t\n", "\u3000", "\u00a0 \u2003", "\r\n\v\f\u0085\u2028\u2029\u205f", strings.Repeat(" ", 5000)}
	kept := []string{" x ", "\nline\n", "\u3000x\u3000", " \t.", "\u200b", "x" + strings.Repeat(" ", 4095)}
	forEachStore(t, func(t *testing.T, db string) {
		ts := startServer(t, db)
		a := newUser(t, ts.addr, "ws")
		b := newUser(t, ts.addr, "wsb")
		g := a.must("create_group", map[string]any{"name": "blanks"}).obj("group").num("id")
		b.must("join_group", map[string]any{"group": g})
		sends := []struct {
			typ    string
			fields map[string]any // the conversation
			hist   map[string]any
		}{
			{"chat", map[string]any{"to": b.user}, map[string]any{"with": b.user}},
			{"group_chat", map[string]any{"group": g}, map[string]any{"group": g}},
		}
		for _, s := range sends {
			t.Run(s.typ, func(t *testing.T) {
				for i, text := range blanks {
					f := a.fails("bad_request", s.typ, with(s.fields, map[string]any{"text": text, "cid": fmt.Sprint("blank", i)}))
					if !strings.Contains(f.str("error"), "empty") {
						t.Fatalf("%q: error %q", text, f.str("error"))
					}
				}
				if got := historyIDs(t, a.must("history", s.hist)); len(got) != 0 {
					t.Fatalf("white space only texts were stored: %v", got)
				}
				for _, text := range kept {
					m := a.must(s.typ, with(s.fields, map[string]any{"text": text})).obj("message")
					if m.str("text") != text {
						t.Fatalf("reply text %q, sent %q", m.str("text"), text)
					}
					if p := b.messages(1, 5*time.Second)[0]; p.str("text") != text {
						t.Fatalf("pushed text %q, sent %q", p.str("text"), text)
					}
				}
				h := a.must("history", s.hist).list("messages")
				if len(h) != len(kept) {
					t.Fatalf("history has %d messages, want %d", len(h), len(kept))
				}
				for i, m := range h {
					if m.str("text") != kept[i] {
						t.Fatalf("history text %d: %q, want %q", i, m.str("text"), kept[i])
					}
				}
			})
		}
	})
}

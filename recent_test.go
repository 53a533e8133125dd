package main

import (
	"testing"

	"chat/internal/wire"
)

func TestRecentMessagesEvictsOldest(t *testing.T) {
	r := newRecentMessages(3)
	add := func(ids ...int64) {
		var items []*chatItem
		for _, id := range ids {
			items = append(items, &chatItem{msg: Message{Message: wire.Message{ID: id}, Topic: 100 + id, Seq: id}})
		}
		r.add(items)
	}
	add(1, 2)
	add(3, 4, 5) // 1 and 2 are evicted
	r.add([]*chatItem{{msg: Message{Message: wire.Message{ID: 6}}, dup: true}, {msg: Message{Message: wire.Message{ID: 7}}, err: errReplayed}})
	got := map[int64]topicSeq{}
	missing := r.find([]int64{1, 2, 3, 4, 5, 6, 7}, func(id int64, at topicSeq) { got[id] = at })
	if len(got) != 3 || got[3] != (topicSeq{103, 3}) || got[5] != (topicSeq{105, 5}) {
		t.Errorf("found %v, want 3, 4 and 5", got)
	}
	if len(missing) != 4 || missing[0] != 1 || missing[1] != 2 || missing[2] != 6 || missing[3] != 7 {
		t.Errorf("missing %v, want [1 2 6 7]: the oldest evicted, replays and failures never added", missing)
	}
}

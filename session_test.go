package main

import (
	"slices"
	"testing"
)

func TestSessionSets(t *testing.T) {
	s := &session{}
	for _, id := range []int64{5, 3, 9, 3, 5, 1} {
		s.addFriend(id)
	}
	if got := s.friendIDs(); !slices.Equal(got, []int64{1, 3, 5, 9}) {
		t.Fatalf("friends %v", got)
	}
	s.setGroup(7, true)
	s.setGroup(2, true)
	s.setGroup(7, true)
	s.setGroup(4, false) // not a member: nothing to do
	if !s.inGroup(7) || !s.inGroup(2) || s.inGroup(4) {
		t.Fatalf("groups %v", s.groupIDs())
	}
	s.setGroup(7, false)
	if got := s.groupIDs(); !slices.Equal(got, []int64{2}) || s.inGroup(7) {
		t.Fatalf("groups after leaving 7: %v", got)
	}
	// The copies are the caller's.
	ids := s.friendIDs()
	ids[0] = 100
	if s.friendIDs()[0] != 1 {
		t.Fatal("friendIDs returned the session's own slice")
	}
}

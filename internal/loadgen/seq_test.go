package loadgen

import "testing"

func TestSeqTracker(t *testing.T) {
	cases := []struct {
		name          string
		seqs          []int
		backlog       []bool
		n, dup, ooo   int
		again         int
		missingOfSent int // of 1..5 confirmed
	}{
		{"in order", []int{1, 2, 3, 4, 5}, nil, 5, 0, 0, 0, 0},
		{"one lost", []int{1, 2, 4, 5}, nil, 4, 0, 0, 0, 1},
		{"duplicate", []int{1, 2, 2, 3, 4, 5}, nil, 5, 1, 0, 0, 0},
		{"live, then again in a backlog", []int{1, 2, 3, 2, 4, 5}, []bool{false, false, false, true, false, false}, 5, 0, 0, 1, 0},
		{"backlog, then live again", []int{1, 2, 2, 3, 4, 5}, []bool{false, true, false, false, false, false}, 5, 0, 0, 1, 0},
		{"backlog, then live twice", []int{1, 2, 2, 2, 3}, []bool{false, true, false, false, false}, 3, 1, 0, 1, 2},
		{"reordered live", []int{1, 3, 2, 4, 5}, nil, 5, 0, 1, 0, 0},
		{"reordered backlog is fine", []int{4, 5, 1, 2, 3}, []bool{false, false, true, true, true}, 5, 0, 0, 0, 0},
		{"nothing", nil, nil, 0, 0, 0, 0, 5},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var tr seqTracker
			for i, s := range tc.seqs {
				tr.see(s, tc.backlog != nil && tc.backlog[i])
			}
			var sent bitset
			for s := 1; s <= 5; s++ {
				sent.add(s)
			}
			if tr.n != tc.n || tr.dup != tc.dup || tr.ooo != tc.ooo || tr.again != tc.again {
				t.Errorf("n/dup/ooo/again = %d/%d/%d/%d, want %d/%d/%d/%d", tr.n, tr.dup, tr.ooo, tr.again, tc.n, tc.dup, tc.ooo, tc.again)
			}
			if m := tr.seen.missing(sent); m != tc.missingOfSent {
				t.Errorf("missing = %d, want %d", m, tc.missingOfSent)
			}
		})
	}
	var b bitset
	if b.add(1000) || !b.add(1000) || !b.has(1000) || b.has(999) || b.count() != 1 {
		t.Error("bitset add/has/count")
	}
	var u bitset
	u.or(b)
	u.add(3)
	u.or(nil)
	if u.count() != 2 || !u.has(1000) || !u.has(3) || b.has(3) {
		t.Error("bitset or")
	}
}
